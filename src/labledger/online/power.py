"""Sample size and power of a fixed-horizon, two-sided A/B test, planned before it starts.

Proportions use Cohen's arcsine effect size ``h = 2·asin(√p_b) − 2·asin(√p_a)``
(statsmodels ``proportion_effectsize``), means the standardised difference ``mde / std``;
both go through statsmodels ``NormalIndPower`` (normal approximation, both tails counted).
``ratio`` is units in b per unit in a: the sizes returned are for the control a, and b
needs ``ratio`` times as many.

>>> from labledger.online.power import sample_size, power_of
>>> sample_size(0.10, 0.02)                     # 10 % → 12 % conversion
3835
>>> round(power_of(3835, 0.10, 0.02), 3)
0.8
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from labledger.online.abtest import ABTestInputError

__all__ = ["power_of", "sample_size", "sample_size_means"]


def _number(name: str, value: Any, low: float, high: float, *, open_low: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ABTestInputError(name, value, "expected a finite number")
    x = float(value)
    if not ((low < x if open_low else low <= x) and x < high):
        raise ABTestInputError(name, value, f"must lie in {'(' if open_low else '['}{low:g}, {high:g})")
    return x


def _common(power: Any, alpha: Any, ratio: Any) -> tuple[float, float, float]:
    a = _number("alpha", alpha, 0.0, 1.0)
    p = _number("power", power, 0.0, 1.0)
    if p <= a:
        raise ABTestInputError(
            "power", power, f"must exceed alpha = {a:g} (a test has that power at no effect)"
        )
    return p, a, _number("ratio", ratio, 0.0, math.inf)


def _effect(baseline: Any, mde: Any, relative: bool) -> float:
    from statsmodels.stats.proportion import proportion_effectsize

    p_a = _number("baseline", baseline, 0.0, 1.0)
    d = _number("mde", mde, -math.inf, math.inf)
    if d == 0:
        raise ABTestInputError("mde", mde, "the minimum detectable effect must be non-zero")
    p_b = p_a * (1 + d) if relative else p_a + d
    if not 0.0 < p_b < 1.0:
        kind = "baseline·(1 + mde)" if relative else "baseline + mde"
        raise ABTestInputError("mde", mde, f"the treatment rate {kind} = {p_b:g} must lie in (0, 1)")
    return abs(float(proportion_effectsize(p_b, p_a)))


def _solve(effect: float, power: float, alpha: float, ratio: float) -> int:
    from statsmodels.stats.power import NormalIndPower

    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=ratio)
    return math.ceil(float(n))


def sample_size(
    baseline: float,
    mde: float,
    power: float = 0.8,
    alpha: float = 0.05,
    relative: bool = False,
    ratio: float = 1.0,
) -> int:
    """Units the control needs to detect a conversion-rate change of ``mde`` with ``power``.

    :param baseline: the control's expected conversion rate, in (0, 1).
    :param mde: the smallest change worth detecting: absolute (``0.01`` = one point) or, with
        ``relative=True``, a fraction of the baseline (``0.05`` = 5 % lift).
    :param ratio: units in b per unit in a; b needs ``ratio`` times the returned size.

    >>> sample_size(0.05, 0.10, relative=True)       # 5 % → 5.5 %
    31218
    """
    p, a, r = _common(power, alpha, ratio)
    return _solve(_effect(baseline, mde, relative), p, a, r)


def sample_size_means(
    std: float, mde: float, power: float = 0.8, alpha: float = 0.05, ratio: float = 1.0
) -> int:
    """Units the control needs to detect a change of ``mde`` in a mean whose per-unit
    standard deviation is ``std`` (normal approximation; with CUPED, pass ``std·√(1 − ρ²)``).

    >>> sample_size_means(std=10.0, mde=0.5)
    6280
    """
    s = _number("std", std, 0.0, math.inf)
    d = _number("mde", mde, -math.inf, math.inf)
    if d == 0:
        raise ABTestInputError("mde", mde, "the minimum detectable effect must be non-zero")
    p, a, r = _common(power, alpha, ratio)
    return _solve(abs(d) / s, p, a, r)


def power_of(
    n_per_variant: int,
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    relative: bool = False,
    ratio: float = 1.0,
) -> float:
    """Power of a two-sided test with ``n_per_variant`` units in the control (``ratio`` times
    that in b) to detect a conversion-rate change of ``mde`` from ``baseline``.

    >>> round(power_of(1_000, 0.10, 0.02), 3)
    0.299
    """
    from statsmodels.stats.power import NormalIndPower

    n = _number("n_per_variant", n_per_variant, 0.0, math.inf)
    a = _number("alpha", alpha, 0.0, 1.0)
    r = _number("ratio", ratio, 0.0, math.inf)
    effect = _effect(baseline, mde, relative)
    return float(NormalIndPower().power(effect_size=effect, nobs1=n, alpha=a, ratio=r))
