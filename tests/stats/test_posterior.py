"""The correlated Bayesian t-test posterior against scipy's Student t, written out independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from labledger.analysis.posterior import InvalidCredibleLevelError, InvalidRopeError, Posterior, posterior
from labledger.analysis.stats import InvalidTestTrainRatioError, NotEnoughFoldsError, UnequalFoldCountsError


def _folds(seed: int, n: int = 100, shift: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.7, 0.9, n)
    return b + shift + rng.normal(0, 0.02, n), b


def _reference(a: np.ndarray, b: np.ndarray, ratio: float):
    """Benavoli et al. (2017): μ ~ t(n − 1, mean(d), sqrt((1/n + ratio)·var(d, ddof=1)))."""
    d = a - b
    n = len(d)
    return stats.t(n - 1, loc=d.mean(), scale=math.sqrt((1 / n + ratio) * d.var(ddof=1)))


@pytest.mark.parametrize("rope", [0.0, 0.001, 0.01])
@pytest.mark.parametrize("ratio", [1 / 9, 0.25 / 0.75, 0.0])
def test_probabilities_and_intervals_match_scipy(rope, ratio):
    for seed in range(5):
        a, b = _folds(seed)
        ref = _reference(a, b, ratio)
        post = posterior(a.tolist(), b.tolist(), ratio, rope=rope)
        assert (post.n, post.df, post.rope) == (100, 99, rope)
        assert post.mean == pytest.approx(ref.mean(), rel=1e-12)
        assert post.scale == pytest.approx(ref.kwds["scale"], rel=1e-12)
        assert post.p_greater == pytest.approx(ref.sf(rope), rel=1e-10, abs=1e-15)
        assert post.p_less == pytest.approx(ref.cdf(-rope), rel=1e-10, abs=1e-15)
        expected_rope = ref.cdf(rope) - ref.cdf(-rope) if rope else 0.0
        assert post.p_rope == pytest.approx(expected_rope, rel=1e-10, abs=1e-15)
        assert post.p_greater + post.p_less + post.p_rope == pytest.approx(1.0, abs=1e-12)
        for level in (0.5, 0.9, 0.95, 0.99):
            lo, hi = post.interval(level)
            rlo, rhi = ref.interval(level)
            assert (lo, hi) == (pytest.approx(rlo, rel=1e-12), pytest.approx(rhi, rel=1e-12))


def test_the_correction_widens_the_posterior():
    a, b = _folds(7)
    corrected, plain = posterior(a, b, 1 / 9), posterior(a, b, 0.0)
    assert corrected.scale > plain.scale
    lo, hi = corrected.interval(0.95)
    plo, phi = plain.interval(0.95)
    assert lo < plo < phi < hi


def test_rope_absorbs_small_differences():
    a, b = _folds(3, shift=0.001)
    wide = posterior(a, b, 1 / 9, rope=0.05)
    assert wide.p_rope > 0.99 and wide.p_greater < 0.01 and wide.p_less < 0.01
    assert posterior(a, b, 1 / 9, rope=0.0).p_rope == 0.0


def test_nan_pairs_are_dropped_like_the_paired_test():
    a, b = _folds(5, n=10)
    a_nan, b_nan = [*a.tolist(), math.nan, 0.8], [*b.tolist(), 0.7, math.nan]
    assert posterior(a_nan, b_nan, 1 / 9) == posterior(a.tolist(), b.tolist(), 1 / 9)


def test_a_constant_difference_is_a_point_mass():
    a, b = [1.0, 2.0, 3.0], [0.5, 1.5, 2.5]  # every difference exactly 0.5
    post = posterior(a, b, 0.25, rope=0.1)
    assert (post.scale, post.mean) == (0.0, 0.5)
    assert (post.p_greater, post.p_less, post.p_rope) == (1.0, 0.0, 0.0)
    assert post.interval(0.95) == (0.5, 0.5)
    inside = posterior(a, b, 0.25, rope=0.5)
    assert (inside.p_greater, inside.p_less, inside.p_rope) == (0.0, 0.0, 1.0)
    below = posterior(b, a, 0.25)
    assert (below.p_greater, below.p_less, below.p_rope) == (0.0, 1.0, 0.0)
    # identical scores: all the mass sits at 0, inside even a zero-width rope
    same = posterior([0.9, 0.8], [0.9, 0.8], 0.25)
    assert (same.p_greater, same.p_less, same.p_rope) == (0.0, 0.0, 1.0)


def test_two_folds_give_a_cauchy_posterior():
    post = posterior([0.9, 0.8], [0.85, 0.8], 1.0)
    ref = stats.cauchy(loc=0.025, scale=math.sqrt(1.5 * np.var([0.05, 0.0], ddof=1)))
    assert post.df == 1 and post.p_less == pytest.approx(ref.cdf(0.0), rel=1e-12)


def test_bad_arguments_raise_errors_that_say_what_to_do():
    with pytest.raises(NotEnoughFoldsError):
        posterior([0.9, math.nan], [0.8, 0.7], 0.25)
    with pytest.raises(UnequalFoldCountsError):
        posterior([0.9, 0.8, 0.7], [0.8, 0.7], 0.25)
    for rope in (-0.01, math.nan, math.inf, "wide"):
        with pytest.raises(InvalidRopeError, match=r"rope=0\.01"):
            posterior([0.9, 0.8], [0.8, 0.7], 0.25, rope=rope)  # type: ignore[arg-type]
    for ratio in (-0.1, math.nan, math.inf, None):
        with pytest.raises(InvalidTestTrainRatioError, match="≥ 0"):
            posterior([0.9, 0.8], [0.8, 0.7], ratio)  # type: ignore[arg-type]
    post = posterior([0.9, 0.8, 0.7], [0.8, 0.75, 0.7], 0.25)
    for level in (0.0, 1.0, 1.5, math.nan):
        with pytest.raises(InvalidCredibleLevelError, match=r"0\.95"):
            post.interval(level)
    assert isinstance(post, Posterior)
    with pytest.raises(AttributeError):
        post.mean = 1.0  # type: ignore[misc]
