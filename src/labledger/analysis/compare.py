"""Fair comparison of runs: side-by-side params and metrics, a comparability guard, paired tests.

>>> import labledger as ll
>>> result = ll.compare(["digits/svc-rbf", "digits/logreg"], metric="accuracy")  # doctest: +SKIP
>>> print(result.render())                                                        # doctest: +SKIP
>>> result.pairs[0].verdict                                                      # doctest: +SKIP
'A better than B on accuracy, p=0.012 (Nadeau–Bengio corrected resampled t-test)'

Runs are tested pairwise on their folds only when they were scored on the same
folds of the same data with the same metric definition (see
:mod:`labledger.analysis.comparability`); the test follows the recorded design (see
:mod:`labledger.analysis.pairing`); with more than two runs every pair is tested (or
every run against a ``reference``) and the p-values of each metric's pairs are
adjusted for multiple comparisons (Holm by default).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labledger.analysis.comparability import CV_PARAMS, Issue, comparability_issues, halving_stage
from labledger.analysis.fold_design import fold_size_ratio
from labledger.analysis.pairing import PairOutcome, adjust_family, compare_pair, fold_values, pair_family
from labledger.errors import LabledgerError
from labledger.store import Store

if TYPE_CHECKING:
    from labledger.query.runs import RunView

__all__ = [
    "CV_PARAMS",
    "Comparison",
    "Issue",
    "MetricNotFoundError",
    "PairOutcome",
    "UnknownReferenceError",
    "comparability_issues",
    "compare",
    "compare_pair",
    "fold_size_ratio",
    "fold_values",
    "halving_stage",
]


class MetricNotFoundError(LabledgerError, LookupError):
    """None of the compared runs has the requested metric."""

    def __init__(self, metric: str, available: Sequence[str]) -> None:
        self.metric = metric
        self.available = list(available)
        shown = ", ".join(self.available) or "none"
        super().__init__(f"no run has metric {metric!r} (as folds or as a logged metric); available: {shown}")


class UnknownReferenceError(LabledgerError, LookupError):
    """The ``reference`` run is not one of the compared runs."""

    def __init__(self, reference: Any, labels: Sequence[str]) -> None:
        self.reference = reference
        super().__init__(
            f"reference {reference!r} is not one of the compared runs; give one of them "
            f"(its label {', '.join(labels)}, its id or the reference it was given by)"
        )


@dataclass
class Comparison:
    """Runs side by side: params, metrics (mean ± std over folds), comparability and paired tests."""

    runs: list[RunView]
    fold_keys: list[str]
    metric_keys: list[str]
    split: str
    test: str
    alpha: float
    pairs: list[PairOutcome] = field(default_factory=list)
    alternative: str = "two-sided"
    correction: str = "holm"
    rope: float | None = 0.0

    @property
    def labels(self) -> list[str]:
        return [_label(i) for i in range(len(self.runs))]

    @property
    def differing_params(self) -> list[str]:
        keys = sorted({k for r in self.runs for k in r.params})
        return [k for k in keys if len({json.dumps(r.params.get(k), sort_keys=True) for r in self.runs}) > 1]

    @property
    def comparable(self) -> bool:
        return all(p.comparable for p in self.pairs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [
                {"label": lab, "id": r.id, "experiment": r.experiment, "name": r.name, "status": r.status}
                for lab, r in zip(self.labels, self.runs, strict=True)
            ],
            "params": {
                k: [r.params.get(k) for r in self.runs]
                for k in sorted({k for r in self.runs for k in r.params})
            },
            "differing_params": self.differing_params,
            "folds": {k: [r.fold_stats.get((k, self.split)) for r in self.runs] for k in self.fold_keys},
            "metrics": {k: [r.summary.get(k, {}).get("last") for r in self.runs] for k in self.metric_keys},
            "alternative": self.alternative,
            "correction": self.correction,
            "rope": self.rope,
            "tests": [p.to_dict() for p in self.pairs],
        }

    def render(self, style: Callable[..., str] | None = None) -> str:
        """The text of ``labledger compare`` (``style`` = ``click.style`` to highlight differences)."""
        from labledger.analysis.compare_render import render_comparison

        return render_comparison(self, style)


def _label(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"R{i + 1}"


def compare(
    runs: Sequence[str | RunView],
    metric: str | None = None,
    split: str = "test",
    test: str = "nadeau-bengio",
    alpha: float = 0.05,
    store: str | os.PathLike[str] | Store | None = None,
    *,
    alternative: str = "two-sided",
    correction: str = "holm",
    reference: str | int | RunView | None = None,
    rope: float | None = 0.0,
    test_train_ratio: float | None = None,
) -> Comparison:
    """Compare runs (ids, id prefixes, ``experiment/name`` or views) with paired tests on their folds.

    With ``metric`` (a fold key, e.g. ``accuracy``) that key is tested, else
    every fold key the runs share. Two runs make one pair; more runs are tested
    pair by pair, or each against ``reference`` (a label ``A``…, an index, a
    given run reference or a view), and each metric's p-values are adjusted
    with ``correction`` (``holm``, ``bonferroni`` or ``none``).

    ``test`` is ``nadeau-bengio`` (the corrected test; on repeated k-fold the
    corrected repeated k-fold cv test, on time-ordered folds a paired t-test with
    a caveat), ``paired-t`` or ``wilcoxon``; ``alternative`` is ``two-sided``,
    ``greater`` or ``less`` about the values of A − B; ``test_train_ratio``
    (n_test/n_train) replaces the recorded fold sizes, and is needed for a
    corrected p-value when none are recorded; ``rope`` sets the Bayesian view's
    region of practical equivalence (``None`` leaves the view out).

    >>> ll.compare(["digits/rbf", "digits/linear", "digits/poly"], metric="roc_auc",
    ...            correction="bonferroni", rope=0.01).pairs[0].p_a_better  # doctest: +SKIP
    """
    from labledger.analysis.comparability import recorded_direction
    from labledger.analysis.multiple_testing import CORRECTIONS, UnknownCorrectionError
    from labledger.analysis.stats import ALTERNATIVES, TESTS, UnknownAlternativeError, UnknownTestError
    from labledger.query.aggregation import direction_resolver
    from labledger.query.runs import RunView, get_run

    if test not in TESTS:
        raise UnknownTestError(test)
    if alternative not in ALTERNATIVES:
        raise UnknownAlternativeError(alternative)
    if correction not in CORRECTIONS:
        raise UnknownCorrectionError(correction)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha!r}")
    if rope is not None and not rope >= 0:
        raise ValueError(f"rope must be a half-width >= 0 (e.g. 0.01), not {rope!r}")
    views = [r if isinstance(r, RunView) else get_run(r, store) for r in runs]
    if len(views) < 2:
        raise ValueError("compare needs at least two runs")
    fold_keys = sorted({k for r in views for (k, s) in r.fold_stats if s == split})
    metric_keys = sorted({k for r in views for k in r.summary})
    if metric is not None and metric not in fold_keys and metric not in metric_keys:
        raise MetricNotFoundError(metric, fold_keys + metric_keys)
    tested = [metric] if metric is not None else fold_keys
    comparison = Comparison(
        views,
        fold_keys,
        metric_keys,
        split,
        test,
        alpha,
        alternative=alternative,
        correction=correction,
        rope=rope,
    )
    labels = comparison.labels
    pairs = _pairs(len(views), _reference_index(reference, runs, views, labels))
    declared = direction_resolver(views[0].store)
    for key in tested:
        if key not in fold_keys:
            continue
        direction = recorded_direction(views, key) or declared(key)
        for i, j in pairs:
            comparison.pairs.append(
                compare_pair(
                    views[i],
                    views[j],
                    key,
                    split,
                    test,
                    alpha,
                    direction,
                    (labels[i], labels[j]),
                    alternative=alternative,
                    test_train_ratio=test_train_ratio,
                    rope=rope,
                )
            )
    for family in pair_family(comparison.pairs).values():
        adjust_family(family, correction)
    return comparison


def _pairs(n: int, reference: int | None) -> list[tuple[int, int]]:
    if reference is not None:
        return [(reference, j) for j in range(n) if j != reference]
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def _reference_index(
    reference: str | int | RunView | None, given: Sequence[Any], views: list[RunView], labels: list[str]
) -> int | None:
    if reference is None:
        return None
    if isinstance(reference, int) and not isinstance(reference, bool):
        if 0 <= reference < len(views):
            return reference
        raise UnknownReferenceError(reference, labels)
    for i, (g, v, lab) in enumerate(zip(given, views, labels, strict=True)):
        if (
            reference is g
            or reference in (lab, v.id, f"{v.experiment}/{v.name}")
            or (isinstance(reference, str) and reference == g)
        ):
            return i
    ids = [v.id for v in views]
    if isinstance(reference, str) and len(reference) >= 4:
        matches = [i for i, run_id in enumerate(ids) if run_id.startswith(reference)]
        if len(matches) == 1:
            return matches[0]
    raise UnknownReferenceError(getattr(reference, "id", reference), labels)
