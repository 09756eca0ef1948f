"""Plots of a classifier's held-out evaluation: confusion matrix, ROC and precision-recall curves.

Drawn on matplotlib ``Figure`` objects rendered by the Agg canvas: nothing
touches pyplot or the user's chosen backend. matplotlib is imported when the
first plot is drawn.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import labledger as ll

__all__ = ["log_classifier_plots"]

#: More classes than this: one ROC/PR curve per class would not be readable; only the micro-average.
_MAX_CURVES = 10


def log_classifier_plots(
    run: ll.Run, y_true: Any, y_pred: Any, y_score: Any, classes: Any, title: str
) -> list[str]:
    """Store ``confusion_matrix.png`` and, with scores, ``roc_curve.png`` and
    ``precision_recall_curve.png`` as ``plot`` artifacts of ``run``; returns their names."""
    labels = np.asarray(classes) if classes is not None else np.unique(np.concatenate([y_true, y_pred]))
    with warnings.catch_warnings():  # matplotlib's own (its import's deprecations) are not the user's
        warnings.simplefilter("ignore")
        figures = _figures(y_true, y_pred, y_score, labels, title)
    with tempfile.TemporaryDirectory(prefix="labledger-plot-") as tmp:
        for name, figure in figures.items():
            path = Path(tmp) / name
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figure.savefig(path, dpi=100)
            run.log_artifact(path, kind="plot", name=name, metadata={"title": title})
    return list(figures)


def _figures(y_true: Any, y_pred: Any, y_score: Any, labels: Any, title: str) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    figures = {
        "confusion_matrix.png": _confusion(confusion_matrix(y_true, y_pred, labels=labels), labels, title)
    }
    if y_score is not None:
        curves = _curves(np.asarray(y_true), np.asarray(y_score), labels)
        if curves:
            figures["roc_curve.png"] = _curve_plot(curves, "roc", title)
            figures["precision_recall_curve.png"] = _curve_plot(curves, "pr", title)
    return figures


def _figure(width: float = 5.0, height: float = 4.5) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _confusion(matrix: Any, labels: Any, title: str) -> Any:
    figure = _figure()
    ax = figure.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, [str(v) for v in labels], rotation=45 if len(labels) > 6 else 0)
    ax.set_yticks(ticks, [str(v) for v in labels])
    if len(labels) <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            color = "white" if count > threshold else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"confusion matrix — {title}")
    return figure


def _curves(y_true: Any, y_score: Any, labels: Any) -> dict[str, tuple[Any, Any]]:
    """``{label: (true is label, score for label)}``: one entry for a binary task, one per class
    (up to ten) plus the micro-average otherwise."""
    if y_score.ndim == 2 and y_score.shape[1] == 2:
        y_score = y_score[:, 1]
    if y_score.ndim == 1:
        if len(labels) != 2:
            return {}
        return {str(labels[1]): (y_true == labels[1], y_score)}
    if y_score.shape[1] != len(labels):
        return {}
    onehot = np.stack([y_true == label for label in labels], axis=1)
    curves = {"micro-average": (onehot.ravel(), y_score.ravel())}
    if len(labels) <= _MAX_CURVES:
        for k, label in enumerate(labels):
            curves[str(label)] = (onehot[:, k], y_score[:, k])
    return curves


def _curve_plot(curves: dict[str, tuple[Any, Any]], kind: str, title: str) -> Any:
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    figure = _figure()
    ax = figure.add_subplot()
    for label, (truth, score) in curves.items():
        if truth.all() or not truth.any():
            continue  # a class absent from (or alone in) the held-out data has no curve
        if kind == "roc":
            fpr, tpr, _ = roc_curve(truth, score)
            ax.plot(
                fpr,
                tpr,
                label=f"{label} (AUC {auc(fpr, tpr):.3f})",
                lw=1.5 if label == "micro-average" else 1,
            )
        else:
            precision, recall, _ = precision_recall_curve(truth, score)
            ap = average_precision_score(truth, score)
            ax.plot(
                recall, precision, label=f"{label} (AP {ap:.3f})", lw=1.5 if label == "micro-average" else 1
            )
    if kind == "roc":
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"ROC — {title}")
    else:
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"precision-recall — {title}")
    ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
    return figure
