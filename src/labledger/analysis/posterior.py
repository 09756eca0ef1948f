"""Bayesian view of a paired comparison: the correlated Bayesian t-test.

Benavoli, Corani, Demšar & Zaffalon (2017, "Time for a Change: a Tutorial for
Comparing Multiple Classifiers Through Bayesian Analysis", JMLR 18(77)) give
the posterior of the mean difference μ of ``a − b`` over cross-validation
folds, with the fold correlation ρ = n_test / n_total folded into the scale::

    μ ~ Student t(df = n − 1, loc = mean(d), scale = sqrt((1/n + n_test/n_train) · var(d, ddof=1)))

Instead of a p-value it answers "how probable is it that a is better by more
than ``rope``?" The region of practical equivalence ``[−rope, rope]`` holds
differences too small to matter (e.g. 0.01 accuracy). ``test_train_ratio = 0``
gives the uncorrected posterior, which ignores the overlap of training sets
and is overconfident on cross-validation folds.

>>> from labledger.analysis.posterior import posterior
>>> post = posterior([0.91, 0.93, 0.92, 0.95, 0.94], [0.90, 0.90, 0.91, 0.92, 0.93],
...                  test_train_ratio=0.25, rope=0.005)
>>> round(post.p_greater, 3), round(post.p_rope, 3), round(post.p_less, 3)
(0.924, 0.058, 0.018)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from labledger.analysis.stats import InvalidTestTrainRatioError, _pairs
from labledger.errors import LabledgerError

__all__ = ["InvalidCredibleLevelError", "InvalidRopeError", "Posterior", "posterior"]


class InvalidRopeError(LabledgerError, ValueError):
    """The region of practical equivalence's half-width is negative or not a number."""

    def __init__(self, rope: float) -> None:
        self.rope = rope
        super().__init__(
            f"rope must be a half-width ≥ 0 (differences in [-rope, rope] count as equivalent), "
            f"got {rope!r}. Pass e.g. rope=0.01, or 0 for no region of equivalence."
        )


class InvalidCredibleLevelError(LabledgerError, ValueError):
    """A credible interval's level outside (0, 1)."""

    def __init__(self, level: float) -> None:
        self.level = level
        super().__init__(f"credible level must be in (0, 1), got {level!r}; e.g. 0.95 for a 95% interval.")


@dataclass(frozen=True)
class Posterior:
    """Posterior of the mean difference μ of ``a − b``: Student t(df, mean, scale).

    ``p_greater`` = P(μ > rope), ``p_less`` = P(μ < −rope), ``p_rope`` =
    P(−rope ≤ μ ≤ rope); the three add up to 1. With ``scale == 0`` the
    posterior is a point mass at ``mean``.

    >>> Posterior(n=3, df=2, mean=0.0, scale=0.0, rope=0.0,
    ...           p_greater=0.0, p_less=0.0, p_rope=1.0).interval(0.95)
    (0.0, 0.0)
    """

    n: int
    df: int
    mean: float
    scale: float
    rope: float
    p_greater: float
    p_less: float
    p_rope: float

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Central credible interval holding ``level`` of the posterior (as ``scipy.stats.t.interval``).

        >>> lo, hi = posterior([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], test_train_ratio=0.5).interval(0.5)
        >>> round(lo, 3), round(hi, 3)
        (1.255, 2.745)
        """
        if not 0 < level < 1:
            raise InvalidCredibleLevelError(level)
        if self.scale == 0.0:
            return (self.mean, self.mean)
        from scipy import stats

        lo, hi = stats.t.interval(level, self.df, loc=self.mean, scale=self.scale)
        return (float(lo), float(hi))


def posterior(
    a: Sequence[float], b: Sequence[float], test_train_ratio: float, rope: float = 0.0
) -> Posterior:
    """Correlated Bayesian t-test posterior of mean(``a`` − ``b``) over paired folds.

    ``test_train_ratio`` is n_test / n_train of one fold (``1 / (k - 1)`` for
    k-fold; all k·r folds of repeated k-fold go in together); 0 gives the
    uncorrected posterior. ``rope`` ≥ 0 is the half-width of the region of
    practical equivalence; with ``rope = 0``, ``p_rope`` is 0 (unless the
    posterior is a point mass at exactly 0). Folds where either value is NaN
    are left out.

    >>> round(posterior([0.9, 0.92, 0.91], [0.88, 0.9, 0.9], 1 / 4).p_greater, 3)
    0.968
    """
    rope = _half_width(rope)
    pairs = _pairs(a, b)
    if test_train_ratio is None or not 0 <= test_train_ratio < math.inf:
        raise InvalidTestTrainRatioError(test_train_ratio, "the correlated Bayesian t-test", allow_zero=True)
    n = len(pairs)
    diffs = [x - y for x, y in pairs]
    mean = math.fsum(diffs) / n
    var = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    scale = math.sqrt((1.0 / n + test_train_ratio) * var)
    if scale == 0.0:
        p_greater = 1.0 if mean > rope else 0.0
        p_less = 1.0 if mean < -rope else 0.0
        p_rope = 1.0 - p_greater - p_less
    else:
        from scipy import stats

        dist = stats.t(n - 1, loc=mean, scale=scale)
        p_greater = float(dist.sf(rope))
        p_less = float(dist.cdf(-rope))
        p_rope = float(dist.cdf(rope) - p_less) if rope > 0 else 0.0
    return Posterior(
        n=n,
        df=n - 1,
        mean=mean,
        scale=scale,
        rope=rope,
        p_greater=p_greater,
        p_less=p_less,
        p_rope=max(0.0, p_rope),
    )


def _half_width(rope: float) -> float:
    try:
        value = float(rope)
    except (TypeError, ValueError):
        raise InvalidRopeError(rope) from None
    if not 0 <= value < math.inf:
        raise InvalidRopeError(rope)
    return value
