"""Fixed-horizon A/B statistics on aggregates: sample ratio mismatch, lifts with intervals, CUPED.

Everything works on sums, so traffic is summarised per variant, never stored per unit:
:class:`Moments` holds ``n, sum, sum_sq`` of a metric and :class:`Covariate` adds the four
sums CUPED needs (``n, sum_x, sum_x2, sum_xy`` of a pre-period covariate ``x`` paired with the
metric ``y``). Check :func:`srm_check` first: a broken split invalidates every lift.

* :func:`proportion_lift`: difference ``b − a`` with a Wald interval, relative lift ``b/a − 1``
  with a delta-method interval, pooled two-proportion z-test (statsmodels ``proportions_ztest``).
* :func:`mean_lift`: Welch's t-test (SciPy ``ttest_ind_from_stats``), difference interval on
  the Welch–Satterthwaite degrees of freedom, delta-method relative interval; with ``cuped``
  the metric becomes ``y − θ(x − x̄)``, ``θ = cov(x, y) / var(x)`` over both variants pooled
  (Deng, Xu, Kohavi & Walker, 2013, "Improving the Sensitivity of Online Controlled
  Experiments by Utilizing Pre-Experiment Data", WSDM), shrinking the variance by ``1 − ρ²``.
* :func:`holm`: Holm-adjusted p-values for several variants or metrics. Tests are two-sided;
  relative intervals use the normal quantile (the delta method is asymptotic).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import astuple, dataclass
from typing import Any

from labledger.analysis.multiple_testing import adjust_p_values
from labledger.online.checks import OnlineInputError

__all__ = [
    "ABTestInputError",
    "Covariate",
    "Lift",
    "Moments",
    "SRMResult",
    "holm",
    "mean_lift",
    "proportion_lift",
    "srm_check",
]


class ABTestInputError(OnlineInputError):
    """An argument of an A/B statistic is out of range or inconsistent; ``argument`` names it."""

    def __init__(self, argument: str, value: Any, reason: str) -> None:
        super().__init__(argument, value, reason)
        self.reason = reason
        shown = repr(value)
        self.args = (f"invalid {argument} = {shown if len(shown) <= 80 else shown[:77] + '...'}: {reason}",)


def _count(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != math.floor(value):
        raise ABTestInputError(name, value, "expected a whole number")
    if value < minimum:
        raise ABTestInputError(name, value, f"must be at least {minimum}")
    return int(float(value))


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ABTestInputError(name, value, "expected a finite number")
    return float(value)


def _alpha(alpha: Any, name: str = "alpha") -> float:
    a = _finite(name, alpha)
    if not 0.0 < a < 1.0:
        raise ABTestInputError(name, alpha, "must lie strictly between 0 and 1")
    return a


def _cauchy_schwarz(name: str, n: int, total: float, total_sq: float) -> None:
    if total * total > n * total_sq * (1 + 1e-9) + 1e-12:
        raise ABTestInputError(name, total_sq, f"too small for n={n} and sum {total}: sum² ≤ n·{name}")


def _sums_of(name: str, values: Any) -> tuple[int, Any]:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ABTestInputError(name, values, "expected a one-dimensional array of per-unit values")
    if not np.all(np.isfinite(arr)):
        raise ABTestInputError(name, values, "contains NaN or infinity; drop or impute those units")
    return int(arr.size), arr


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of a metric in one variant; add two to merge batches.

    >>> m = Moments.from_values([1.0, 2.0, 3.0, 6.0])
    >>> m.n, m.mean, m.variance
    (4, 3.0, 4.666666666666667)
    >>> (Moments.from_values([1.0, 2.0]) + Moments.from_values([3.0, 6.0])) == m
    True
    """

    n: int
    sum: float
    sum_sq: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _count("n", self.n))
        object.__setattr__(self, "sum", _finite("sum", self.sum))
        object.__setattr__(self, "sum_sq", _finite("sum_sq", self.sum_sq))
        if self.sum_sq < 0 or (self.n == 0 and (self.sum or self.sum_sq)):
            raise ABTestInputError("sum_sq", self.sum_sq, "must be ≥ 0, and sums of no units are 0")
        _cauchy_schwarz("sum_sq", self.n, self.sum, self.sum_sq)

    @classmethod
    def from_values(cls, values: Any) -> Moments:
        """Moments of the per-unit values of one variant."""
        n, arr = _sums_of("values", values)
        return cls(n, float(arr.sum()), float((arr * arr).sum()))

    @property
    def mean(self) -> float:
        """Sample mean (NaN when empty)."""
        return self.sum / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Sample variance, ddof=1 (NaN below two units)."""
        if self.n < 2:
            return math.nan
        return max(0.0, (self.sum_sq - self.sum * self.sum / self.n) / (self.n - 1))

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.sum + other.sum, self.sum_sq + other.sum_sq)


@dataclass(frozen=True)
class Covariate:
    """Sums of a pre-period covariate ``x`` paired with the metric ``y`` of one variant, for CUPED.

    With the variant's :class:`Moments` of ``y`` these are all CUPED needs.

    >>> c = Covariate.from_values(x=[1.0, 2.0, 3.0], y=[2.0, 4.0, 7.0])
    >>> c.n, c.sum_x, c.sum_x2, c.sum_xy
    (3, 6.0, 14.0, 31.0)
    """

    n: int
    sum_x: float
    sum_x2: float
    sum_xy: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _count("n", self.n))
        for name in ("sum_x", "sum_x2", "sum_xy"):
            object.__setattr__(self, name, _finite(name, getattr(self, name)))
        _cauchy_schwarz("sum_x2", self.n, self.sum_x, self.sum_x2)

    @classmethod
    def from_values(cls, x: Any, y: Any) -> Covariate:
        """Covariate sums from per-unit covariate ``x`` and metric ``y`` (same units, same order)."""
        n, xs = _sums_of("x", x)
        ny, ys = _sums_of("y", y)
        if n != ny:
            raise ABTestInputError("y", f"{ny} values", f"must pair one-to-one with the {n} values of x")
        return cls(n, float(xs.sum()), float((xs * xs).sum()), float((xs * ys).sum()))

    def __add__(self, other: Covariate) -> Covariate:
        return Covariate(*(u + v for u, v in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class SRMResult:
    """Chi-square goodness of fit of the observed split against the planned allocation."""

    observed: dict[str, int]
    expected: dict[str, float]
    statistic: float
    p_value: float
    threshold: float
    flagged: bool

    def describe(self) -> str:
        """One line: loud when the split is off."""
        total = sum(self.observed.values())
        seen = ", ".join(f"{k}={v:,} ({v / total:.2%})" for k, v in self.observed.items())
        planned = ", ".join(f"{k}={e / total:.2%}" for k, e in self.expected.items())
        test = f"chi² = {self.statistic:.3g}, p = {self.p_value:.3g}"
        if self.flagged:
            return (
                f"SAMPLE RATIO MISMATCH: observed {seen} against planned {planned} ({test} < "
                f"{self.threshold:g}). Do not trust any lift: find why assignment or logging lost units."
            )
        return f"no sample ratio mismatch: observed {seen}, planned {planned} ({test} ≥ {self.threshold:g})"


def srm_check(
    observed: Mapping[str, int], allocation: Mapping[str, float], threshold: float = 0.001
) -> SRMResult:
    """Test whether the units per variant fit the planned allocation (weights are normalised).

    >>> r = srm_check({"a": 51_000, "b": 49_000}, {"a": 0.5, "b": 0.5})
    >>> r.flagged, round(r.statistic, 6)
    (True, 40.0)
    >>> r.describe()[:22]
    'SAMPLE RATIO MISMATCH:'
    """
    from scipy.stats import chisquare

    threshold = _alpha(threshold, "threshold")
    if set(observed) != set(allocation) or len(observed) < 2:
        raise ABTestInputError(
            "allocation",
            dict(allocation),
            f"must name the same two or more variants as observed {list(observed)}",
        )
    counts = {k: _count(f"observed[{k!r}]", v) for k, v in observed.items()}
    weights = {k: _finite(f"allocation[{k!r}]", allocation[k]) for k in counts}
    if any(w <= 0 for w in weights.values()):
        raise ABTestInputError("allocation", weights, "every planned share must be positive")
    total = sum(counts.values())
    if total == 0:
        raise ABTestInputError("observed", counts, "no units observed yet")
    norm = sum(weights.values())
    expected = {k: total * w / norm for k, w in weights.items()}
    keys = list(counts)
    stat, p = chisquare([counts[k] for k in keys], [expected[k] for k in keys])
    return SRMResult(counts, expected, float(stat), float(p), threshold, bool(p < threshold))


@dataclass(frozen=True)
class Lift:
    """Effect of variant b over control a: absolute and relative, with intervals and a p-value.

    With CUPED, ``control``/``treatment`` are the adjusted means, ``theta`` the coefficient
    and ``variance_reduction`` the factor ``1 − ρ²`` the variance was multiplied by.
    """

    control: float
    treatment: float
    difference: float
    difference_ci: tuple[float, float]
    relative: float
    relative_ci: tuple[float, float]
    statistic: float
    p_value: float
    alpha: float
    test: str
    df: float | None = None
    theta: float | None = None
    variance_reduction: float | None = None

    @property
    def significant(self) -> bool:
        """Whether the two-sided test rejects "no difference" at ``alpha``."""
        return self.p_value < self.alpha

    def describe(self) -> str:
        """One line: the lift, its interval, and the verdict."""
        level = f"{1 - self.alpha:.0%} CI"
        lo, hi = self.difference_ci
        text = f"b − a = {self.difference:+.4g} ({level} {lo:+.4g} to {hi:+.4g})"
        if math.isfinite(self.relative):
            rlo, rhi = self.relative_ci
            text += f", relative {self.relative:+.2%} ({level} {rlo:+.2%} to {rhi:+.2%})"
        verdict = "significant" if self.significant else "not significant"
        text += f"; p = {self.p_value:.3g}, {verdict} at α = {self.alpha:g} ({self.test})"
        if self.variance_reduction is not None:
            text += f"; CUPED kept {self.variance_reduction:.0%} of the variance (θ = {self.theta:.3g})"
        return text


def _relative(ma: float, mb: float, qa: float, qb: float, z: float) -> tuple[float, tuple[float, float]]:
    """``mb/ma − 1`` and its delta-method interval, ``qa``, ``qb`` being the means' variances."""
    if ma == 0:
        return math.nan, (math.nan, math.nan)
    rel = mb / ma - 1
    se = math.sqrt(qb / ma**2 + mb**2 * qa / ma**4)
    return rel, (rel - z * se, rel + z * se)


def proportion_lift(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, alpha: float = 0.05
) -> Lift:
    """Lift of conversion rate b over a, with the pooled two-proportion z-test.

    When nobody (or everybody) converted in both variants the rates are equal: p = 1.

    >>> lift = proportion_lift(1_000, 10_000, 1_100, 10_000)
    >>> round(lift.difference, 4), round(lift.relative, 4), round(lift.p_value, 4)
    (0.01, 0.1, 0.0211)
    """
    from scipy.stats import norm
    from statsmodels.stats.proportion import proportions_ztest

    alpha = _alpha(alpha)
    na, nb = _count("trials_a", trials_a, 1), _count("trials_b", trials_b, 1)
    sa, sb = _count("successes_a", successes_a), _count("successes_b", successes_b)
    if sa > na:
        raise ABTestInputError("successes_a", successes_a, f"exceeds trials_a = {na}")
    if sb > nb:
        raise ABTestInputError("successes_b", successes_b, f"exceeds trials_b = {nb}")
    pa, pb = sa / na, sb / nb
    if sa + sb in (0, na + nb):
        stat, p = 0.0, 1.0
    else:
        z_stat, p_val = proportions_ztest([sb, sa], [nb, na])
        stat, p = float(z_stat), float(p_val)
    z = float(norm.ppf(1 - alpha / 2))
    var_a, var_b = pa * (1 - pa) / na, pb * (1 - pb) / nb
    diff, half = pb - pa, z * math.sqrt(var_a + var_b)
    rel, rel_ci = _relative(pa, pb, var_a, var_b, z)
    return Lift(
        pa, pb, diff, (diff - half, diff + half), rel, rel_ci, stat, p, alpha, "two-proportion z-test"
    )


def cuped_adjusted(
    a: Moments, b: Moments, ca: Covariate, cb: Covariate
) -> tuple[Moments, Moments, float, float]:
    """Moments of ``y − θ(x − x̄)`` per variant, θ and ``1 − ρ²`` from the pooled sums."""
    for name, m, c in (("a", a, ca), ("b", b, cb)):
        if c.n != m.n:
            raise ABTestInputError("cuped", c, f"covariate of {name} has n={c.n} but the metric has n={m.n}")
    n = a.n + b.n
    sx, sy = ca.sum_x + cb.sum_x, a.sum + b.sum
    sxx_c = ca.sum_x2 + cb.sum_x2 - sx * sx / n
    syy_c = a.sum_sq + b.sum_sq - sy * sy / n
    sxy_c = ca.sum_xy + cb.sum_xy - sx * sy / n
    if sxx_c <= 0:
        raise ABTestInputError("cuped", (ca, cb), "the covariate is constant; CUPED needs it to vary")
    theta = sxy_c / sxx_c
    rho2 = sxy_c * sxy_c / (sxx_c * syy_c) if syy_c > 0 else 0.0
    x_bar = sx / n

    def adjusted(m: Moments, c: Covariate) -> Moments:
        # z = y − θ(x − x̄): Σz and Σz² expand into the sums we hold
        sum_z = m.sum - theta * (c.sum_x - m.n * x_bar)
        sum_dx2 = c.sum_x2 - 2 * x_bar * c.sum_x + m.n * x_bar**2
        sum_ydx = c.sum_xy - x_bar * m.sum
        sum_z2 = m.sum_sq - 2 * theta * sum_ydx + theta**2 * sum_dx2
        # keep the pair consistent (Σz² ≥ (Σz)²/n) against rounding
        return Moments(m.n, sum_z, max(sum_z2, sum_z * sum_z / m.n))

    return adjusted(a, ca), adjusted(b, cb), theta, 1.0 - rho2


def mean_lift(
    a: Moments, b: Moments, alpha: float = 0.05, cuped: tuple[Covariate, Covariate] | None = None
) -> Lift:
    """Lift of the mean of b over a with Welch's t-test; ``cuped=(covariate_a, covariate_b)``
    adjusts both variants with a pre-period covariate first.

    >>> a = Moments.from_values([3.0, 4.0, 5.0, 4.0, 6.0])
    >>> b = Moments.from_values([5.0, 6.0, 7.0, 5.0, 8.0])
    >>> lift = mean_lift(a, b)
    >>> round(lift.difference, 3), round(lift.p_value, 4), round(lift.df, 3)
    (1.8, 0.0492, 7.86)
    """
    from scipy.stats import norm, t, ttest_ind_from_stats

    alpha = _alpha(alpha)
    for name, m in (("a", a), ("b", b)):
        if not isinstance(m, Moments):
            raise ABTestInputError(
                name, m, "expected Moments (use Moments.from_values or Moments(n, sum, sum_sq))"
            )
        if m.n < 2:
            raise ABTestInputError(name, m, "needs at least two units for a variance")
    theta = reduction = None
    if cuped is not None:
        if len(cuped) != 2 or not all(isinstance(c, Covariate) for c in cuped):
            raise ABTestInputError("cuped", cuped, "expected a pair (Covariate of a, Covariate of b)")
        a, b, theta, reduction = cuped_adjusted(a, b, cuped[0], cuped[1])
    ma, mb, va, vb = a.mean, b.mean, a.variance, b.variance
    qa, qb = va / a.n, vb / b.n
    if qa + qb == 0:
        raise ABTestInputError(
            "b", b, "both variants have zero variance; a t-test needs spread in the metric"
        )
    res = ttest_ind_from_stats(mb, math.sqrt(vb), b.n, ma, math.sqrt(va), a.n, equal_var=False)
    df = (qa + qb) ** 2 / (qa**2 / (a.n - 1) + qb**2 / (b.n - 1))
    diff = mb - ma
    half = float(t.ppf(1 - alpha / 2, df)) * math.sqrt(qa + qb)
    rel, rel_ci = _relative(ma, mb, qa, qb, float(norm.ppf(1 - alpha / 2)))
    name = "Welch's t-test" + (" with CUPED" if cuped is not None else "")
    return Lift(
        ma, mb, diff, (diff - half, diff + half), rel, rel_ci,
        float(res.statistic), float(res.pvalue), alpha, name, df, theta, reduction,
    )  # fmt: skip


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values by name (NaN stays NaN and does not count).

    >>> holm({"b": 0.01, "c": 0.04, "d": 0.03})
    {'b': 0.03, 'c': 0.06, 'd': 0.06}
    """
    keys = list(pvalues)
    return dict(zip(keys, adjust_p_values([pvalues[k] for k in keys], "holm"), strict=True))
