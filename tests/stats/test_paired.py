"""One-sided paired tests against scipy, and the corrected repeated k-fold cv test by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.model_selection import RepeatedStratifiedKFold, ShuffleSplit, TimeSeriesSplit

from labledger.analysis.stats import (
    ALTERNATIVES,
    TEST_VARIANTS,
    TESTS,
    InvalidTestTrainRatioError,
    NotEnoughFoldsError,
    PairedTestResult,
    UnequalFoldCountsError,
    UnknownAlternativeError,
    paired_test,
    smallest_wilcoxon_p,
)

SIDES = ["two-sided", "greater", "less"]


def _scores(seed: int, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.7, 0.9, n)
    return b + shift + rng.normal(0, 0.02, n), b


@pytest.mark.parametrize("alternative", SIDES)
@pytest.mark.parametrize("shift", [0.015, -0.01, 0.0])
def test_paired_t_matches_scipy_for_every_alternative(alternative, shift):
    for seed in range(5):
        a, b = _scores(seed, 10, shift)
        ours = paired_test(a.tolist(), b.tolist(), "paired-t", alternative=alternative)
        ref = stats.ttest_rel(a, b, alternative=alternative)
        assert ours.statistic == pytest.approx(float(ref.statistic), rel=1e-12)
        assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-12, abs=1e-300)
        assert ours.alternative == alternative and ours.df == 9


@pytest.mark.parametrize("alternative", SIDES)
@pytest.mark.parametrize("n", [6, 12, 60])  # exact and normal-approximation regimes
def test_wilcoxon_matches_scipy_for_every_alternative(alternative, n):
    a, b = _scores(n, n, 0.01)
    ours = paired_test(a.tolist(), b.tolist(), "wilcoxon", alternative=alternative)
    ref = stats.wilcoxon(a, b, alternative=alternative)
    assert ours.statistic == float(ref.statistic)
    assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-12)
    assert ours.alternative == alternative and ours.df is None


def test_nadeau_bengio_one_sided_is_half_the_two_sided_on_the_right_side():
    for shift in (0.02, -0.02):
        a, b = _scores(1, 10, shift)
        two = paired_test(a.tolist(), b.tolist(), "nadeau-bengio", 1 / 9)
        right, wrong = ("greater", "less") if two.mean_difference > 0 else ("less", "greater")
        assert paired_test(a, b, "nadeau-bengio", 1 / 9, right).p_value == pytest.approx(two.p_value / 2)
        assert paired_test(a, b, "nadeau-bengio", 1 / 9, wrong).p_value == pytest.approx(1 - two.p_value / 2)
        # the one-sided statistic is the two-sided one
        assert paired_test(a, b, "nadeau-bengio", 1 / 9, right).statistic == two.statistic


def test_the_default_stays_two_sided_and_old_constructors_still_work():
    a, b = _scores(3, 8, 0.01)
    assert paired_test(a, b, "nadeau-bengio", 0.25).alternative == "two-sided"
    old = PairedTestResult("paired-t", 5, 0.1, 0.02, 3.0, 0.04, 4, None)
    assert old.alternative == "two-sided" and old.description == TESTS["paired-t"]


@pytest.mark.parametrize("test,ratio", [("paired-t", None), ("nadeau-bengio", 0.25)])
def test_zero_variance_gives_consistent_p_values_per_alternative(test, ratio):
    up = {s: paired_test([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], test, ratio, s) for s in SIDES}
    assert {s: r.p_value for s, r in up.items()} == {"two-sided": 0.0, "greater": 0.0, "less": 1.0}
    assert up["greater"].statistic == math.inf
    down = {s: paired_test([0.5, 1.5, 2.5], [1.0, 2.0, 3.0], test, ratio, s).p_value for s in SIDES}
    assert down == {"two-sided": 0.0, "greater": 1.0, "less": 0.0}
    # no difference at all: no evidence for any alternative
    same = {s: paired_test([0.9, 0.8], [0.9, 0.8], test, ratio, s).p_value for s in SIDES}
    assert same == {"two-sided": 1.0, "greater": 1.0, "less": 1.0}


@pytest.mark.parametrize("alternative", SIDES)
def test_wilcoxon_without_any_difference_gives_1(alternative):
    assert paired_test([0.9, 0.8, 0.7], [0.9, 0.8, 0.7], "wilcoxon", alternative=alternative).p_value == 1.0


def test_smallest_wilcoxon_p_one_sided_is_half():
    assert smallest_wilcoxon_p(5) == 2 / 32
    assert smallest_wilcoxon_p(5, "greater") == 1 / 32
    a, b = np.arange(5.0) + 1, np.zeros(5)
    assert paired_test(a, b, "wilcoxon", alternative="greater").p_value == pytest.approx(1 / 32)


def test_bad_arguments_raise_errors_that_say_what_to_do():
    with pytest.raises(UnknownAlternativeError, match=r"'bigger'.*two-sided, greater, less") as e:
        paired_test([0.9, 0.8], [0.8, 0.7], "paired-t", alternative="bigger")
    assert isinstance(e.value, ValueError) and e.value.name == "bigger"
    assert set(ALTERNATIVES) == set(SIDES)
    for ratio in (None, 0.0, -0.1, math.inf, math.nan):
        with pytest.raises(InvalidTestTrainRatioError, match="n_test / n_train"):
            paired_test([0.9, 0.8], [0.8, 0.7], "nadeau-bengio", ratio)
    with pytest.raises(UnequalFoldCountsError, match="same fold order"):
        paired_test([0.9, 0.8, 0.7], [0.8, 0.7])
    with pytest.raises(NotEnoughFoldsError):
        paired_test([0.9, math.nan, 0.7], [0.8, 0.7, math.nan], "paired-t")


# --- Bouckaert & Frank (2004): corrected repeated k-fold cv test -------------------------------


def _bouckaert_frank(d: np.ndarray, n1: float, n2: float) -> tuple[float, float]:
    """t and two-sided p of the corrected repeated k-fold cv test, written out.

    x̄ = mean of the k·r differences, σ̂² their variance (ddof=1),
    t = x̄ / sqrt((1/(k·r) + n2/n1)·σ̂²), df = k·r − 1; n1 training, n2 test rows.
    """
    kr = len(d)
    xbar = float(np.mean(d))
    s2 = float(np.var(d, ddof=1))
    t = xbar / math.sqrt((1.0 / kr + n2 / n1) * s2)
    return t, float(2 * stats.t.sf(abs(t), kr - 1))


def _sizes(splitter, n_rows: int) -> tuple[int, float, float]:
    X = np.zeros((n_rows, 1))
    y = np.arange(n_rows) % 2
    folds = list(splitter.split(X, y))
    return (
        len(folds),
        float(np.mean([len(tr) for tr, _ in folds])),
        float(np.mean([len(te) for _, te in folds])),
    )


def _check(J: int, n1: float, n2: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = rng.normal(0.004, 0.03, J)
    b = rng.uniform(0.6, 0.9, J)
    a = b + d
    t, p = _bouckaert_frank(a - b, n1, n2)
    ours = paired_test(a.tolist(), b.tolist(), "nadeau-bengio", n2 / n1)
    assert abs(ours.statistic - t) <= 1e-12 * max(1.0, abs(t))
    assert abs(ours.p_value - p) <= 1e-12
    assert ours.df == J - 1
    one = paired_test(a.tolist(), b.tolist(), "nadeau-bengio", n2 / n1, "greater")
    assert abs(one.p_value - float(stats.t.sf(t, J - 1))) <= 1e-12


def test_corrected_repeated_cv_on_10x10_stratified_folds():
    J, n1, n2 = _sizes(RepeatedStratifiedKFold(n_splits=10, n_repeats=10, random_state=0), 100)
    assert (J, n1, n2) == (100, 90, 10)
    for seed in range(20):
        _check(J, n1, n2, seed)
    assert "Bouckaert" in TEST_VARIANTS["corrected-repeated-cv"]


def test_corrected_test_on_shuffle_split_folds():
    J, n1, n2 = _sizes(ShuffleSplit(n_splits=10, test_size=0.25, random_state=0), 100)
    assert (J, n1, n2) == (10, 75, 25)
    for seed in range(20):
        _check(J, n1, n2, seed)


def test_corrected_test_on_time_series_folds_uses_mean_sizes():
    splitter = TimeSeriesSplit(n_splits=8, test_size=500)
    folds = list(splitter.split(np.zeros((4500, 1))))
    assert len(folds[-1][0]) == 4000 and all(len(te) == 500 for _, te in folds)
    J, n1, n2 = _sizes(splitter, 4500)
    assert (J, n1, n2) == (8, 2250, 500)
    for seed in range(20):
        _check(J, n1, n2, seed)
