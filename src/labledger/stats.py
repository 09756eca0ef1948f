"""Paired tests on per-fold scores of two models evaluated on the same folds.

Cross-validation folds share most of their training data, so the fold
scores of one model are correlated and the plain paired t-test is too
confident. The Nadeau–Bengio corrected resampled t-test inflates the variance
by the test/train size ratio::

    t = mean(d) / sqrt((1/J + n_test/n_train) * var(d, ddof=1)),   df = J - 1

with ``d`` the per-fold differences and ``J`` the number of folds
(Nadeau & Bengio, 2003, "Inference for the Generalization Error", Machine
Learning 52(3)). The plain paired t-test (``1/J`` alone) and the Wilcoxon
signed-rank test are offered too.

>>> from labledger.stats import paired_test
>>> paired_test([0.91, 0.93, 0.92, 0.95, 0.94], [0.90, 0.90, 0.91, 0.92, 0.93],
...             test="nadeau-bengio", test_train_ratio=0.25).p_value  # doctest: +ELLIPSIS
0.0...
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from labledger.errors import LabledgerError

__all__ = ["TESTS", "PairedTestResult", "UnknownTestError", "paired_test"]

#: test name → description shown in reports
TESTS = {
    "nadeau-bengio": "Nadeau–Bengio corrected resampled t-test",
    "paired-t": "paired t-test",
    "wilcoxon": "Wilcoxon signed-rank test",
}


class UnknownTestError(LabledgerError, ValueError):
    """A statistical test name other than nadeau-bengio, paired-t or wilcoxon."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown test {name!r}; use one of {', '.join(TESTS)}")


class NotEnoughFoldsError(LabledgerError, ValueError):
    """Fewer than two paired folds: no test is possible."""

    def __init__(self, n: int) -> None:
        self.n = n
        super().__init__(
            f"a paired test needs at least 2 folds scored by both runs; there are {n}. "
            "Cross-validate both runs on the same folds (run.log_folds)."
        )


@dataclass(frozen=True)
class PairedTestResult:
    """The outcome of a two-sided paired test of ``a`` against ``b`` (``mean_difference`` = a − b)."""

    test: str
    n: int
    mean_difference: float
    std_difference: float  # ddof=1
    statistic: float
    p_value: float
    df: int | None
    test_train_ratio: float | None

    @property
    def description(self) -> str:
        return TESTS[self.test]


def paired_test(
    a: Sequence[float],
    b: Sequence[float],
    test: str = "nadeau-bengio",
    test_train_ratio: float | None = None,
) -> PairedTestResult:
    """Two-sided paired test of fold scores ``a`` against ``b`` (same folds, same order).

    ``test_train_ratio`` is n_test / n_train, required by ``nadeau-bengio``
    (``1 / (k - 1)`` for k-fold cross-validation). Folds where either value is
    NaN are left out.

    >>> paired_test([0.9, 0.92, 0.91], [0.88, 0.9, 0.9], "paired-t").p_value  # doctest: +SKIP
    """
    if test not in TESTS:
        raise UnknownTestError(test)
    if len(a) != len(b):
        raise ValueError(f"paired folds must have equal counts, got {len(a)} and {len(b)}")
    pairs = [(float(x), float(y)) for x, y in zip(a, b, strict=True) if x == x and y == y]
    n = len(pairs)
    if n < 2:
        raise NotEnoughFoldsError(n)
    diffs = [x - y for x, y in pairs]
    mean = math.fsum(diffs) / n
    var = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    std = math.sqrt(var)
    if test == "wilcoxon":
        return _wilcoxon(pairs, diffs, mean, std)
    if test == "nadeau-bengio":
        if test_train_ratio is None or not test_train_ratio > 0:
            raise ValueError("the Nadeau–Bengio test needs test_train_ratio = n_test / n_train > 0")
        scale = 1.0 / n + test_train_ratio
    else:
        scale = 1.0 / n
    from scipy import stats

    if var == 0.0:
        statistic = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0.0 else 0.0
    else:
        statistic = mean / math.sqrt(scale * var)
        p = float(2.0 * stats.t.sf(abs(statistic), n - 1))
    return PairedTestResult(
        test=test,
        n=n,
        mean_difference=mean,
        std_difference=std,
        statistic=statistic,
        p_value=min(1.0, p),
        df=n - 1,
        test_train_ratio=test_train_ratio if test == "nadeau-bengio" else None,
    )


def _wilcoxon(
    pairs: list[tuple[float, float]], diffs: list[float], mean: float, std: float
) -> PairedTestResult:
    from scipy import stats

    if all(d == 0.0 for d in diffs):
        statistic, p = 0.0, 1.0
    else:
        res = stats.wilcoxon([x for x, _ in pairs], [y for _, y in pairs])
        statistic, p = float(res.statistic), float(res.pvalue)
    return PairedTestResult(
        test="wilcoxon",
        n=len(pairs),
        mean_difference=mean,
        std_difference=std,
        statistic=statistic,
        p_value=p,
        df=None,
        test_train_ratio=None,
    )


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon test can give with ``n`` pairs."""
    return min(1.0, 2.0 / 2**n)
