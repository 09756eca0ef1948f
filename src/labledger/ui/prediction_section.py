"""The run page's "Error analysis" section: a run's stored predictions, analysed, as plain, JSON-ready data.

One entry per predictions table (``run.log_predictions(..., name=, split=)``): the overall
metric (accuracy or rmse) and support; per class metrics and the confusion matrix, or the
residuals; the slices of the logged ``features`` worst impact first; the hardest examples.
The statistics are the library's (:func:`labledger.predictions.analysis.errors`,
:func:`labledger.analysis.slices.overall_summary` and
:func:`~labledger.analysis.slices.hardest_examples`); this module only lays them out. Each
table is read once; long tables of results are cut to their first rows (the counts say how
many there are). When a table cannot be analysed its entry holds a short ``problem`` instead,
and the whole section does when pyarrow is missing.

>>> import labledger as ll
>>> prediction_section(ll.get_run("digits/svc-rbf-c1"))["tables"][0]["overall"]  # doctest: +SKIP
0.9822
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError

if TYPE_CHECKING:
    import pandas as pd

    from labledger.predictions.read import Predictions
    from labledger.query.run_view import RunView

__all__ = ["MAX_CLASSES", "MAX_SLICES", "TOP_EXAMPLES", "prediction_section", "prediction_tables"]

#: Slices shown per table (the worst by impact; the rest are counted).
MAX_SLICES = 25
#: The most labels a confusion matrix is drawn for, and per-class rows shown.
MAX_CLASSES = 30
#: Hardest examples listed per table.
TOP_EXAMPLES = 10
#: The slices' intervals are ``1 − ALPHA`` intervals.
ALPHA = 0.05
#: What the section says when the tables cannot be read at all.
MISSING_EXTRA = "The error analysis reads stored Parquet tables: pip install 'labledger[parquet]' (pyarrow)."
#: What a table's loss is, by task and whether probabilities were stored.
LOSS_NAMES = {"regression": "squared error", "proba": "log loss", "labels": "0/1 loss"}


def prediction_tables(run: RunView) -> list[dict[str, Any]]:
    """``name``, ``split`` and ``lookup`` (the name to ask :func:`~labledger.predictions.read.get_predictions`
    for) of each predictions table the run logged, the test split first.

    >>> prediction_tables(ll.get_run("digits/svc-rbf-c1"))  # doctest: +SKIP
    [{'name': 'predictions', 'split': 'test', 'lookup': 'predictions'}]
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for a in run.artifacts:
        meta = a.metadata if isinstance(a.metadata, dict) else {}
        if a.kind != "predictions" or not isinstance(meta.get("split"), str):
            continue
        lookup = meta.get("name") if isinstance(meta.get("name"), str) else None
        key = (lookup or a.name, meta["split"])
        found.setdefault(key, {"name": key[0], "split": key[1], "lookup": lookup})
    return sorted(found.values(), key=lambda t: (t["split"] != "test", t["split"], t["name"]))


def _number(value: Any) -> Any:
    """A NumPy or pandas scalar as the Python value (text and None stay as they are)."""
    return value.item() if hasattr(value, "item") else value


def _label(value: Any) -> str:
    return str(_number(value))


def _classification(summary: dict[str, Any]) -> dict[str, Any]:
    per_class: pd.DataFrame = summary["per_class"]
    confusion: pd.DataFrame = summary["confusion"]
    labels = [_label(v) for v in per_class.index]
    rows = [
        [label, *(float(x) for x in row[:3]), int(row[3])]
        for label, row in zip(
            labels, per_class[["precision", "recall", "f1", "support"]].to_numpy(), strict=True
        )
    ]
    figures = {k: summary[k] for k in ("f1_macro", "log_loss") if k in summary}
    out: dict[str, Any] = {
        "figures": figures,
        "class_count": len(labels),
        "per_class_header": ["label", "precision", "recall", "f1", "support"],
        "per_class": rows[:MAX_CLASSES],
        "confusion": None,
        "confusion_note": f"not drawn: {len(labels)} classes (at most {MAX_CLASSES} are)",
    }
    if len(labels) <= MAX_CLASSES:
        counts = confusion.to_numpy()
        totals = counts.sum(axis=1)
        out["confusion"] = {
            "labels": labels,
            "rows": [
                {
                    "label": label,
                    "total": int(total),
                    "cells": [
                        {"count": int(c), "share": float(c / total) if total else 0.0, "hit": i == j}
                        for j, c in enumerate(row)
                    ],
                }
                for i, (label, row, total) in enumerate(zip(labels, counts, totals, strict=True))
            ],
        }
        out["confusion_note"] = None
    return out


def _regression(summary: dict[str, Any]) -> dict[str, Any]:
    quantiles: pd.Series = summary["residual_quantiles"]
    return {
        "figures": {k: summary[k] for k in ("mae", "r2", "mean_residual")},
        "residuals": {str(k): float(v) for k, v in quantiles.items()},
    }


def _slices(p: Predictions) -> dict[str, Any]:
    """Every logged feature column's slices (``ll.errors(run, by=[column])``), worst impact first."""
    from labledger.predictions.analysis import errors

    rows: list[dict[str, Any]] = []
    metric = None
    for column in p.features.columns:
        table = errors(p, [column], alpha=ALPHA)
        metric = table.attrs["metric"]
        for record in table.to_dict(orient="records"):
            rows.append(
                {
                    "column": str(column),
                    "value": _label(record[column]),
                    **{
                        k: _number(record[k])
                        for k in ("support", metric, "gap", "ci_low", "ci_high", "impact")
                    },
                }
            )
    rows.sort(key=lambda r: -r["impact"])  # each column's table is in this order already
    level = f"{1 - ALPHA:.0%}"
    return {"metric": metric, "level": level, "count": len(rows), "rows": rows[:MAX_SLICES]}


def _hardest(p: Predictions, proba: pd.DataFrame | None) -> dict[str, Any]:
    from labledger.analysis.slices import hardest_examples

    frame = hardest_examples(p.y_true, p.y_pred, p.ids, proba=proba, k=TOP_EXAMPLES, task=p.task)
    loss = "regression" if p.task == "regression" else ("proba" if proba is not None else "labels")
    rows = [
        {
            "id": _label(r["id"]),
            "y_true": _number(r["y_true"]),
            "y_pred": _number(r["y_pred"]),
            "loss": float(r["loss"]),
        }
        for r in frame.to_dict(orient="records")
    ]
    return {"loss": LOSS_NAMES[loss], "rows": rows}


def _proba(p: Predictions) -> pd.DataFrame | None:
    """The stored probabilities with their classes as columns (so each loss uses the right one)."""
    import pandas as pd

    proba = p.proba
    return None if proba is None else pd.DataFrame(proba, columns=pd.Index(p.classes, dtype=object))


def _layout(p: Predictions, name: str, split: str) -> dict[str, Any]:
    from labledger.analysis.slices import overall_summary

    proba = _proba(p)
    summary = overall_summary(p.y_true, p.y_pred, proba=proba, task=p.task)
    metric = "accuracy" if p.task == "classification" else "rmse"
    out: dict[str, Any] = {
        "name": name,
        "split": split,
        "problem": None,
        "task": p.task,
        "metric": metric,
        "overall": summary[metric],
        "support": int(summary["n"]),
        "features": [str(c) for c in p.features.columns],
    }
    out |= _classification(summary) if p.task == "classification" else _regression(summary)
    out["slices"] = _slices(p)
    out["hardest"] = _hardest(p, proba)
    return out


def _table(run: RunView, name: str, split: str, lookup: str | None) -> dict[str, Any]:
    """One table's entry: read once, analysed, or a ``problem`` saying why not."""
    from labledger.predictions.read import get_predictions

    try:
        p = get_predictions(run, split=split, name=lookup)
        return _layout(p, name, split)
    except ImportError:  # before LabledgerError: a missing extra's error is both
        return {"name": name, "split": split, "problem": MISSING_EXTRA}
    except (LabledgerError, OSError, ValueError, KeyError) as e:  # unreadable, or not a predictions table
        text = str(e) or type(e).__name__
        return {"name": name, "split": split, "problem": f"The predictions could not be analysed: {text}"}


def _follows(run: RunView) -> dict[str, Any] | None:
    """The run this one was started to follow (``start_run(..., follows=)``), if any."""
    lineage = run.lineage if isinstance(run.lineage, dict) else {}
    follows = lineage.get("follows")
    if not isinstance(follows, dict) or not isinstance(follows.get("run"), str):
        return None
    ref = "/".join(str(follows[k]) for k in ("experiment", "name") if follows.get(k))
    return {"id": follows["run"], "ref": ref or follows["run"]}


def prediction_section(run: RunView) -> dict[str, Any] | None:
    """The section's data for a run that logged predictions; None for any other run.

    ``{"problem", "follows", "tables"}``: ``follows`` is ``{"id", "ref"}`` of the run this one
    follows (or None), ``tables`` one entry per predictions table (see the module's docstring).

    >>> prediction_section(ll.get_run("digits/svc-rbf-c1"))["tables"][0]["metric"]  # doctest: +SKIP
    'accuracy'
    """
    tables = prediction_tables(run)
    if not tables:
        return None
    section: dict[str, Any] = {"problem": None, "follows": _follows(run), "tables": []}
    try:
        import pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return section | {"problem": MISSING_EXTRA}
    section["tables"] = [_table(run, t["name"], t["split"], t["lookup"]) for t in tables]
    return section
