"""Fixed-horizon A/B statistics: against SciPy/statsmodels on many inputs, and by simulation
with known truth (A/A rejection rates, interval coverage, SRM, CUPED)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

pytest.importorskip("scipy")
pytest.importorskip("statsmodels")

from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from labledger.errors import LabledgerError
from labledger.online import abtest
from labledger.online.abtest import (
    ABTestInputError,
    Covariate,
    Moments,
    holm,
    mean_lift,
    proportion_lift,
    srm_check,
)

SIMS = 1000


def within_binomial(rate: float, p: float, n: int = SIMS) -> bool:
    """``rate`` within ``p ± 3·sqrt(p(1−p)/n)``."""
    return abs(rate - p) <= 3 * math.sqrt(p * (1 - p) / n)


def test_doctests_pass():
    assert doctest.testmod(abtest).failed == 0


# ---------------------------------------------------------------- aggregates


def test_moments_match_numpy_and_merge():
    rng = np.random.default_rng(1)
    y = rng.normal(5, 2, 1000)
    m = Moments.from_values(y)
    assert m.n == 1000
    assert m.mean == pytest.approx(y.mean(), rel=1e-12)
    assert m.variance == pytest.approx(y.var(ddof=1), rel=1e-9)
    merged = Moments.from_values(y[:300]) + Moments.from_values(y[300:])
    assert merged.n == m.n and merged.mean == pytest.approx(m.mean, rel=1e-12)
    assert merged.variance == pytest.approx(m.variance, rel=1e-9)
    assert math.isnan(Moments(0, 0.0, 0.0).mean) and math.isnan(Moments(1, 2.0, 4.0).variance)


def test_covariate_sums_and_merge():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 7.0])
    c = Covariate.from_values(x, y)
    assert (c.n, c.sum_x, c.sum_x2, c.sum_xy) == (3, 6.0, 14.0, 31.0)
    assert Covariate.from_values(x[:1], y[:1]) + Covariate.from_values(x[1:], y[1:]) == c


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: Moments(-1, 0.0, 0.0), "n"),
        (lambda: Moments(2.5, 1.0, 1.0), "n"),
        (lambda: Moments(True, 1.0, 1.0), "n"),
        (lambda: Moments(3, math.nan, 1.0), "sum"),
        (lambda: Moments(3, 6.0, 1.0), "sum_sq"),  # (Σy)² = 36 > n·Σy² = 3
        (lambda: Moments(2, 0.0, -1.0), "sum_sq"),
        (lambda: Moments.from_values([[1.0, 2.0]]), "values"),
        (lambda: Moments.from_values([1.0, math.inf]), "values"),
        (lambda: Covariate(3, 6.0, 1.0, 0.0), "sum_x2"),
        (lambda: Covariate.from_values([1.0, 2.0], [1.0]), "y"),
    ],
)
def test_bad_aggregates_name_the_argument(build, argument):
    with pytest.raises(ABTestInputError) as info:
        build()
    assert isinstance(info.value, LabledgerError) and isinstance(info.value, ValueError)
    assert info.value.argument == argument and argument in str(info.value)


# ---------------------------------------------------------------- SRM


def test_injected_two_percent_srm_is_flagged_loudly():
    r = srm_check({"a": 51_000, "b": 49_000}, {"a": 0.5, "b": 0.5})
    assert r.flagged and r.statistic == pytest.approx(40.0, rel=1e-12)
    assert r.p_value == pytest.approx(stats.chi2.sf(40.0, 1), rel=1e-9)
    assert r.describe().startswith("SAMPLE RATIO MISMATCH:") and "51.00%" in r.describe()
    fine = srm_check({"a": 50_100, "b": 49_900}, {"a": 0.5, "b": 0.5})
    assert not fine.flagged and fine.describe().startswith("no sample ratio mismatch")


def test_srm_matches_scipy_with_unequal_and_unnormalised_allocation():
    obs = {"control": 8_900, "b": 560, "c": 540}
    r = srm_check(obs, {"control": 18, "b": 1, "c": 1})
    expected = stats.chisquare([8_900, 560, 540], [9_000, 500, 500])
    assert r.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert r.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert r.expected == pytest.approx({"control": 9_000.0, "b": 500.0, "c": 500.0})
    assert srm_check(obs, {"control": 18, "b": 1, "c": 1}, threshold=0.5).threshold == 0.5


def test_correct_split_is_flagged_at_about_the_threshold_rate():
    rng = np.random.default_rng(7)
    a = rng.binomial(100_000, 0.5, SIMS)
    ps = np.array([srm_check({"a": int(k), "b": 100_000 - int(k)}, {"a": 1, "b": 1}).p_value for k in a])
    # at the default 0.001: expect 1 flag in 1,000; allow up to mean + 3 sd (= 1 + 3·0.9995 ≈ 4)
    assert (ps < 0.001).sum() <= 4
    # at 0.05 the flag rate is measurable: within 0.05 ± 3·sqrt(0.05·0.95/1000) = ± 0.021
    assert within_binomial(float((ps < 0.05).mean()), 0.05)


@pytest.mark.parametrize(
    ("observed", "allocation", "threshold", "argument"),
    [
        ({"a": 10, "b": 10}, {"a": 0.5, "c": 0.5}, 0.001, "allocation"),
        ({"a": 10}, {"a": 1.0}, 0.001, "allocation"),
        ({"a": 10, "b": 10}, {"a": 0.5, "b": 0.0}, 0.001, "allocation"),
        ({"a": -1, "b": 10}, {"a": 0.5, "b": 0.5}, 0.001, "observed['a']"),
        ({"a": 0, "b": 0}, {"a": 0.5, "b": 0.5}, 0.001, "observed"),
        ({"a": 10, "b": 10}, {"a": 0.5, "b": 0.5}, 1.5, "threshold"),
    ],
)
def test_srm_rejects_bad_input(observed, allocation, threshold, argument):
    with pytest.raises(ABTestInputError) as info:
        srm_check(observed, allocation, threshold)
    assert info.value.argument == argument


# ---------------------------------------------------------------- proportions


def test_proportion_lift_matches_statsmodels_on_many_inputs():
    rng = np.random.default_rng(3)
    for _ in range(200):
        na, nb = (int(v) for v in rng.integers(20, 50_000, 2))
        pa, pb = rng.uniform(0.01, 0.6, 2)
        sa, sb = int(rng.binomial(na, pa)), int(rng.binomial(nb, pb))
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        lift = proportion_lift(sa, na, sb, nb, alpha=alpha)
        z, p = proportions_ztest([sb, sa], [nb, na])
        assert lift.statistic == pytest.approx(z, rel=1e-9, abs=1e-12)
        assert lift.p_value == pytest.approx(p, rel=1e-9, abs=1e-15)
        lo, hi = confint_proportions_2indep(sb, nb, sa, na, method="wald", compare="diff", alpha=alpha)
        assert lift.difference_ci == pytest.approx((lo, hi), rel=1e-9, abs=1e-12)
        ra, rb = sa / na, sb / nb
        se = math.sqrt(rb * (1 - rb) / nb / ra**2 + rb**2 * ra * (1 - ra) / na / ra**4)
        half = stats.norm.ppf(1 - alpha / 2) * se
        assert lift.relative == pytest.approx(rb / ra - 1, rel=1e-12)
        assert lift.relative_ci == pytest.approx((rb / ra - 1 - half, rb / ra - 1 + half), rel=1e-9)


def test_proportion_aa_tests_reject_at_alpha_and_intervals_cover():
    rng = np.random.default_rng(11)
    n, p = 2_000, 0.1
    sa, sb = rng.binomial(n, p, SIMS), rng.binomial(n, p, SIMS)
    lifts = [proportion_lift(int(a), n, int(b), n) for a, b in zip(sa, sb, strict=True)]
    # within 0.05 ± 3·sqrt(0.05·0.95/1000) = ± 0.021
    assert within_binomial(np.mean([lift.p_value < 0.05 for lift in lifts]), 0.05)
    assert within_binomial(np.mean([lo <= 0 <= hi for lo, hi in (x.difference_ci for x in lifts)]), 0.95)
    assert within_binomial(np.mean([lo <= 0 <= hi for lo, hi in (x.relative_ci for x in lifts)]), 0.95)


def test_relative_interval_covers_a_true_lift():
    rng = np.random.default_rng(12)
    n, pa, pb = 5_000, 0.10, 0.12
    sa, sb = rng.binomial(n, pa, SIMS), rng.binomial(n, pb, SIMS)
    cis = [proportion_lift(int(a), n, int(b), n).relative_ci for a, b in zip(sa, sb, strict=True)]
    assert within_binomial(np.mean([lo <= pb / pa - 1 <= hi for lo, hi in cis]), 0.95)


def test_proportion_edge_cases_and_describe():
    none = proportion_lift(0, 100, 0, 100)
    assert none.p_value == 1.0 and none.difference == 0.0 and math.isnan(none.relative)
    assert "p = 1" in none.describe() and "relative" not in none.describe()
    assert proportion_lift(100, 100, 100, 100).p_value == 1.0
    big = proportion_lift(1_000, 10_000, 1_300, 10_000)
    assert big.significant and "significant at α = 0.05" in big.describe() and "+30.00%" in big.describe()
    assert "not significant" in proportion_lift(100, 1_000, 101, 1_000).describe()


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        ((11, 10, 5, 10), "successes_a"),
        ((1, 10, 11, 10), "successes_b"),
        ((1, 0, 1, 10), "trials_a"),
        ((-1, 10, 1, 10), "successes_a"),
        ((1.5, 10, 1, 10), "successes_a"),
    ],
)
def test_proportion_lift_rejects_bad_input(args, argument):
    with pytest.raises(ABTestInputError) as info:
        proportion_lift(*args)
    assert info.value.argument == argument
    with pytest.raises(ABTestInputError, match="alpha"):
        proportion_lift(1, 10, 1, 10, alpha=0)


# ---------------------------------------------------------------- means


def test_mean_lift_matches_scipy_and_statsmodels_on_many_inputs():
    rng = np.random.default_rng(5)
    for _ in range(150):
        na, nb = (int(v) for v in rng.integers(2, 400, 2))
        a = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 5), na)
        b = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 5), nb)
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        lift = mean_lift(Moments.from_values(a), Moments.from_values(b), alpha=alpha)
        ref = stats.ttest_ind(b, a, equal_var=False)
        assert lift.statistic == pytest.approx(ref.statistic, rel=1e-9)
        assert lift.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
        _, _, df = ttest_ind(b, a, usevar="unequal")
        assert lift.df == pytest.approx(df, rel=1e-9)
        ci = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(alpha=alpha, usevar="unequal")
        assert lift.difference_ci == pytest.approx(ci, rel=1e-9, abs=1e-9)
        assert lift.difference == pytest.approx(b.mean() - a.mean(), rel=1e-9, abs=1e-12)


def test_welch_aa_tests_reject_at_alpha_and_intervals_cover():
    # unequal sizes and variances, where the pooled t-test would be off
    rng = np.random.default_rng(21)
    a = rng.normal(10.0, 1.0, (SIMS, 20))
    b = rng.normal(10.0, 4.0, (SIMS, 60))
    lifts = [
        mean_lift(Moments(20, x.sum(), (x * x).sum()), Moments(60, y.sum(), (y * y).sum()))
        for x, y in zip(a, b, strict=True)
    ]
    assert within_binomial(np.mean([lift.p_value < 0.05 for lift in lifts]), 0.05)
    assert within_binomial(np.mean([lo <= 0 <= hi for lo, hi in (x.difference_ci for x in lifts)]), 0.95)


def test_mean_relative_interval_covers_a_true_lift():
    rng = np.random.default_rng(22)
    a = rng.exponential(4.0, (SIMS, 500))
    b = rng.exponential(4.4, (SIMS, 500))
    cis = [
        mean_lift(Moments.from_values(x), Moments.from_values(y)).relative_ci
        for x, y in zip(a, b, strict=True)
    ]
    assert within_binomial(np.mean([lo <= 0.1 <= hi for lo, hi in cis]), 0.95)


@pytest.mark.parametrize(
    ("a", "b", "cuped", "argument"),
    [
        (Moments(1, 1.0, 1.0), Moments(5, 5.0, 10.0), None, "a"),
        ("data", Moments(5, 5.0, 10.0), None, "a"),
        (Moments(3, 3.0, 3.0), Moments(3, 6.0, 12.0), None, "b"),  # both constant
        (Moments(3, 3.0, 5.0), Moments(3, 6.0, 14.0), (Covariate(2, 1.0, 1.0, 1.0),), "cuped"),
        (
            Moments(3, 3.0, 5.0),
            Moments(3, 6.0, 14.0),
            (Covariate(2, 1.0, 1.0, 1.0), Covariate(3, 1.0, 1.0, 1.0)),
            "cuped",
        ),
        (
            Moments(3, 3.0, 5.0),
            Moments(3, 6.0, 14.0),
            (Covariate(3, 3.0, 3.0, 3.0), Covariate(3, 3.0, 3.0, 6.0)),  # x ≡ 1
            "cuped",
        ),
    ],
)
def test_mean_lift_rejects_bad_input(a, b, cuped, argument):
    with pytest.raises(ABTestInputError) as info:
        mean_lift(a, b, cuped=cuped)
    assert info.value.argument == argument


# ---------------------------------------------------------------- CUPED

RHO = 0.7


def correlated(rng: np.random.Generator, n: int, effect: float) -> tuple[np.ndarray, np.ndarray]:
    """Pre-period x and metric y with corr(x, y) = RHO; the treatment shifts y by ``effect``."""
    x = rng.normal(20.0, 3.0, n)
    y = 50.0 + effect + 2.0 * (RHO * (x - 20.0) / 3.0 + math.sqrt(1 - RHO**2) * rng.normal(0, 1, n))
    return x, y


def test_cuped_matches_the_adjustment_computed_per_unit():
    rng = np.random.default_rng(31)
    (xa, ya), (xb, yb) = correlated(rng, 800, 0.0), correlated(rng, 1_200, 0.3)
    x, y = np.concatenate([xa, xb]), np.concatenate([ya, yb])
    theta = np.cov(x, y)[0, 1] / x.var(ddof=1)
    za, zb = ya - theta * (xa - x.mean()), yb - theta * (xb - x.mean())
    lift = mean_lift(
        Moments.from_values(ya),
        Moments.from_values(yb),
        cuped=(Covariate.from_values(xa, ya), Covariate.from_values(xb, yb)),
    )
    ref = stats.ttest_ind(zb, za, equal_var=False)
    assert lift.theta == pytest.approx(theta, rel=1e-9)
    assert lift.control == pytest.approx(za.mean(), rel=1e-9)
    assert lift.treatment == pytest.approx(zb.mean(), rel=1e-9)
    assert lift.statistic == pytest.approx(ref.statistic, rel=1e-7)
    assert lift.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert lift.variance_reduction == pytest.approx(1 - np.corrcoef(x, y)[0, 1] ** 2, rel=1e-9)
    assert "CUPED kept" in lift.describe() and "with CUPED" in lift.test


def test_cuped_narrows_the_interval_by_sqrt_one_minus_rho_squared_without_bias():
    rng = np.random.default_rng(32)
    n, effect, seeds = 4_000, 0.1, 300
    plain_est, cuped_est, ratios = [], [], []
    for _ in range(seeds):
        (xa, ya), (xb, yb) = correlated(rng, n, 0.0), correlated(rng, n, effect)
        ma, mb = Moments.from_values(ya), Moments.from_values(yb)
        plain = mean_lift(ma, mb)
        adj = mean_lift(ma, mb, cuped=(Covariate.from_values(xa, ya), Covariate.from_values(xb, yb)))
        width = lambda lift: lift.difference_ci[1] - lift.difference_ci[0]  # noqa: E731
        ratios.append(width(adj) / width(plain))
        plain_est.append(plain.difference)
        cuped_est.append(adj.difference)
    target = math.sqrt(1 - RHO**2)  # 0.714
    assert np.mean(ratios) == pytest.approx(target, rel=0.02)
    assert np.all(np.abs(np.array(ratios) / target - 1) < 0.05)
    # unbiased: the mean over seeds is within 3 standard errors of the true effect
    cuped_est_arr = np.array(cuped_est)
    assert abs(cuped_est_arr.mean() - effect) < 3 * cuped_est_arr.std(ddof=1) / math.sqrt(seeds)
    # and the estimates really are tighter across seeds (sd ratio ≈ 0.714; loose: F-noise at 300 seeds)
    assert cuped_est_arr.std() / np.std(plain_est) == pytest.approx(target, rel=0.12)


# ---------------------------------------------------------------- Holm


def test_holm_matches_statsmodels_on_many_inputs():
    rng = np.random.default_rng(41)
    for _ in range(40):  # multipletests takes ~50 ms a call
        m = int(rng.integers(1, 15))
        p = rng.uniform(0, 0.2, m) ** rng.uniform(0.5, 3)
        names = [f"v{i}" for i in range(m)]
        out = holm(dict(zip(names, p.tolist(), strict=True)))
        assert list(out) == names
        ref = multipletests(p, method="holm")[1]
        assert [out[k] for k in names] == pytest.approx(ref.tolist(), rel=1e-9, abs=1e-15)
