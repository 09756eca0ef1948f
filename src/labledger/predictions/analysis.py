"""Error analysis on stored predictions: where a run fails, and what a second run fixed or broke.

``errors(run, by=[...])`` is also reachable as ``ll.errors(run, by=[...])``.

>>> ll.errors("digits/svc", by=["region"])  # doctest: +SKIP
  region  support  accuracy  overall     gap  ci_low  ci_high  impact
>>> paired("digits/svc", "digits/logreg").mcnemar.describe()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labledger.errors import InvalidValueError
from labledger.predictions.read import Predictions, get_predictions

if TYPE_CHECKING:
    import pandas as pd

    from labledger.query.run_view import RunView
    from labledger.store.backend import Backend

__all__ = ["ErrorReport", "PairedReport", "error_report", "errors", "paired"]


def _load(run: str | RunView | Predictions, split: str, store: Any) -> Predictions:
    return run if isinstance(run, Predictions) else get_predictions(run, split=split, store=store)


def _features(p: Predictions, by: Sequence[str]) -> pd.DataFrame:
    frame = p.features
    missing = [c for c in by if c not in frame.columns]
    if missing:
        raise InvalidValueError(
            "by", missing, f"feature columns of the stored predictions: {list(frame.columns)}"
        )
    return frame


def errors(
    run: str | RunView | Predictions,
    by: Sequence[str] | str | None = None,
    metric: str | None = None,
    *,
    split: str = "test",
    auto: bool = False,
    alpha: float = 0.05,
    bins: int = 4,
    min_support: int = 30,
    store: str | os.PathLike[str] | Backend | None = None,
) -> pd.DataFrame:
    """Per-slice metrics of a run's stored predictions, one row per slice, worst impact first.

    Columns: the slice column(s), ``support``, the metric (default ``accuracy`` for
    classification, ``rmse`` for regression), ``overall``, ``gap``, ``ci_low``, ``ci_high``,
    ``impact``. Numeric columns are binned by quantiles (``bins``). With ``auto=True`` the
    slices are searched over one- and two-column conjunctions and only those significantly
    worse than the rest after a false-discovery-rate correction are returned.

    >>> ll.errors(run.id, by=["region", "device"])  # doctest: +SKIP
    """
    from labledger.analysis.slice_search import find_weak_slices
    from labledger.analysis.slices import slice_metrics

    p = _load(run, split, store)
    columns = [by] if isinstance(by, str) else list(by or [])
    if auto:
        frame = p.features if not columns else _features(p, columns)[columns]
        if frame.shape[1] == 0:
            raise InvalidValueError(
                "features", [], "feature columns to search (log_predictions(features=...))"
            )
        # the search tests the metric's own loss: 0/1 errors unless log loss was asked for
        proba = p.proba if metric == "log_loss" else None
        return find_weak_slices(
            p.y_true,
            p.y_pred,
            frame,
            proba=proba,
            task=p.task,
            bins=bins,
            min_support=min_support,
            alpha=alpha,
        )
    if not columns:
        import pandas as pd

        frame = pd.DataFrame({"slice": ["all"] * p.rows})
        return slice_metrics(
            p.y_true, p.y_pred, frame, ["slice"], proba=p.proba, metric=metric, task=p.task, alpha=alpha
        )
    return slice_metrics(
        p.y_true,
        p.y_pred,
        _features(p, columns),
        columns,
        proba=p.proba,
        metric=metric,
        task=p.task,
        alpha=alpha,
        bins=bins,
    )


@dataclass
class ErrorReport:
    """What ``labledger errors RUN`` prints."""

    run_id: str
    task: str
    summary: dict[str, Any]
    slices: dict[str, pd.DataFrame] = field(default_factory=dict)
    weak: pd.DataFrame | None = None
    hardest: pd.DataFrame | None = None


def error_report(
    run: str | RunView,
    by: Sequence[str] = (),
    metric: str | None = None,
    *,
    split: str = "test",
    auto: bool = False,
    top: int = 10,
    store: str | os.PathLike[str] | Backend | None = None,
) -> ErrorReport:
    """The overall metrics, each ``by`` column's slices, the searched weak slices, the hardest examples.

    >>> error_report("digits/svc", by=["region"], auto=True).weak  # doctest: +SKIP
    """
    from labledger.analysis.slices import hardest_examples, overall_summary

    p = _load(run, split, store)
    out = ErrorReport(p.run_id, p.task, overall_summary(p.y_true, p.y_pred, proba=p.proba, task=p.task))
    for column in by:
        out.slices[column] = errors(p, [column], metric)
    if auto:
        out.weak = errors(p, None, metric, auto=True)
    out.hardest = hardest_examples(p.y_true, p.y_pred, p.ids, proba=p.proba, k=top, task=p.task)
    return out


@dataclass
class PairedReport:
    """Two runs' predictions on the same examples: the paired test and the flips."""

    run_a: str
    run_b: str
    task: str
    examples: int
    mcnemar: Any = None
    loss_test: Any = None
    flips: pd.DataFrame | None = None


def paired(
    run_a: str | RunView | Predictions,
    run_b: str | RunView | Predictions,
    by: Sequence[str] = (),
    *,
    split: str = "test",
    store: str | os.PathLike[str] | Backend | None = None,
) -> PairedReport:
    """Join two runs' predictions on example id (refused when the examples differ) and test them
    pairwise: McNemar's test on right/wrong (classification), a paired test on per-example loss.

    :raises TestSetMismatchError: the two runs were scored on different examples.

    >>> paired("digits/svc", "digits/logreg", by=["region"]).mcnemar.p_value  # doctest: +SKIP
    """
    from labledger.analysis.paired_predictions import align, flips, mcnemar_test, paired_loss_test
    from labledger.analysis.slices import example_losses

    a, b = _load(run_a, split, store), _load(run_b, split, store)
    if a.task != b.task:
        raise InvalidValueError("runs", (a.task, b.task), "two classification or two regression runs")
    ia, ib = align(a.ids, b.ids)
    la = example_losses(a.y_true[ia], a.y_pred[ia], None if a.proba is None else a.proba[ia], task=a.task)
    lb = example_losses(b.y_true[ib], b.y_pred[ib], None if b.proba is None else b.proba[ib], task=b.task)
    report = PairedReport(a.run_id, b.run_id, a.task, len(ia))
    report.loss_test = paired_loss_test(la["loss"], lb["loss"])
    if a.task == "classification":
        report.mcnemar = mcnemar_test(la["correct"], lb["correct"])
        frame = _features(a, by).iloc[ia].reset_index(drop=True) if by else None
        report.flips = flips(la["correct"], lb["correct"], features=frame, by=list(by) or None)
    return report


def paired_verdicts(
    refs: Sequence[str],
    *,
    split: str = "test",
    store: str | os.PathLike[str] | Backend | None = None,
    labels: Sequence[str] | None = None,
) -> list[str]:
    """McNemar's test (or a paired loss test) for each pair of runs with predictions on the
    same examples; pairs without predictions are skipped, pairs on other examples say so.
    Each line's sentence calls a pair's runs A and B, or by their ``labels`` (one per ref).

    >>> paired_verdicts(["digits/svc", "digits/logreg"])  # doctest: +SKIP
    ['digits/svc vs digits/logreg: B fixes 3 examples A gets wrong and breaks 9 ...']
    """
    from itertools import combinations

    from labledger.analysis.paired_predictions import TestSetMismatchError
    from labledger.predictions.read import NoPredictionsError

    lines = []
    for (i, a), (j, b) in list(combinations(enumerate(refs), 2))[:10]:
        pair = (labels[i], labels[j]) if labels is not None else ("A", "B")
        try:
            report = paired(a, b, split=split, store=store)
        except NoPredictionsError:
            continue
        except TestSetMismatchError as e:
            lines.append(f"{a} vs {b}: no paired test — {e.describe(pair)}")
            continue
        if report.mcnemar is not None:
            lines.append(f"{a} vs {b}: {report.mcnemar.describe(names=pair)}")
        elif report.loss_test is not None:
            lines.append(f"{a} vs {b}: {report.loss_test.describe(names=pair)}")
    return lines
