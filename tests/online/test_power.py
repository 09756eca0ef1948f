"""Sample size and power: against statsmodels and the closed form, and by simulation
(a test sized for 80 % power detects the effect about 80 % of the time)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

pytest.importorskip("scipy")
pytest.importorskip("statsmodels")

from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from labledger.errors import LabledgerError
from labledger.online import power as power_module
from labledger.online.abtest import ABTestInputError, Moments, mean_lift, proportion_lift
from labledger.online.power import power_of, sample_size, sample_size_means

SIMS = 2000


def closed_form_power(h: float, n1: float, ratio: float, alpha: float) -> float:
    """Two-sided normal power, both tails: Φ(|h|·√n_eff − z) + Φ(−|h|·√n_eff − z)."""
    z = stats.norm.ppf(1 - alpha / 2)
    shift = abs(h) * math.sqrt(1 / (1 / n1 + 1 / (ratio * n1)))
    return float(stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z))


def test_doctests_pass():
    assert doctest.testmod(power_module).failed == 0


def test_sample_size_matches_statsmodels_and_is_the_smallest_n_with_the_power():
    rng = np.random.default_rng(1)
    for _ in range(60):
        base = float(rng.uniform(0.01, 0.6))
        mde = float(rng.uniform(0.005, 0.2)) * (1 if rng.random() < 0.7 else -1)
        mde = max(mde, -base / 2)
        pw, alpha = float(rng.uniform(0.6, 0.95)), float(rng.choice([0.01, 0.05, 0.1]))
        ratio = float(rng.choice([0.5, 1.0, 2.0, 3.0]))
        n = sample_size(base, mde, power=pw, alpha=alpha, ratio=ratio)
        h = proportion_effectsize(base + mde, base)
        ref = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=pw, ratio=ratio)
        assert n == math.ceil(ref)
        # independent check of the definition: n reaches the power, n − 1 does not
        assert closed_form_power(h, n, ratio, alpha) >= pw - 1e-9
        assert closed_form_power(h, n - 1, ratio, alpha) < pw + 1e-9


def test_relative_mde_is_a_fraction_of_the_baseline():
    assert sample_size(0.10, 0.20, relative=True) == sample_size(0.10, 0.02)
    assert sample_size(0.05, -0.10, relative=True) == sample_size(0.05, -0.005)
    assert sample_size(0.10, 0.02, power=0.9) > sample_size(0.10, 0.02)
    assert sample_size(0.10, 0.02, alpha=0.01) > sample_size(0.10, 0.02)


def test_power_of_matches_statsmodels_and_the_closed_form():
    rng = np.random.default_rng(2)
    for _ in range(60):
        base, mde = float(rng.uniform(0.02, 0.5)), float(rng.uniform(0.005, 0.1))
        n, alpha = int(rng.integers(10, 50_000)), float(rng.choice([0.01, 0.05, 0.1]))
        ratio = float(rng.choice([0.5, 1.0, 2.0]))
        got = power_of(n, base, mde, alpha=alpha, ratio=ratio)
        h = proportion_effectsize(base + mde, base)
        ref = NormalIndPower().power(effect_size=h, nobs1=n, alpha=alpha, ratio=ratio)
        assert got == pytest.approx(ref, rel=1e-9)
        assert got == pytest.approx(closed_form_power(h, n, ratio, alpha), rel=1e-9)


def test_sample_size_means_matches_statsmodels_and_the_textbook_formula():
    for std, mde, pw, alpha, ratio in [
        (10, 0.5, 0.8, 0.05, 1),
        (3, 0.2, 0.9, 0.01, 2),
        (1, -0.1, 0.8, 0.1, 0.5),
    ]:
        n = sample_size_means(std, mde, power=pw, alpha=alpha, ratio=ratio)
        ref = NormalIndPower().solve_power(effect_size=abs(mde) / std, alpha=alpha, power=pw, ratio=ratio)
        assert n == math.ceil(ref)
        # one-tail textbook n = (z_{α/2} + z_β)² σ² (1 + 1/ratio) / δ², the other tail adds < 1 unit
        z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(pw)
        assert abs(n - z**2 * std**2 * (1 + 1 / ratio) / mde**2) <= 1.0


def test_a_test_sized_for_80_percent_power_detects_the_effect_80_percent_of_the_time():
    rng = np.random.default_rng(3)
    n = sample_size(0.10, 0.02)  # 3,835 per variant
    sa, sb = rng.binomial(n, 0.10, SIMS), rng.binomial(n, 0.12, SIMS)
    rejected = np.mean(
        [proportion_lift(int(a), n, int(b), n).p_value < 0.05 for a, b in zip(sa, sb, strict=True)]
    )
    # within 0.8 ± 3·sqrt(0.8·0.2/2000) = ± 0.027
    assert abs(rejected - 0.8) <= 3 * math.sqrt(0.8 * 0.2 / SIMS)


def test_a_means_test_sized_for_90_percent_power_detects_the_effect_90_percent_of_the_time():
    rng = np.random.default_rng(4)
    n = sample_size_means(std=2.0, mde=0.25, power=0.9)  # 1,346 per variant
    a = rng.normal(5.0, 2.0, (SIMS, n))
    b = rng.normal(5.25, 2.0, (SIMS, n))
    sums = [(a.sum(1), (a * a).sum(1)), (b.sum(1), (b * b).sum(1))]
    rejected = np.mean(
        [
            mean_lift(Moments(n, float(s_a), float(q_a)), Moments(n, float(s_b), float(q_b))).p_value < 0.05
            for s_a, q_a, s_b, q_b in zip(*sums[0], *sums[1], strict=True)
        ]
    )
    # within 0.9 ± 3·sqrt(0.9·0.1/2000) = ± 0.020
    assert abs(rejected - 0.9) <= 3 * math.sqrt(0.9 * 0.1 / SIMS)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: sample_size(0.0, 0.01), "baseline"),
        (lambda: sample_size(1.0, -0.01), "baseline"),
        (lambda: sample_size(0.1, 0.0), "mde"),
        (lambda: sample_size(0.95, 0.1), "mde"),
        (lambda: sample_size(0.5, 1.0, relative=True), "mde"),
        (lambda: sample_size(0.1, 0.02, power=0.04), "power"),
        (lambda: sample_size(0.1, 0.02, power=1.0), "power"),
        (lambda: sample_size(0.1, 0.02, alpha=0.0), "alpha"),
        (lambda: sample_size(0.1, 0.02, ratio=0.0), "ratio"),
        (lambda: sample_size(True, 0.02), "baseline"),
        (lambda: sample_size_means(0.0, 1.0), "std"),
        (lambda: sample_size_means(1.0, math.nan), "mde"),
        (lambda: sample_size_means(1.0, 0.0), "mde"),
        (lambda: power_of(0, 0.1, 0.02), "n_per_variant"),
        (lambda: power_of(100, 0.1, 0.02, alpha=1.0), "alpha"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ABTestInputError) as info:
        call()
    assert isinstance(info.value, LabledgerError) and isinstance(info.value, ValueError)
    assert info.value.argument == argument
