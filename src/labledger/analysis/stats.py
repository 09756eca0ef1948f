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

The corrected repeated k-fold cv test (Bouckaert & Frank, 2004, "Evaluating
the Replicability of Significance Tests for Comparing Learning Algorithms",
PAKDD) is this same formula over all ``k·r`` folds of ``r`` repeats of k-fold
cross-validation: pass every fold of every repeat, with ``test_train_ratio``
the n_test / n_train of one fold (``1 / (k - 1)``), to
``paired_test(..., test="nadeau-bengio")``; then ``J = k·r`` and
``df = k·r - 1``. :data:`TEST_VARIANTS` holds its name for reports.

``alternative`` states the hypothesis about ``mean(a - b)``, as in scipy:
``"greater"`` asks whether ``a`` scores higher than ``b``.

>>> from labledger.analysis.stats import paired_test
>>> paired_test([0.91, 0.93, 0.92, 0.95, 0.94], [0.90, 0.90, 0.91, 0.92, 0.93],
...             test="nadeau-bengio", test_train_ratio=0.25).p_value  # doctest: +ELLIPSIS
0.0...
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from labledger.errors import LabledgerError

__all__ = [
    "ALTERNATIVES",
    "TESTS",
    "TEST_VARIANTS",
    "InvalidTestTrainRatioError",
    "NotEnoughFoldsError",
    "PairedTestResult",
    "UnequalFoldCountsError",
    "UnknownAlternativeError",
    "UnknownTestError",
    "paired_test",
]

#: test name → description shown in reports
TESTS = {
    "nadeau-bengio": "Nadeau–Bengio corrected resampled t-test",
    "paired-t": "paired t-test",
    "wilcoxon": "Wilcoxon signed-rank test",
}

#: published tests that ``paired_test`` computes under another name: name → description.
#: ``corrected-repeated-cv`` is ``test="nadeau-bengio"`` over all k·r folds of r repeats
#: of k-fold cross-validation, with the n_test / n_train of one fold.
TEST_VARIANTS = {
    "corrected-repeated-cv": "Bouckaert–Frank corrected repeated k-fold cv test",
}

#: alternative hypothesis about mean(a − b) → description
ALTERNATIVES = {
    "two-sided": "a and b differ",
    "greater": "a scores higher than b",
    "less": "a scores lower than b",
}


class UnknownTestError(LabledgerError, ValueError):
    """A statistical test name other than nadeau-bengio, paired-t or wilcoxon."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown test {name!r}; use one of {', '.join(TESTS)}")


class UnknownAlternativeError(LabledgerError, ValueError):
    """An alternative hypothesis other than two-sided, greater or less."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown alternative {name!r}; use one of {', '.join(ALTERNATIVES)}")


class NotEnoughFoldsError(LabledgerError, ValueError):
    """Fewer than two paired folds: no test is possible."""

    def __init__(self, n: int) -> None:
        self.n = n
        super().__init__(
            f"a paired test needs at least 2 folds scored by both runs; there are {n}. "
            "Cross-validate both runs on the same folds (run.log_folds)."
        )


class UnequalFoldCountsError(LabledgerError, ValueError):
    """The two runs have different numbers of fold scores, so they cannot be paired."""

    def __init__(self, n_a: int, n_b: int) -> None:
        self.n_a = n_a
        self.n_b = n_b
        super().__init__(
            f"paired folds must have equal counts, got {n_a} and {n_b}. "
            "Give one score per fold for both runs, in the same fold order."
        )


class InvalidTestTrainRatioError(LabledgerError, ValueError):
    """``test_train_ratio`` is missing, negative, zero where it must be positive, or not finite."""

    def __init__(self, value: float | None, what: str, allow_zero: bool = False) -> None:
        self.value = value
        bound = "≥ 0" if allow_zero else "> 0"
        super().__init__(
            f"{what} needs test_train_ratio = n_test / n_train {bound}, got {value!r}. "
            "Pass the fold sizes' ratio, e.g. 1 / (k - 1) for k-fold cross-validation."
        )


@dataclass(frozen=True)
class PairedTestResult:
    """The outcome of a paired test of ``a`` against ``b`` (``mean_difference`` = a − b).

    ``alternative`` is the hypothesis the p-value is for (see :data:`ALTERNATIVES`).
    """

    test: str
    n: int
    mean_difference: float
    std_difference: float  # ddof=1
    statistic: float
    p_value: float
    df: int | None
    test_train_ratio: float | None
    alternative: str = "two-sided"

    @property
    def description(self) -> str:
        return TESTS[self.test]


def paired_test(
    a: Sequence[float],
    b: Sequence[float],
    test: str = "nadeau-bengio",
    test_train_ratio: float | None = None,
    alternative: str = "two-sided",
) -> PairedTestResult:
    """Paired test of fold scores ``a`` against ``b`` (same folds, same order).

    ``test_train_ratio`` is n_test / n_train, required by ``nadeau-bengio``
    (``1 / (k - 1)`` for k-fold cross-validation). ``alternative`` is
    ``"two-sided"``, ``"greater"`` (a above b) or ``"less"``. Folds where either
    value is NaN are left out. When every difference is the same the p-value is
    0 or 1: 1 if the differences are all 0 (no evidence either way), else 0 in
    the direction of the difference and 1 against it.

    >>> round(paired_test([0.9, 0.92, 0.91], [0.88, 0.9, 0.9], "paired-t", alternative="greater").p_value, 4)
    0.0189
    """
    if test not in TESTS:
        raise UnknownTestError(test)
    if alternative not in ALTERNATIVES:
        raise UnknownAlternativeError(alternative)
    pairs = _pairs(a, b)
    if test == "nadeau-bengio" and (test_train_ratio is None or not 0 < test_train_ratio < math.inf):
        raise InvalidTestTrainRatioError(test_train_ratio, "the Nadeau–Bengio test")
    n = len(pairs)
    diffs = [x - y for x, y in pairs]
    mean = math.fsum(diffs) / n
    var = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    std = math.sqrt(var)
    if test == "wilcoxon":
        return _wilcoxon(pairs, diffs, mean, std, alternative)
    ratio = test_train_ratio if test == "nadeau-bengio" else None
    scale = 1.0 / n + (ratio or 0.0)
    if var == 0.0:
        statistic = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0.0 else _t_p_value(statistic, n - 1, alternative)
    else:
        statistic = mean / math.sqrt(scale * var)
        p = _t_p_value(statistic, n - 1, alternative)
    return PairedTestResult(
        test=test,
        n=n,
        mean_difference=mean,
        std_difference=std,
        statistic=statistic,
        p_value=p,
        df=n - 1,
        test_train_ratio=ratio,
        alternative=alternative,
    )


def _pairs(a: Sequence[float], b: Sequence[float]) -> list[tuple[float, float]]:
    """The ``(a, b)`` fold pairs without NaN; at least two of them."""
    if len(a) != len(b):
        raise UnequalFoldCountsError(len(a), len(b))
    pairs = [(float(x), float(y)) for x, y in zip(a, b, strict=True) if x == x and y == y]
    if len(pairs) < 2:
        raise NotEnoughFoldsError(len(pairs))
    return pairs


def _t_p_value(statistic: float, df: int, alternative: str) -> float:
    """p-value of a Student t statistic with ``df`` degrees of freedom."""
    from scipy import stats

    if alternative == "greater":
        p = float(stats.t.sf(statistic, df))
    elif alternative == "less":
        p = float(stats.t.cdf(statistic, df))
    else:
        p = float(2.0 * stats.t.sf(abs(statistic), df))
    return min(1.0, p)


def _wilcoxon(
    pairs: list[tuple[float, float]], diffs: list[float], mean: float, std: float, alternative: str
) -> PairedTestResult:
    from scipy import stats

    if all(d == 0.0 for d in diffs):
        statistic, p = 0.0, 1.0
    else:
        res = stats.wilcoxon([x for x, _ in pairs], [y for _, y in pairs], alternative=alternative)
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
        alternative=alternative,
    )


def smallest_wilcoxon_p(n: int, alternative: str = "two-sided") -> float:
    """The smallest p-value the exact Wilcoxon test can give with ``n`` pairs.

    >>> smallest_wilcoxon_p(5)
    0.0625
    """
    if alternative not in ALTERNATIVES:
        raise UnknownAlternativeError(alternative)
    sides = 2.0 if alternative == "two-sided" else 1.0
    return min(1.0, sides / 2**n)
