"""The mSPRT: its formula, its always-valid guarantee under peeking, and its power."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy import stats

from labledger.errors import LabledgerError
from labledger.online import sequential
from labledger.online.sequential import (
    Look,
    SequentialInputError,
    looks_from_counts,
    looks_from_sums,
    msprt,
    peeking_simulation,
    tau2_from_mde,
)

ALPHA = 0.05


def test_the_likelihood_ratio_matches_a_worked_example():
    # θ̂ = 0.02, V = 1e-4, τ² = 1e-4: sqrt(V / (V + τ²)) = sqrt(1/2) and the exponent
    # τ² θ̂² / (2 V (V + τ²)) = 1e-4 · 4e-4 / (2 · 1e-4 · 2e-4) = 1, so Λ = e / sqrt(2) = 1.92211.
    # θ̂ = 0.03, V = 1e-4, τ² = 3e-4: sqrt(1/4) = 0.5, exponent 2.7e-7 / 8e-8 = 3.375, Λ = 14.6121.
    first = msprt([(0.02, 1e-4)], tau2=1e-4)
    assert first.likelihood_ratios[0] == pytest.approx(1.92211, abs=1e-5)
    assert first.p_values[0] == pytest.approx(1 / 1.92211, abs=1e-5)
    second = msprt([(0.03, 1e-4)], tau2=3e-4)
    assert second.likelihood_ratios[0] == pytest.approx(14.6121, abs=1e-4)
    assert second.p_values[0] == pytest.approx(0.068436, abs=1e-6)
    # confidence half-width: sqrt(V (V + τ²) / τ² · (log 2 + 2 log 20)) = sqrt(2e-4 · 6.684612) = 0.0365639
    assert (first.lower[0], first.upper[0]) == pytest.approx((0.02 - 0.0365639, 0.02 + 0.0365639), abs=1e-7)


def test_the_likelihood_ratio_is_the_ratio_of_the_mixture_to_the_null_density():
    # Independently: under θ ~ N(0, τ²) the estimate is N(0, V + τ²), under the null N(0, V); and the
    # mixture integral ∫ N(θ̂; θ, V) N(θ; 0, τ²) dθ computed numerically.
    rng = np.random.default_rng(3)
    est, var, tau2 = rng.normal(0, 0.05, 20), rng.uniform(1e-5, 1e-3, 20), 4e-4
    ratio = stats.norm.pdf(est, 0, np.sqrt(var + tau2)) / stats.norm.pdf(est, 0, np.sqrt(var))
    theta = np.linspace(-0.2, 0.2, 400_001)
    integral = np.array(
        [
            np.trapezoid(
                stats.norm.pdf(e, theta, np.sqrt(v)) * stats.norm.pdf(theta, 0, np.sqrt(tau2)), theta
            )
            for e, v in zip(est, var, strict=True)
        ]
    ) / stats.norm.pdf(est, 0, np.sqrt(var))
    got = np.array(msprt(zip(est, var, strict=True), tau2=tau2).likelihood_ratios)
    np.testing.assert_allclose(got, ratio, rtol=1e-10)
    np.testing.assert_allclose(got, integral, rtol=1e-6)


def test_p_values_never_rise_and_the_intervals_only_shrink():
    rng = np.random.default_rng(0)
    n = 1000 * np.arange(1, 41)
    a, b = rng.binomial(1000, 0.1, 40).cumsum(), rng.binomial(1000, 0.1, 40).cumsum()
    result = msprt(looks_from_counts(a, n, b, n), tau2=tau2_from_mde(0.01))
    p = np.array(result.p_values)
    assert (np.diff(p) <= 0).all() and ((p > 0) & (p <= 1)).all()
    assert (np.diff(result.lower) >= 0).all() and (np.diff(result.upper) <= 0).all()
    raw = np.exp(-np.log(result.likelihood_ratios))
    np.testing.assert_allclose(p, np.minimum(1, np.minimum.accumulate(raw)))


def test_it_rejects_exactly_when_zero_leaves_the_confidence_sequence():
    rng = np.random.default_rng(1)
    for _ in range(200):
        k = int(rng.integers(1, 15))
        looks = list(zip(rng.normal(0.01, 0.02, k), rng.uniform(1e-5, 1e-3, k), strict=True))
        result = msprt(looks, tau2=1e-4, alpha=0.1)
        outside = [not lo < 0 < hi for lo, hi in zip(result.lower, result.upper, strict=True)]
        rejected = [p <= 0.1 for p in result.p_values]
        assert outside == rejected
        assert result.first_rejection == (rejected.index(True) if any(rejected) else None)


def test_msprt_keeps_its_level_under_daily_peeking_where_the_fixed_horizon_test_does_not():
    # 1,000 A/A experiments, 30 daily looks of 500 users per arm at 10% conversion.
    # Binomial tolerance of a 5% rate over 1,000 experiments: 3 · sqrt(0.05 · 0.95 / 1000) = 0.0207.
    # Measured: mSPRT 1.6%, peeking 29.0%, one test at the end 4.9%.
    sim = peeking_simulation(range(1000), looks=30)
    tolerance = 3 * math.sqrt(ALPHA * (1 - ALPHA) / 1000)
    assert sim.msprt_rate <= ALPHA + tolerance
    assert sim.naive_rate > 0.15
    assert abs(sim.fixed_horizon_rate - ALPHA) <= tolerance
    assert sim.experiments == 1000 and sim.looks == 30
    assert "false-positive rate" in sim.describe() and "mSPRT 1.6%" in sim.describe()


def test_a_true_effect_is_detected_eventually():
    # 10% → 12%: measured 99.3% of 300 experiments rejected by the 30th look, on average at look 9.5
    sim = peeking_simulation(range(300), looks=30, effect=0.02, tau2=tau2_from_mde(0.02))
    assert sim.msprt_rate >= 0.95
    assert sim.msprt_mean_look is not None and sim.msprt_mean_look < 30
    assert "detection rate" in sim.describe()
    rng = np.random.default_rng(7)
    n = 500 * np.arange(1, 61)
    a, b = rng.binomial(500, 0.10, 60).cumsum(), rng.binomial(500, 0.12, 60).cumsum()
    result = msprt(looks_from_counts(a, n, b, n), tau2=4e-4)
    assert result.rejected and result.lower[-1] > 0
    assert result.describe().startswith(f"b differs from a since look {result.first_rejection + 1} of 60")


def test_the_vectorised_simulation_agrees_with_msprt_on_each_experiment():
    seeds = range(40)
    sim = peeking_simulation(seeds, looks=10, users_per_look=200, effect=0.03, tau2=4e-4)
    hits = 0
    for seed in seeds:
        daily = np.random.default_rng(seed).binomial(200, [0.1, 0.13], size=(10, 2)).cumsum(axis=0)
        n = 200 * np.arange(1, 11)
        hits += msprt(looks_from_counts(daily[:, 0], n, daily[:, 1], n), tau2=4e-4).rejected
    assert sim.msprt_rate == hits / 40


def test_looks_from_sums_match_numpy_moments():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 2.0, 300), rng.normal(1.3, 1.5, 300)
    cuts = [50, 120, 300]
    looks = looks_from_sums(
        cuts,
        [a[:c].sum() for c in cuts],
        [(a[:c] ** 2).sum() for c in cuts],
        cuts,
        [b[:c].sum() for c in cuts],
        [(b[:c] ** 2).sum() for c in cuts],
    )
    for c, look in zip(cuts, looks, strict=True):
        assert look.estimate == pytest.approx(b[:c].mean() - a[:c].mean())
        assert look.variance == pytest.approx(a[:c].var(ddof=1) / c + b[:c].var(ddof=1) / c)


def test_no_difference_reads_as_such():
    result = msprt([Look(0.001, 1e-4), Look(0.0005, 5e-5)], tau2=1e-4)
    assert not result.rejected and result.p_value == result.p_values[-1]
    assert result.describe().startswith("no difference shown after 2 looks")


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: msprt([], tau2=1e-4), "looks"),
        (lambda: msprt([0.1, 0.2], tau2=1e-4), "looks"),
        (lambda: msprt([(0.1, 0.0)], tau2=1e-4), "looks[0]"),
        (lambda: msprt([(0.1, 1e-4), (float("nan"), 1e-4)], tau2=1e-4), "looks[1]"),
        (lambda: msprt([(0.1, 1e-4)], tau2=0), "tau2"),
        (lambda: msprt([(0.1, 1e-4)], tau2=1e-4, alpha=1.5), "alpha"),
        (lambda: tau2_from_mde(0), "mde"),
        (lambda: looks_from_counts([5, 4], [10, 20], [5, 6], [10, 20]), "trials_a"),
        (lambda: looks_from_counts([5], [10], [11], [10]), "trials_b"),
        (lambda: looks_from_counts([5, 6], [10, 20], [5], [10]), "successes_b"),
        (lambda: looks_from_counts([0], [10], [0], [10]), "looks"),
        (lambda: looks_from_counts([1.5], [10], [1], [10]), "successes_a"),
        (lambda: looks_from_sums([1], [1.0], [1.0], [1], [1.0], [1.0]), "n_a"),
        (lambda: peeking_simulation([], looks=3), "seeds"),
        (lambda: peeking_simulation(range(3), looks=0), "looks"),
        (lambda: peeking_simulation(range(3), effect=0.95), "effect"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(SequentialInputError) as info:
        call()
    assert info.value.argument == argument and str(info.value).startswith(argument)
    assert isinstance(info.value, LabledgerError) and isinstance(info.value, ValueError)


def test_the_docstring_examples_run():
    assert doctest.testmod(sequential, raise_on_error=False).failed == 0
