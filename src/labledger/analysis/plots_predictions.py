"""Charts of a run's stored predictions: the confusion matrix, the reliability diagram, the slices.

Same output rules as :mod:`labledger.analysis.plots`: ``.png`` / ``.svg`` drawn with
matplotlib, ``.html`` a self-contained Plotly page.

>>> plot_confusion("digits/svc", "confusion.png")          # doctest: +SKIP
>>> plot_calibration(["digits/svc", "digits/logreg"], "reliability.svg")  # doctest: +SKIP
>>> plot_slices("digits/svc", "region", "slices.html")     # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labledger.analysis.plots import (
    NothingToPlotError,
    StoreArg,
    _figure,
    _output,
    _save_matplotlib,
    _save_plotly,
)

__all__ = ["plot_calibration", "plot_confusion", "plot_slices"]


def _predictions(run: Any, split: str, store: StoreArg) -> Any:
    from labledger.predictions.read import get_predictions

    return get_predictions(run, split=split, store=store)


def plot_confusion(
    run: Any,
    output: str | os.PathLike[str],
    *,
    split: str = "test",
    normalize: bool = True,
    store: StoreArg = None,
) -> Path:
    """The confusion matrix of a classification run's stored predictions (rows: truth; each row
    normalised to sum to 1 unless ``normalize=False``)."""
    from labledger.analysis.slices import overall_summary

    out, suffix = _output(output)
    p = _predictions(run, split, store)
    if p.task != "classification":
        raise NothingToPlotError(f"run {p.run_id[:12]} is a regression: no confusion matrix")
    matrix = overall_summary(p.y_true, p.y_pred, task=p.task)["confusion"]
    values = matrix.to_numpy().astype(float)
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = values / totals.clip(min=1)
    labels = [str(x) for x in matrix.index]
    title = f"confusion matrix ({'share of each true class' if normalize else 'counts'})"
    if suffix == ".html":
        import plotly.graph_objects as go

        fig = go.Figure(go.Heatmap(z=values, x=labels, y=labels, colorscale="Blues", text=matrix.to_numpy()))
        fig.update_layout(
            title=title, xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed"
        )
        return _save_plotly(fig, out)
    fig = _figure(1.0 + 0.5 * len(labels) + 2, 1.0 + 0.5 * len(labels) + 1)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{values[i, j]:.2f}" if normalize else int(values[i, j]), ha="center", va="center")
    fig.colorbar(image, ax=ax)
    return _save_matplotlib(fig, out, suffix)


def calibration_points(y_true: Any, proba: Any, classes: Sequence[Any], bins: int = 10) -> dict[str, Any]:
    """Reliability-diagram points of the predicted class's probability: per equal-width bin of
    confidence, the mean confidence, the accuracy and the count; plus the expected calibration error."""
    import numpy as np

    p = np.asarray(proba, dtype=float)
    confidence = p.max(axis=1)
    predicted = np.asarray(classes, dtype=object)[p.argmax(axis=1)]
    correct = predicted == np.asarray(y_true, dtype=object)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    mean_conf = np.bincount(which, weights=confidence, minlength=bins) / count.clip(min=1)
    accuracy = np.bincount(which, weights=correct.astype(float), minlength=bins) / count.clip(min=1)
    used = count > 0
    ece = float(np.sum(count[used] * np.abs(accuracy[used] - mean_conf[used])) / count.sum())
    return {"confidence": mean_conf[used], "accuracy": accuracy[used], "count": count[used], "ece": ece}


def plot_calibration(
    runs: Sequence[Any],
    output: str | os.PathLike[str],
    *,
    split: str = "test",
    bins: int = 10,
    store: StoreArg = None,
) -> Path:
    """Reliability diagram of each run's stored class probabilities (predicted class's
    confidence against its accuracy), with the expected calibration error in the legend."""
    out, suffix = _output(output)
    series = []
    for run in runs:
        p = _predictions(run, split, store)
        if p.proba is None:
            raise NothingToPlotError(
                f"run {p.run_id[:12]} stored no class probabilities (log_predictions(proba=...))"
            )
        from labledger.query.runs import get_run

        view = get_run(p.run_id, store)
        series.append((view.name, calibration_points(p.y_true, p.proba, p.classes, bins)))
    if suffix == ".html":
        import plotly.graph_objects as go

        fig = go.Figure(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", line={"dash": "dot"})
        )
        for name, pts in series:
            fig.add_trace(
                go.Scatter(
                    x=pts["confidence"],
                    y=pts["accuracy"],
                    mode="lines+markers",
                    name=f"{name} (ECE {pts['ece']:.3f})",
                )
            )
        fig.update_layout(title="reliability diagram", xaxis_title="confidence", yaxis_title="accuracy")
        return _save_plotly(fig, out)
    fig = _figure(6.0, 5.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    for name, pts in series:
        ax.plot(pts["confidence"], pts["accuracy"], marker="o", label=f"{name} (ECE {pts['ece']:.3f})")
    ax.set_xlabel("confidence (predicted class's probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability diagram")
    ax.legend()
    return _save_matplotlib(fig, out, suffix)


def plot_slices(
    run: Any,
    by: str,
    output: str | os.PathLike[str],
    *,
    metric: str | None = None,
    split: str = "test",
    store: StoreArg = None,
) -> Path:
    """Per-slice metric of one feature column with its interval, the overall value as a line."""
    from labledger.predictions.analysis import errors

    out, suffix = _output(output)
    table = errors(run, [by], metric, split=split, store=store)
    name = str(table.attrs["metric"])
    frame = table.sort_values(by)
    labels = [f"{v} (n={n})" for v, n in zip(frame[by], frame["support"], strict=True)]
    values, low, high = frame[name].to_numpy(), frame["ci_low"].to_numpy(), frame["ci_high"].to_numpy()
    overall = float(frame["overall"].iloc[0])
    if suffix == ".html":
        import plotly.graph_objects as go

        fig = go.Figure(
            go.Bar(
                x=labels,
                y=values,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": high - values,
                    "arrayminus": values - low,
                },
            )
        )
        fig.add_hline(y=overall, line_dash="dot", annotation_text=f"overall {overall:.4g}")
        fig.update_layout(title=f"{name} by {by}", yaxis_title=name)
        return _save_plotly(fig, out)
    fig = _figure(max(6.0, 0.9 * len(labels) + 2), 4.8)
    ax = fig.add_subplot()
    ax.bar(range(len(labels)), values, yerr=[values - low, high - values], capsize=4)
    ax.axhline(overall, linestyle=":", color="grey", label=f"overall {overall:.4g}")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel(name)
    ax.set_title(f"{name} by {by}")
    ax.legend()
    return _save_matplotlib(fig, out, suffix)
