"""Peeking-safe monitoring of an A/B test: the mixture sequential probability ratio test (mSPRT).

A fixed-horizon z-test is valid once, at the planned sample size. Checking it every day
and stopping at the first "significant" look inflates the false-positive rate far above
α (about 30% for 30 daily looks at α = 5%). The mSPRT of Johari, Koomen, Pekelis & Walsh
(2017, "Peeking at A/B Tests: Why It Matters, and What to Do About It", KDD; the method
behind Optimizely's stats engine) gives an *always-valid* p-value instead: stopping at any
look, chosen in any way, keeps the false-positive rate at most α.

At each look the estimate θ̂ of the difference ``b − a`` (treatment minus control) has
variance V. Mixing the alternative over θ ~ Normal(0, τ²) gives the likelihood ratio ::

    Λ = sqrt(V / (V + τ²)) · exp(τ² θ̂² / (2 V (V + τ²)))

and the always-valid p-value ``p_n = min(1, min_{k ≤ n} 1 / Λ_k)``, which never rises
from one look to the next. Inverting the test gives a confidence sequence: the intervals
``θ̂ ± sqrt(V (V + τ²) / τ² · (log((V + τ²) / V) + 2 log(1 / α)))``, intersected over the
looks so far, cover the true difference at every look at once with probability ≥ 1 − α;
the test rejects at a look exactly when 0 has left the running interval.

The mixing variance τ² tunes where the test is most powerful: set it to the square of the
smallest difference worth detecting (``tau2_from_mde(mde) == mde ** 2``); any τ² > 0
keeps the guarantee, only the speed of detection changes.

>>> from labledger.online.sequential import looks_from_counts, msprt, tau2_from_mde
>>> looks = looks_from_counts([50, 98, 151], [1000, 2000, 3000], [71, 142, 215], [1000, 2000, 3000])
>>> result = msprt(looks, tau2=tau2_from_mde(0.02))
>>> [round(p, 3) for p in result.p_values], result.first_rejection
([0.468, 0.066, 0.015], 2)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from labledger.online.checks import OnlineInputError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Look",
    "PeekingSimulation",
    "SequentialInputError",
    "SequentialResult",
    "looks_from_counts",
    "looks_from_sums",
    "msprt",
    "peeking_simulation",
    "tau2_from_mde",
]


class SequentialInputError(OnlineInputError):
    """An argument of a sequential test is out of range; ``argument`` names it."""


class Look(NamedTuple):
    """One interim look: the estimated difference ``b − a`` and the variance of that estimate."""

    estimate: float
    variance: float


@dataclass(frozen=True)
class SequentialResult:
    """The mSPRT over a series of looks (index 0 is the first look).

    ``p_values`` are always-valid and never increase; ``lower`` / ``upper`` are the
    confidence sequence at level ``1 − alpha``; ``first_rejection`` is the index of the
    first look whose p-value is ≤ ``alpha`` (``None`` if none is).
    """

    alpha: float
    tau2: float
    estimates: tuple[float, ...]
    variances: tuple[float, ...]
    likelihood_ratios: tuple[float, ...]
    p_values: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    first_rejection: int | None

    @property
    def rejected(self) -> bool:
        """Whether some look so far rejects "no difference" at ``alpha``."""
        return self.first_rejection is not None

    @property
    def p_value(self) -> float:
        """The always-valid p-value at the latest look."""
        return self.p_values[-1]

    def describe(self) -> str:
        """One line: the verdict at the latest look."""
        n = len(self.p_values)
        level = f"{1 - self.alpha:.0%}"
        interval = f"{level} confidence sequence [{self.lower[-1]:.4g}, {self.upper[-1]:.4g}]"
        if self.first_rejection is None:
            return (
                f"no difference shown after {n} looks (always-valid p = {self.p_value:.3g}); "
                f"difference {self.estimates[-1]:.4g}, {interval}; keep collecting or stop for futility"
            )
        return (
            f"b differs from a since look {self.first_rejection + 1} of {n} "
            f"(always-valid p = {self.p_value:.3g}); difference {self.estimates[-1]:.4g}, {interval}"
        )


def tau2_from_mde(mde: float) -> float:
    """The mixing variance τ² for a minimum detectable difference: ``mde ** 2``.

    >>> tau2_from_mde(0.01)
    0.0001
    """
    if not (isinstance(mde, numbers.Real) and math.isfinite(mde) and mde != 0):
        raise SequentialInputError("mde", mde, "a finite, non-zero difference in the metric's units")
    return float(mde) ** 2


def _check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, numbers.Real) and 0 < alpha < 1):
        raise SequentialInputError("alpha", alpha, "in (0, 1), e.g. 0.05")
    return float(alpha)


def _check_tau2(tau2: float) -> float:
    if not (isinstance(tau2, numbers.Real) and 0 < tau2 < math.inf):
        raise SequentialInputError("tau2", tau2, "a finite mixing variance > 0, e.g. tau2_from_mde(0.01)")
    return float(tau2)


def _log_lr(est: np.ndarray, var: np.ndarray, tau2: float) -> np.ndarray:
    """log Λ of the normal-mixture SPRT, elementwise."""
    import numpy as np

    return 0.5 * np.log(var / (var + tau2)) + tau2 * est**2 / (2 * var * (var + tau2))


def _half_width(var: np.ndarray, tau2: float, alpha: float) -> np.ndarray:
    import numpy as np

    return np.sqrt(var * (var + tau2) / tau2 * (np.log((var + tau2) / var) + 2 * np.log(1 / alpha)))


def msprt(looks: Iterable[tuple[float, float]], tau2: float, alpha: float = 0.05) -> SequentialResult:
    """Always-valid p-values and a confidence sequence for the difference ``b − a``.

    :param looks: ``(estimate, variance)`` of the difference at each look, oldest first
        (see :func:`looks_from_counts` and :func:`looks_from_sums`); variances > 0.
    :param tau2: mixing variance τ² > 0; :func:`tau2_from_mde` gives a sensible one.
    :param alpha: the level at which ``first_rejection`` and the intervals are computed.

    >>> r = msprt([(0.5, 1.0), (0.4, 0.25), (0.45, 0.01)], tau2=0.25)
    >>> [round(p, 4) for p in r.p_values], r.first_rejection
    ([1.0, 1.0, 0.0003], 2)
    """
    import numpy as np

    tau2, alpha = _check_tau2(tau2), _check_alpha(alpha)
    try:
        pairs = [tuple(look) for look in looks]
    except TypeError:
        raise SequentialInputError("looks", looks, "an iterable of (estimate, variance) pairs") from None
    if not pairs:
        raise SequentialInputError("looks", pairs, "at least one (estimate, variance) pair")
    for i, pair in enumerate(pairs):
        ok = len(pair) == 2 and all(isinstance(x, int | float | np.floating | np.integer) for x in pair)
        if not ok or not (math.isfinite(pair[0]) and 0 < pair[1] < math.inf):
            raise SequentialInputError(
                f"looks[{i}]", pair, "an (estimate, variance) pair with a finite estimate and variance > 0"
            )
    est = np.array([p[0] for p in pairs], dtype=float)
    var = np.array([p[1] for p in pairs], dtype=float)
    log_lr = _log_lr(est, var, tau2)
    p_values = np.minimum(1.0, np.exp(-np.maximum.accumulate(log_lr)))
    half = _half_width(var, tau2, alpha)
    lower, upper = np.maximum.accumulate(est - half), np.minimum.accumulate(est + half)
    rejecting = np.flatnonzero(p_values <= alpha)
    return SequentialResult(
        alpha=alpha,
        tau2=tau2,
        estimates=tuple(est.tolist()),
        variances=tuple(var.tolist()),
        likelihood_ratios=tuple(np.exp(log_lr).tolist()),
        p_values=tuple(p_values.tolist()),
        lower=tuple(lower.tolist()),
        upper=tuple(upper.tolist()),
        first_rejection=int(rejecting[0]) if rejecting.size else None,
    )


def _cumulative(name: str, values: Sequence[float], n_looks: int | None, integer: bool) -> np.ndarray:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0 or (n_looks is not None and arr.size != n_looks):
        size = "one value per look" + (f" ({n_looks} looks)" if n_looks is not None else "")
        raise SequentialInputError(name, values, f"a non-empty 1-D sequence with {size}")
    if not np.isfinite(arr).all() or (integer and ((arr < 0).any() or (arr != np.round(arr)).any())):
        raise SequentialInputError(name, values, "finite" + (" whole counts ≥ 0" if integer else " numbers"))
    return arr


def looks_from_counts(
    successes_a: Sequence[int], trials_a: Sequence[int], successes_b: Sequence[int], trials_b: Sequence[int]
) -> list[Look]:
    """Looks at the difference of two proportions from *cumulative* counts per look.

    The estimate is ``successes_b / trials_b − successes_a / trials_a`` and its variance
    the unpooled ``p_a (1 − p_a) / n_a + p_b (1 − p_b) / n_b``.

    >>> [tuple(round(x, 5) for x in look) for look in looks_from_counts([10], [100], [20], [100])]
    [(0.1, 0.0025)]
    """
    import numpy as np

    s_a = _cumulative("successes_a", successes_a, None, True)
    n = s_a.size
    n_a, s_b, n_b = (
        _cumulative(name, v, n, True)
        for name, v in (("trials_a", trials_a), ("successes_b", successes_b), ("trials_b", trials_b))
    )
    for name, s, t in (("a", s_a, n_a), ("b", s_b, n_b)):
        if (t <= 0).any() or (s > t).any():
            raise SequentialInputError(
                f"trials_{name}", t.tolist(), f"> 0 and ≥ successes_{name} at every look"
            )
        if (np.diff(t) < 0).any() or (np.diff(s) < 0).any():
            raise SequentialInputError(f"trials_{name}", t.tolist(), "cumulative (never decreasing) per look")
    p_a, p_b = s_a / n_a, s_b / n_b
    return _looks(p_b - p_a, p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)


def looks_from_sums(
    n_a: Sequence[int],
    sum_a: Sequence[float],
    sum_sq_a: Sequence[float],
    n_b: Sequence[int],
    sum_b: Sequence[float],
    sum_sq_b: Sequence[float],
) -> list[Look]:
    """Looks at the difference of two means from cumulative count, sum and sum of squares per look.

    >>> looks_from_sums([4], [10.0], [30.0], [4], [14.0], [54.0])
    [Look(estimate=1.0, variance=0.8333333333333334)]
    """
    size = _cumulative("n_a", n_a, None, True).size
    arms = []
    for arm, (n, s, ss) in (("a", (n_a, sum_a, sum_sq_a)), ("b", (n_b, sum_b, sum_sq_b))):
        count = _cumulative(f"n_{arm}", n, size, True)
        if (count < 2).any():
            raise SequentialInputError(f"n_{arm}", n, "at least 2 observations at every look")
        total = _cumulative(f"sum_{arm}", s, size, False)
        var = (_cumulative(f"sum_sq_{arm}", ss, size, False) - total**2 / count) / (count - 1)
        arms.append((total / count, var.clip(min=0.0) / count))
    (mean_a, v_a), (mean_b, v_b) = arms
    return _looks(mean_b - mean_a, v_a + v_b)


def _looks(est: np.ndarray, var: np.ndarray) -> list[Look]:
    zero = [i for i, v in enumerate(var.tolist()) if v <= 0]
    if zero:
        raise SequentialInputError(
            "looks", zero, "looks with variance > 0; leave out early looks where an arm has no spread yet"
        )
    return [Look(float(e), float(v)) for e, v in zip(est, var, strict=True)]


@dataclass(frozen=True)
class PeekingSimulation:
    """False-positive (or detection) rates of three ways of reading the same simulated experiments."""

    experiments: int
    looks: int
    alpha: float
    effect: float
    msprt_rate: float
    naive_rate: float
    fixed_horizon_rate: float
    msprt_mean_look: float | None

    def describe(self) -> str:
        """One line comparing the three rates."""
        kind = "false-positive" if self.effect == 0 else "detection"
        return (
            f"{kind} rate over {self.experiments} experiments with {self.looks} looks at α = {self.alpha:g}: "
            f"mSPRT {self.msprt_rate:.1%}, fixed-horizon z-test checked at every look "
            f"{self.naive_rate:.1%}, z-test once at the last look {self.fixed_horizon_rate:.1%}"
        )


def peeking_simulation(
    seeds: Iterable[int],
    looks: int = 30,
    users_per_look: int = 500,
    rate: float = 0.1,
    effect: float = 0.0,
    tau2: float = 1e-4,
    alpha: float = 0.05,
) -> PeekingSimulation:
    """Simulate one conversion experiment per seed and count how often each reading rejects.

    Each look adds ``users_per_look`` users per arm converting at ``rate`` (a) and
    ``rate + effect`` (b). With ``effect = 0`` (an A/A test) every rejection is false: the
    mSPRT stays at or below ``alpha`` while stopping at the first look where a fixed-horizon
    z-test is significant does not. With ``effect ≠ 0`` the rates are the power.

    >>> sim = peeking_simulation(range(200), looks=30)
    >>> sim.msprt_rate <= 0.05 < 0.15 < sim.naive_rate
    True
    """
    import numpy as np
    from scipy import stats

    tau2, alpha = _check_tau2(tau2), _check_alpha(alpha)
    seeds = list(seeds)
    if not seeds:
        raise SequentialInputError("seeds", seeds, "at least one seed (one simulated experiment each)")
    for name, value in (("looks", looks), ("users_per_look", users_per_look)):
        if not (isinstance(value, int) and value >= 1):
            raise SequentialInputError(name, value, "a whole number ≥ 1")
    if not (0 < rate < 1 and 0 < rate + effect < 1):
        raise SequentialInputError(
            "effect", effect, f"such that rate and rate + effect are in (0, 1); rate={rate}"
        )
    p = np.array([rate, rate + effect])
    daily = np.stack([np.random.default_rng(s).binomial(users_per_look, p, size=(looks, 2)) for s in seeds])
    n = users_per_look * np.arange(1, looks + 1)
    conv = daily.cumsum(axis=1) / n[None, :, None]
    est = conv[..., 1] - conv[..., 0]
    var = (conv * (1 - conv)).sum(axis=2) / n
    if (var <= 0).any():
        raise SequentialInputError("users_per_look", users_per_look, "large enough that each arm converts")
    z = np.abs(est) / np.sqrt(var)
    crit = stats.norm.ppf(1 - alpha / 2)
    reject = _log_lr(est, var, tau2) >= math.log(1 / alpha)
    hit = reject.any(axis=1)
    return PeekingSimulation(
        experiments=len(seeds),
        looks=looks,
        alpha=alpha,
        effect=float(effect),
        msprt_rate=float(hit.mean()),
        naive_rate=float((z > crit).any(axis=1).mean()),
        fixed_horizon_rate=float((z[:, -1] > crit).mean()),
        msprt_mean_look=float(reject.argmax(axis=1)[hit].mean() + 1) if hit.any() else None,
    )
