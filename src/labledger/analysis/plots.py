"""Charts of runs: metric curves, fold-score distributions, params against a metric.

The output format follows the file name: ``.png`` / ``.svg`` are drawn with
matplotlib (Agg, no display needed), ``.html`` is a self-contained Plotly page
(the plotly.js bundle is embedded; nothing is fetched when it is opened).

>>> from labledger.analysis.plots import plot_curves, plot_folds, plot_params
>>> plot_curves(["exp/run-a", "exp/run-b"], ["val_loss"], "curves.png")          # doctest: +SKIP
>>> plot_folds(["exp/run-a", "exp/run-b"], "accuracy", "folds.html")            # doctest: +SKIP
>>> plot_params("exp", ["C"], "accuracy", "c_vs_accuracy.svg")                   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.store import Store

if TYPE_CHECKING:
    from labledger.query.runs import RunView

__all__ = ["NothingToPlotError", "UnsupportedFormatError", "plot_curves", "plot_folds", "plot_params"]

FORMATS = (".png", ".svg", ".html")
StoreArg = str | os.PathLike[str] | Store | None
RunRefs = Sequence["str | RunView"]


class UnsupportedFormatError(LabledgerError, ValueError):
    """The output file name does not end in .png, .svg or .html."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"cannot tell the chart format of {path!r}: name the file *.png, *.svg or *.html")


class NothingToPlotError(LabledgerError, LookupError):
    """The runs have no data for the requested chart."""

    def __init__(self, what: str) -> None:
        super().__init__(f"nothing to plot: {what}")


def _output(path: str | os.PathLike[str]) -> tuple[Path, str]:
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise UnsupportedFormatError(str(path))
    out.parent.mkdir(parents=True, exist_ok=True)
    return out, suffix


def _views(runs: RunRefs, store: StoreArg) -> list[RunView]:
    from labledger.query.runs import RunView, get_run

    views = [r if isinstance(r, RunView) else get_run(r, store) for r in runs]
    if not views:
        raise NothingToPlotError("no runs given")
    return views


def _figure(width: float = 8.0, height: float = 4.8) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save_matplotlib(fig: Any, out: Path, suffix: str) -> Path:
    fig.savefig(out, format=suffix[1:], dpi=120)
    return out


def _save_plotly(fig: Any, out: Path) -> Path:
    fig.write_html(out, include_plotlyjs=True, full_html=True)
    return out


def _label(run: RunView, many_experiments: bool) -> str:
    return f"{run.experiment}/{run.name}" if many_experiments else run.name


def plot_curves(
    runs: RunRefs,
    metrics: Sequence[str],
    output: str | os.PathLike[str],
    x: str = "step",
    store: StoreArg = None,
    title: str | None = None,
) -> Path:
    """Metric curves over ``x`` (``step`` or ``epoch``) for several runs on one chart.

    >>> plot_curves(["exp/a", "exp/b"], ["train/loss", "val/loss"], "loss.svg", x="epoch")  # doctest: +SKIP
    """
    if x not in ("step", "epoch"):
        raise ValueError(f"x must be 'step' or 'epoch', not {x!r}")
    out, suffix = _output(output)
    views = _views(runs, store)
    many = len({v.experiment for v in views}) > 1
    series = []
    for view in views:
        for key in metrics:
            arrays = view.metric_arrays(key)
            xs, ys = arrays[x], arrays["value"]
            if x == "epoch":
                keep = xs >= 0
                xs, ys = xs[keep], ys[keep]
            if len(xs):
                label = _label(view, many) + (f" · {key}" if len(metrics) > 1 else "")
                series.append((label, xs.tolist(), ys.tolist()))
    if not series:
        raise NothingToPlotError(f"none of the runs logged {', '.join(metrics)} (by {x})")
    title = title or f"{', '.join(metrics)} by {x}"
    ylabel = metrics[0] if len(metrics) == 1 else "value"
    if suffix == ".html":
        import plotly.graph_objects as go

        fig = go.Figure()
        for label, xs, ys in series:
            fig.add_trace(
                go.Scatter(x=xs, y=ys, mode="lines+markers" if len(xs) < 50 else "lines", name=label)
            )
        fig.update_layout(title=title, xaxis_title=x, yaxis_title=ylabel, template="plotly_white")
        return _save_plotly(fig, out)
    fig = _figure()
    ax = fig.subplots()
    for label, xs, ys in series:
        ax.plot(xs, ys, marker="o" if len(xs) < 50 else None, markersize=3, label=label)
    ax.set(title=title, xlabel=x, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save_matplotlib(fig, out, suffix)


def plot_folds(
    runs: RunRefs,
    metric: str,
    output: str | os.PathLike[str],
    split: str = "test",
    store: StoreArg = None,
    title: str | None = None,
) -> Path:
    """Per-run distributions of fold scores: a box plot with every fold drawn as a point.

    >>> plot_folds(["exp/a", "exp/b"], "accuracy", "folds.png")  # doctest: +SKIP
    """
    from labledger.analysis.pairing import fold_values

    out, suffix = _output(output)
    views = _views(runs, store)
    many = len({v.experiment for v in views}) > 1
    data = [(_label(v, many), [x for x in fold_values(v, metric, split) if not math.isnan(x)]) for v in views]
    data = [(label, vals) for label, vals in data if vals]
    if not data:
        raise NothingToPlotError(
            f"none of the runs has {metric} folds (split {split}); log them with run.log_folds"
        )
    title = title or f"{metric} per fold ({split})"
    if suffix == ".html":
        import plotly.graph_objects as go

        fig = go.Figure()
        for label, vals in data:
            fig.add_trace(go.Box(y=vals, name=label, boxpoints="all", jitter=0.4, pointpos=0, boxmean="sd"))
        fig.update_layout(title=title, yaxis_title=metric, template="plotly_white", showlegend=False)
        return _save_plotly(fig, out)
    import numpy as np

    fig = _figure(max(5.0, 1.2 * len(data) + 2), 4.8)
    ax = fig.subplots()
    ax.boxplot([vals for _, vals in data], showmeans=True, showfliers=False)  # every fold is drawn below
    ax.set_xticks(range(1, len(data) + 1), [label for label, _ in data])
    rng = np.random.default_rng(0)
    for i, (_, vals) in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(vals)), vals, s=14, alpha=0.7, zorder=3)
    ax.set(title=title, ylabel=metric)
    ax.grid(axis="y", alpha=0.3)
    if len(data) > 4:
        ax.tick_params(axis="x", labelrotation=30)
    return _save_matplotlib(fig, out, suffix)


def _metric_column(df: Any, metric: str, split: str) -> str:
    fold_col = f"folds.{metric}.mean" if split == "test" else f"folds.{split}/{metric}.mean"
    for col in (fold_col, f"metrics.{metric}"):
        if col in df.columns and df[col].notna().any():
            return col
    raise NothingToPlotError(f"no run has {metric} as folds or as a logged metric")


def _numeric_axis(values: Any) -> tuple[list[float], list[str] | None]:
    """Numbers stay numbers; anything else becomes category codes with their labels."""
    import pandas as pd

    numeric = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    if numeric.notna().all() and not any(isinstance(v, bool) for v in values):
        return numeric.astype(float).tolist(), None
    labels = sorted({str(v) for v in values})
    return [float(labels.index(str(v))) for v in values], labels


def plot_params(
    experiment: str,
    params: Sequence[str],
    metric: str,
    output: str | os.PathLike[str],
    split: str = "test",
    where: str | None = None,
    store: StoreArg = None,
    title: str | None = None,
    include_children: bool = False,
) -> Path:
    """A param against a metric across an experiment (scatter), or several params (parallel coordinates).

    The metric is the fold mean when the runs have folds for it, else its last value.
    ``include_children=True`` plots nested runs too: the candidates of a search are child runs.

    >>> plot_params("digits-svm", ["C", "gamma"], "accuracy", "params.html")  # doctest: +SKIP
    >>> plot_params("digits-search", ["svc__C"], "accuracy", "c.png", include_children=True)  # doctest: +SKIP
    """
    from labledger.query.runs import runs as list_runs

    if not params:
        raise ValueError("give at least one param")
    out, suffix = _output(output)
    df = list_runs(experiment, store=store, where=where, include_children=include_children)

    def nothing(what: str) -> NothingToPlotError:
        hint = "" if include_children else _children_hint(experiment, params, metric, split, where, store)
        return NothingToPlotError(what + hint)

    if df.empty:
        raise nothing(f"experiment {experiment!r} has no runs" + (" matching the filter" if where else ""))
    try:
        mcol = _metric_column(df, metric, split)
    except NothingToPlotError as e:
        raise nothing(str(e).removeprefix("nothing to plot: ")) from None
    cols = [f"params.{p}" for p in params]
    missing = [p for p, c in zip(params, cols, strict=True) if c not in df.columns]
    if missing:
        raise nothing(f"no run of {experiment!r} has the param(s) {', '.join(missing)}")
    df = df.dropna(subset=[*cols, mcol])
    if df.empty:
        raise nothing(f"no run has both {', '.join(params)} and {metric}")
    y = df[mcol].astype(float).tolist()
    names = df["name"].tolist()
    title = title or f"{', '.join(params)} vs {metric} ({experiment})"
    if len(params) == 1:
        xs, labels = _numeric_axis(df[cols[0]].tolist())
        return _scatter(out, suffix, xs, labels, y, names, params[0], metric, title)
    return _parallel(out, suffix, [_numeric_axis(df[c].tolist()) for c in cols], params, y, metric, title)


def _children_hint(
    experiment: str, params: Sequence[str], metric: str, split: str, where: str | None, store: StoreArg
) -> str:
    """``"; child runs have them: ..."`` when nested runs (a search's candidates) could be plotted."""
    from labledger.query.runs import runs as list_runs

    df = list_runs(experiment, store=store, where=where, include_children=True)
    cols = [f"params.{p}" for p in params]
    if df.empty or "parent_id" not in df.columns or any(c not in df.columns for c in cols):
        return ""
    try:
        mcol = _metric_column(df, metric, split)
    except NothingToPlotError:
        return ""
    found = df[df["parent_id"].notna()].dropna(subset=[*cols, mcol])
    if found.empty:
        return ""
    return (
        f"; {len(found)} child runs (e.g. a search's candidates) have them: "
        "pass --children (include_children=True)"
    )


def _scatter(
    out: Path,
    suffix: str,
    xs: list[float],
    labels: list[str] | None,
    y: list[float],
    names: list[str],
    param: str,
    metric: str,
    title: str,
) -> Path:
    if suffix == ".html":
        import plotly.graph_objects as go

        fig = go.Figure(
            go.Scatter(
                x=[labels[int(v)] for v in xs] if labels else xs,
                y=y,
                mode="markers",
                text=names,
                hovertemplate="%{text}<br>%{x}: %{y}<extra></extra>",
            )
        )
        fig.update_layout(title=title, xaxis_title=param, yaxis_title=metric, template="plotly_white")
        return _save_plotly(fig, out)
    fig = _figure()
    ax = fig.subplots()
    ax.scatter(xs, y, s=30, alpha=0.8)
    if labels:
        ax.set_xticks(range(len(labels)), labels)
    elif min(xs) > 0 and max(xs) / min(xs) >= 100:
        ax.set_xscale("log")
    ax.set(title=title, xlabel=param, ylabel=metric)
    ax.grid(alpha=0.3)
    return _save_matplotlib(fig, out, suffix)


def _parallel(
    out: Path,
    suffix: str,
    axes: list[tuple[list[float], list[str] | None]],
    params: Sequence[str],
    y: list[float],
    metric: str,
    title: str,
) -> Path:
    if suffix == ".html":
        import plotly.graph_objects as go

        dims = []
        for name, (vals, labels) in zip(params, axes, strict=True):
            dim: dict[str, Any] = {"label": name, "values": vals}
            if labels:
                dim.update(tickvals=list(range(len(labels))), ticktext=labels)
            dims.append(dim)
        dims.append({"label": metric, "values": y})
        fig = go.Figure(
            go.Parcoords(line={"color": y, "colorscale": "Viridis", "showscale": True}, dimensions=dims)
        )
        fig.update_layout(title=title)
        return _save_plotly(fig, out)
    from matplotlib import colormaps

    columns = [*(vals for vals, _ in axes), y]
    names = [*params, metric]
    scaled = []
    for vals in columns:
        lo, hi = min(vals), max(vals)
        scaled.append([(v - lo) / (hi - lo) if hi > lo else 0.5 for v in vals])
    fig = _figure(max(6.0, 2.0 * len(names)), 4.8)
    ax = fig.subplots()
    cmap = colormaps["viridis"]
    lo, hi = min(y), max(y)
    for row in range(len(y)):
        shade = (y[row] - lo) / (hi - lo) if hi > lo else 0.5
        ax.plot(range(len(names)), [col[row] for col in scaled], color=cmap(shade), alpha=0.8)
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks([])
    for i, (vals, labels) in enumerate([*axes, (y, None)]):
        ax.axvline(i, color="grey", linewidth=0.8)
        low, high = (labels[0], labels[-1]) if labels else (f"{min(vals):.4g}", f"{max(vals):.4g}")
        ax.annotate(low, (i, 0), xytext=(3, -12), textcoords="offset points", fontsize="small")
        ax.annotate(high, (i, 1), xytext=(3, 4), textcoords="offset points", fontsize="small")
    ax.set(title=title)
    return _save_matplotlib(fig, out, suffix)
