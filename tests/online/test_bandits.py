"""Bandit runs: regret and allocation of Thompson sampling, and unbiased off-policy values."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest

from labledger.errors import LabledgerError
from labledger.online import bandits
from labledger.online.bandits import (
    BanditInputError,
    BanditLog,
    allocation,
    fixed_split_cost,
    ips,
    regret,
    simulate_thompson,
    snips,
)

MEANS = [0.1, 0.2, 0.3]


@pytest.fixture(scope="module")
def runs():
    return [simulate_thompson(MEANS, 10_000, np.random.default_rng(seed)) for seed in range(5)]


def test_thompson_regret_grows_sublinearly_and_far_below_an_equal_split(runs):
    # measured (mean of 5 seeds): regret 16.9, 20.3, 24.5, 29.1 at 1k, 2k, 5k, 10k rounds; equal split 1,000
    checkpoints = [1000, 2000, 5000, 10_000]
    curves = np.array([regret(run.log, MEANS).cumulative for run in runs]).mean(axis=0)
    per_round = [curves[t - 1] / t for t in checkpoints]
    assert all(later < earlier for earlier, later in itertools.pairwise(per_round))
    assert curves[-1] < 0.1 * 10_000 * (0.3 - 0.2)
    costs = [fixed_split_cost(run.log, MEANS) for run in runs]
    assert all(c.uniform_regret == pytest.approx(1000.0) and c.saved > 900 for c in costs)
    assert costs[0].describe().startswith("over 10,000 rounds the bandit's regret was ")


def test_the_reported_regret_is_the_simulations_own_tally(runs):
    for run in runs:
        report = regret(run.log, run.arm_means)
        assert report.total == pytest.approx(run.regret, abs=1e-9)
        assert report.best_arm == 2 and report.true_means and report.rounds == 10_000
        assert sum(report.pulls) == 10_000 and report.pulls == run.log.pulls()
        assert np.all(np.diff(report.cumulative) >= 0)


def test_traffic_moves_to_the_best_arm(runs):
    shares = allocation(runs[0].log, periods=10)
    assert shares.period_ends == tuple(range(1000, 10_001, 1000))
    assert all(sum(period) == pytest.approx(1.0) for period in shares.shares)
    assert shares.shares[0][2] < shares.shares[-1][2] and shares.shares[-1][2] > 0.9
    assert shares.describe().startswith("arm 2 had ")


def test_an_equal_split_earns_the_regret_fixed_split_cost_expects():
    # 200 simulated equal splits of 3,000 rounds: their mean pseudo-regret is 3,000 · (0.3 − 0.2) = 300
    totals = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        arms = rng.integers(0, 3, 3000)
        log = BanditLog(tuple(arms.tolist()), tuple((rng.random(3000) < np.array(MEANS)[arms]).tolist()))
        totals.append(regret(log, MEANS).total)
    sd = float(np.std(totals, ddof=1))
    assert abs(np.mean(totals) - 300) <= 3 * sd / math.sqrt(200)


def test_regret_without_true_means_uses_the_best_arm_in_hindsight():
    log = BanditLog.from_rounds([(0, 1.0), (0, 0.0), (1, 1.0), (1, 1.0), (0, 1.0)], n_arms=3)
    report = regret(log)
    # empirical means: arm 0 = 2/3, arm 1 = 1, arm 2 never pulled
    assert report.best_arm == 1 and not report.true_means and math.isnan(report.arm_means[2])
    assert report.cumulative == pytest.approx((1 / 3, 2 / 3, 2 / 3, 2 / 3, 1.0))
    assert "best arm in hindsight" in report.describe()
    with pytest.raises(BanditInputError, match="never pulled"):
        fixed_split_cost(log)


CONTEXT_MEANS = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.4]])  # reward mean of each arm in context t % 2
LOGGING = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
TARGET = np.array([[0.1, 0.8, 0.1], [0.7, 0.0, 0.3]])
TRUE_VALUE = float(np.mean((TARGET * CONTEXT_MEANS).sum(axis=1)))  # (0.45 + 0.54) / 2 = 0.495


def _logged(seed: int, rounds: int = 2000) -> BanditLog:
    rng = np.random.default_rng(seed)
    context = np.arange(rounds) % 2
    u = rng.random(rounds)[:, None]
    arms = (u > LOGGING[context].cumsum(axis=1)).sum(axis=1)
    rewards = rng.random(rounds) < CONTEXT_MEANS[context, arms]
    return BanditLog(tuple(arms.tolist()), tuple(rewards.tolist()), tuple(LOGGING[context, arms].tolist()))


def test_ips_and_snips_are_unbiased_on_a_simulated_logging_policy():
    # 300 logs of 2,000 rounds from a context-dependent logging policy; true target value 0.495.
    # Tolerance: 3 standard errors of the mean over seeds; the 95% intervals cover the truth
    # in 0.95 ± 3 · sqrt(0.95 · 0.05 / 300) of the runs.
    def target(t: int) -> np.ndarray:
        return TARGET[t % 2]

    estimates = {"ips": [], "snips": []}
    covered = {"ips": 0, "snips": 0}
    for seed in range(300):
        log = _logged(seed)
        for name, estimator in (("ips", ips), ("snips", snips)):
            e = estimator(log, target)
            estimates[name].append(e.value)
            covered[name] += e.ci_low <= TRUE_VALUE <= e.ci_high
    band = 3 * math.sqrt(0.95 * 0.05 / 300)
    for name, values in estimates.items():
        sd = float(np.std(values, ddof=1))
        assert abs(np.mean(values) - TRUE_VALUE) <= 3 * sd / math.sqrt(300), name
        assert abs(covered[name] / 300 - 0.95) <= band, name
    assert np.std(estimates["snips"]) < np.std(estimates["ips"])


def test_the_stated_standard_errors_match_the_spread_over_seeds():
    logs = [_logged(seed) for seed in range(200)]
    for estimator in (ips, snips):
        results = [estimator(log, np.tile(TARGET, (1000, 1))) for log in logs]
        spread = np.std([r.value for r in results], ddof=1)
        assert np.mean([r.stderr for r in results]) == pytest.approx(spread, rel=0.15)


def test_the_logging_policy_itself_is_estimated_by_its_mean_reward_at_full_sample_size():
    log = _logged(9, rounds=500)
    logging = np.tile(LOGGING, (250, 1))
    for estimator in (ips, snips):
        e = estimator(log, logging)
        assert e.value == pytest.approx(np.mean(log.rewards))
        assert e.effective_sample_size == pytest.approx(500) and e.rounds == 500
    assert ips(log, logging).describe().startswith("IPS: the target policy would earn ")
    assert ips(log, lambda t: TARGET[t % 2]) == ips(log, np.tile(TARGET, (250, 1)))


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: BanditLog((), ()), "arms"),
        (lambda: BanditLog((0, -1), (1.0, 1.0)), "arms"),
        (lambda: BanditLog((0, 3), (1.0, 1.0), n_arms=2), "arms"),
        (lambda: BanditLog((0, 1), (1.0,)), "rewards"),
        (lambda: BanditLog((0, 1), (1.0, math.nan)), "rewards"),
        (lambda: BanditLog((0, 1), (1.0, 0.0), (0.5, 0.0)), "propensities"),
        (lambda: BanditLog.from_rounds([(0, 1.0), (1, 1.0, 0.5)]), "rounds"),
        (lambda: regret(BanditLog((0, 1), (1.0, 0.0)), arm_means=[0.5]), "arm_means"),
        (lambda: allocation(BanditLog((0, 1), (1.0, 0.0)), periods=3), "periods"),
        (lambda: ips(BanditLog((0, 1), (1.0, 0.0)), lambda t: [0.5, 0.5]), "log"),
        (lambda: ips(BanditLog((0, 1), (1.0, 0.0), (0.5, 0.5)), lambda t: [0.5, 0.6]), "target_policy"),
        (lambda: snips(BanditLog((0, 1), (1.0, 0.0), (0.5, 0.5)), [[1.0, 0.0]]), "target_policy"),
        (lambda: snips(BanditLog((0, 0), (1.0, 0.0), (0.5, 0.5), n_arms=2), [[0, 1]] * 2), "target_policy"),
        (lambda: simulate_thompson([0.5], 10, np.random.default_rng(0)), "arm_means"),
        (lambda: simulate_thompson([0.5, 1.5], 10, np.random.default_rng(0)), "arm_means"),
        (lambda: simulate_thompson([0.5, 0.4], 0, np.random.default_rng(0)), "rounds"),
        (lambda: simulate_thompson([0.5, 0.4], 10, 0), "rng"),
        (lambda: simulate_thompson([0.5, 0.4], 10, np.random.default_rng(0), prior=(0, 1)), "prior"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(BanditInputError) as info:
        call()
    assert info.value.argument == argument and str(info.value).startswith(argument)
    assert isinstance(info.value, LabledgerError) and isinstance(info.value, ValueError)


def test_the_docstring_examples_run():
    assert doctest.testmod(bandits, raise_on_error=False).failed == 0
