"""Two models on the same examples: aligning their predictions, McNemar's test, paired loss tests, flips.

Comparing the per-example predictions of two runs is only meaningful on the same test
examples, so :func:`align` refuses id sets that differ (or repeat an id) with a
:class:`TestSetMismatchError`. On aligned predictions:

- :func:`mcnemar_test` — McNemar's test on the discordant pairs (A right & B wrong vs
  A wrong & B right): the exact binomial test when there are fewer than 25 of them, else
  the chi-square test with continuity correction (as ``statsmodels``' ``mcnemar``);
- :func:`paired_loss_test` — the paired t-test and the Wilcoxon signed-rank test on the
  per-example loss differences, with the mean difference and its confidence interval;
- :func:`flips` — how many examples B fixes and breaks, overall and per slice.

>>> idx_a, idx_b = align(["x", "y", "z"], ["z", "x", "y"])
>>> idx_b.tolist()
[1, 2, 0]
>>> mcnemar_test([True, True, False, True], [True, False, True, False]).p_value
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labledger.analysis.slices import bin_columns, check_features, group_codes
from labledger.errors import InvalidValueError, LabledgerError

__all__ = [
    "ALL",
    "McNemarResult",
    "PairedLossResult",
    "TestSetMismatchError",
    "align",
    "flips",
    "mcnemar_test",
    "paired_loss_test",
]

#: the value of the ``by`` columns in the row of :func:`flips` that counts every example
ALL = "(all)"
#: fewer discordant pairs than this: McNemar's exact binomial test
EXACT_BELOW = 25


class TestSetMismatchError(LabledgerError, ValueError):
    """Two sets of predictions are not on the same examples (ids differ, or an id repeats).

    ``only_a``/``only_b`` are the ids found in one set only, ``duplicates_a``/``duplicates_b``
    the ids given more than once.
    """

    __test__ = False  # not a test class, whatever its name

    def __init__(
        self,
        only_a: list[Any],
        only_b: list[Any],
        duplicates_a: list[Any] | None = None,
        duplicates_b: list[Any] | None = None,
    ) -> None:
        self.only_a, self.only_b = only_a, only_b
        self.duplicates_a, self.duplicates_b = duplicates_a or [], duplicates_b or []
        super().__init__(self.describe())

    def describe(self, names: tuple[str, str] = ("A", "B")) -> str:
        """The refusal, the two sets named ``names`` (the message is ``describe()``)."""
        a, b = names
        problems = [
            f"{len(ids)} id{'s' * (len(ids) != 1)} {where} (e.g. {', '.join(map(repr, ids[:3]))})"
            for ids, where in (
                (self.duplicates_a, f"repeated in {a}"),
                (self.duplicates_b, f"repeated in {b}"),
                (self.only_a, f"only in {a}"),
                (self.only_b, f"only in {b}"),
            )
            if ids
        ]
        return (
            f"the two sets of predictions are not on the same examples: {'; '.join(problems)}. "
            "Compare runs evaluated on the same test set, each example once: log both runs' "
            "predictions with the same ids, or restrict both to the ids they share first."
        )


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test of two models' accuracy on the same examples.

    ``n01``: A right and B wrong (B breaks them); ``n10``: A wrong and B right (B fixes them).
    ``statistic`` is ``min(n01, n10)`` for the exact test, else the continuity-corrected
    chi-square ``(|n01 − n10| − 1)² / (n01 + n10)``.
    """

    n01: int
    n10: int
    n_both_right: int
    n_both_wrong: int
    statistic: float
    p_value: float
    exact: bool

    @property
    def n(self) -> int:
        """The number of examples."""
        return self.n01 + self.n10 + self.n_both_right + self.n_both_wrong

    def describe(self, alpha: float = 0.05, names: tuple[str, str] = ("A", "B")) -> str:
        """One sentence: what B fixes and breaks, the test and its verdict (A and B named ``names``).

        >>> print(McNemarResult(3, 12, 80, 5, 3.0, 0.035, True).describe())  # doctest: +NORMALIZE_WHITESPACE
        B fixes 12 examples A gets wrong and breaks 3 A gets right (net +9 of 100);
        McNemar's exact binomial test p=0.035: B is more accurate than A at α=0.05
        """
        a, b = names
        test = "exact binomial" if self.exact else "chi-square (continuity-corrected)"
        if self.p_value > alpha:
            verdict = f"no significant difference at α={alpha:g}"
        else:
            verdict = f"{b} is {'more' if self.n10 > self.n01 else 'less'} accurate than {a} at α={alpha:g}"
        return (
            f"{b} fixes {self.n10} examples {a} gets wrong and breaks {self.n01} {a} gets right "
            f"(net {self.n10 - self.n01:+d} of {self.n}); McNemar's {test} test "
            f"p={self.p_value:.3g}: {verdict}"
        )


@dataclass(frozen=True)
class PairedLossResult:
    """Per-example losses of A and B compared: ``mean_difference`` is mean(loss A − loss B).

    Positive: B's loss is lower. ``ci_low``/``ci_high`` is its t interval at ``1 − alpha``;
    ``p_value`` the paired t-test's, ``wilcoxon_p`` the signed-rank test's (two-sided).
    """

    n: int
    mean_difference: float
    ci_low: float
    ci_high: float
    t_statistic: float
    p_value: float
    wilcoxon_p: float
    alpha: float = 0.05

    def describe(self, names: tuple[str, str] = ("A", "B")) -> str:
        """One sentence with the difference, its interval and both p-values (A and B named ``names``).

        >>> result = PairedLossResult(500, 0.02, 0.01, 0.03, 3.9, 1e-4, 2e-4)
        >>> print(result.describe())  # doctest: +NORMALIZE_WHITESPACE
        mean loss A − B = 0.02 (95% CI 0.01 to 0.03) over 500 examples; paired t-test p=0.0001,
        Wilcoxon signed-rank p=0.0002: B has the lower loss
        """
        a, b = names
        level = f"{100 * (1 - self.alpha):g}%"
        if self.p_value > self.alpha:
            verdict = "no significant difference"
        else:
            verdict = f"{b if self.mean_difference > 0 else a} has the lower loss"
        return (
            f"mean loss {a} − {b} = {self.mean_difference:.4g} ({level} CI {self.ci_low:.4g} to "
            f"{self.ci_high:.4g}) over {self.n} examples; paired t-test p={self.p_value:.3g}, "
            f"Wilcoxon signed-rank p={self.wilcoxon_p:.3g}: {verdict}"
        )


def align(ids_a: Any, ids_b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Positions pairing two runs' predictions: ``ids_a[idx_a] == ids_b[idx_b]``, in A's order.

    Raises :class:`TestSetMismatchError` when an id repeats or the two id sets differ.

    >>> align([10, 11, 12], [12, 10, 11])[1].tolist()
    [1, 2, 0]
    >>> align([1, 2], [2, 3])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    labledger...TestSetMismatchError: ...: 1 id only in A (e.g. 1); 1 id only in B (e.g. 3). ...
    """
    a, b = pd.Index(_vector("ids_a", ids_a)), pd.Index(_vector("ids_b", ids_b))
    duplicates_a, duplicates_b = a[a.duplicated()].unique().tolist(), b[b.duplicated()].unique().tolist()
    if duplicates_a or duplicates_b:
        raise TestSetMismatchError([], [], duplicates_a, duplicates_b)
    idx_b = b.get_indexer(a)
    if (idx_b < 0).any() or len(a) != len(b):
        raise TestSetMismatchError(a[idx_b < 0].tolist(), b.difference(a, sort=False).tolist())
    return np.arange(len(a)), idx_b


def mcnemar_test(correct_a: Any, correct_b: Any, exact: bool | None = None) -> McNemarResult:
    """McNemar's test on aligned per-example correctness of A and B (two-sided).

    ``exact=None`` takes the exact binomial test below :data:`EXACT_BELOW` discordant
    pairs, the continuity-corrected chi-square test otherwise (with no discordant pair
    at all, ``p_value`` is 1).

    >>> result = mcnemar_test([True] * 30 + [False] * 10, [False] * 5 + [True] * 35)
    >>> result.n01, result.n10, round(result.p_value, 4)
    (5, 10, 0.3018)
    """
    from scipy import stats

    a, b = _pair("correct_a", correct_a, "correct_b", correct_b)
    a, b = a.astype(bool), b.astype(bool)
    n01, n10 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    both_right, both_wrong = int(np.sum(a & b)), int(np.sum(~a & ~b))
    discordant = n01 + n10
    exact = discordant < EXACT_BELOW if exact is None else bool(exact)
    if exact:
        statistic = float(min(n01, n10))
        p_value = min(1.0, 2.0 * float(stats.binom.cdf(statistic, discordant, 0.5)))
    elif discordant == 0:
        statistic, p_value = 0.0, 1.0
    else:
        statistic = (abs(n01 - n10) - 1.0) ** 2 / discordant
        p_value = float(stats.chi2.sf(statistic, 1))
    return McNemarResult(n01, n10, both_right, both_wrong, statistic, p_value, exact)


def paired_loss_test(loss_a: Any, loss_b: Any, alpha: float = 0.05) -> PairedLossResult:
    """Paired t-test and Wilcoxon signed-rank test on per-example losses (aligned: same examples, same order).

    >>> result = paired_loss_test([0.9, 0.5, 0.7, 0.8, 0.6], [0.4, 0.3, 0.5, 0.2, 0.4])
    >>> round(result.mean_difference, 3), result.p_value < 0.05
    (0.34, True)
    """
    from scipy import stats

    a, b = _pair("loss_a", loss_a, "loss_b", loss_b)
    try:
        d = a.astype(float) - b.astype(float)
    except (TypeError, ValueError):
        raise InvalidValueError("loss_a", a[:3], "expected numbers, one loss per example") from None
    if not 0.0 < alpha < 1.0:
        raise InvalidValueError("alpha", alpha, "expected a level strictly between 0 and 1, e.g. 0.05")
    n, mean = len(d), float(d.mean())
    if n < 2 or float(np.ptp(d)) == 0.0:  # no spread: the test statistics are undefined
        p_value = 1.0 if mean == 0 or n < 2 else 0.0
        t_statistic = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        ci_low = ci_high = mean
    else:
        result = stats.ttest_rel(a.astype(float), b.astype(float))
        ci = result.confidence_interval(1 - alpha)
        t_statistic, p_value = float(result.statistic), float(result.pvalue)
        ci_low, ci_high = float(ci.low), float(ci.high)
    wilcoxon_p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return PairedLossResult(n, mean, ci_low, ci_high, t_statistic, p_value, wilcoxon_p, alpha)


def flips(
    correct_a: Any,
    correct_b: Any,
    features: pd.DataFrame | None = None,
    by: list[str] | str | None = None,
    *,
    bins: int = 4,
) -> pd.DataFrame:
    """What B fixes and breaks, overall and per slice of ``by`` (columns of ``features``, binned).

    Columns: the ``by`` columns (:data:`ALL` in the first row, which counts every example),
    ``support``, ``both_right``, ``fixed`` (A wrong → B right), ``broken`` (A right → B
    wrong), ``both_wrong``, ``net`` (fixed − broken), ``accuracy_a``, ``accuracy_b``. Slices
    follow the overall row, the most net breakage first.

    >>> frame = pd.DataFrame({"site": ["a", "a", "b", "b"]})
    >>> table = flips([True, False, True, True], [True, True, False, True], frame, by="site")
    >>> table[["site", "fixed", "broken"]].values.tolist()
    [['(all)', 1, 1], ['b', 0, 1], ['a', 1, 0]]
    """
    a, b = _pair("correct_a", correct_a, "correct_b", correct_b)
    a, b = a.astype(bool), b.astype(bool)
    columns: list[str] = []
    if by is not None:
        if features is None:
            raise InvalidValueError("features", None, "slicing by columns needs the features frame")
        columns = check_features(features, len(a), by)
    overall = _counts(a, b, np.zeros(len(a), dtype=np.intp), 1)
    overall.insert(0, "_", 0)
    if not columns:
        return overall.drop(columns="_")
    group, keys = group_codes(bin_columns(features[columns], bins))  # type: ignore[index]
    per_slice = _counts(a, b, group, len(keys))
    per_slice = pd.concat([keys.reset_index(drop=True), per_slice], axis=1)
    per_slice = per_slice.sort_values("net", kind="stable").reset_index(drop=True)
    head = pd.DataFrame({c: [ALL] for c in columns}).join(overall.drop(columns="_"))
    return pd.concat([head, per_slice], ignore_index=True)


def _counts(a: np.ndarray, b: np.ndarray, group: np.ndarray, n_groups: int) -> pd.DataFrame:
    cell = np.bincount(group * 4 + a * 2 + b, minlength=4 * n_groups).reshape(n_groups, 4)
    both_wrong, fixed, broken, both_right = cell.T
    support = cell.sum(axis=1)
    return pd.DataFrame(
        {
            "support": support,
            "both_right": both_right,
            "fixed": fixed,
            "broken": broken,
            "both_wrong": both_wrong,
            "net": fixed - broken,
            "accuracy_a": (both_right + broken) / support,
            "accuracy_b": (both_right + fixed) / support,
        }
    )


def _vector(name: str, values: Any) -> np.ndarray:
    array = values.to_numpy() if isinstance(values, pd.Series | pd.Index) else np.asarray(values)
    if array.ndim != 1:
        raise InvalidValueError(name, f"shape {array.shape}", "expected one value per example (1-D)")
    return array


def _pair(name_a: str, a: Any, name_b: str, b: Any) -> tuple[np.ndarray, np.ndarray]:
    first, second = _vector(name_a, a), _vector(name_b, b)
    if len(first) != len(second) or not len(first):
        why = f"expected one value per example of {name_a} ({len(first)}), aligned with align()"
        raise InvalidValueError(name_b, f"{len(second)} values", why)
    return first, second
