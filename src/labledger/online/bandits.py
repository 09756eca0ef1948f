"""Reading a bandit run: regret, allocation over time, the cost of a fixed split, off-policy values.

A bandit shifts traffic towards the arm that looks best while it learns. Its log is one
``(arm, reward[, propensity])`` per round, arms numbered ``0 … n_arms − 1``; the propensity
is the probability with which the logging policy chose that arm in that round.

* :func:`regret`: cumulative (pseudo-)regret against the best arm, with the true arm means
  when known (simulations) and the empirical means of the log ("best arm in hindsight") otherwise.
* :func:`allocation`: each arm's share of the rounds per period, to see traffic move.
* :func:`fixed_split_cost`: the bandit's regret next to the expected regret of an equal
  split over the same rounds, ``T · (max μ − mean μ)``.
* :func:`ips` and :func:`snips`: what another policy would have earned on the same traffic,
  by inverse propensity scoring (Horvitz & Thompson, 1952) and its self-normalised variant
  (Swaminathan & Joachims, 2015, "The Self-Normalized Estimator for Counterfactual Learning").
* :func:`simulate_thompson`: Thompson sampling on Bernoulli arms with Beta priors, for tests and docs.

>>> import numpy as np
>>> from labledger.online.bandits import fixed_split_cost, simulate_thompson
>>> run = simulate_thompson([0.04, 0.05, 0.06], rounds=5000, rng=np.random.default_rng(1))
>>> cost = fixed_split_cost(run.log, arm_means=[0.04, 0.05, 0.06])
>>> cost.bandit_regret < cost.uniform_regret == 50.0
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labledger.online.checks import OnlineInputError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Allocation",
    "BanditInputError",
    "BanditLog",
    "OffPolicyEstimate",
    "Regret",
    "SplitCost",
    "ThompsonRun",
    "allocation",
    "fixed_split_cost",
    "ips",
    "regret",
    "simulate_thompson",
    "snips",
]

#: a target policy: ``policy(t)`` → the probability of each arm in round ``t``
Policy = Callable[[int], Sequence[float]]


class BanditInputError(OnlineInputError):
    """An argument of a bandit function is out of range; ``argument`` names it."""


@dataclass(frozen=True)
class BanditLog:
    """The rounds of a bandit run: chosen arm, reward and (optionally) the arm's propensity.

    ``n_arms`` defaults to one more than the highest arm pulled.

    >>> BanditLog.from_rounds([(0, 1.0, 0.5), (1, 0.0, 0.5)]).n_arms
    2
    """

    arms: tuple[int, ...]
    rewards: tuple[float, ...]
    propensities: tuple[float, ...] | None = None
    n_arms: int | None = None

    def __post_init__(self) -> None:
        arms, rewards = tuple(self.arms), tuple(self.rewards)
        if not all(isinstance(r, int | float) or hasattr(r, "__float__") for r in rewards):
            raise BanditInputError("rewards", rewards, "numbers, one per round")
        rewards = tuple(float(r) for r in rewards)
        if not arms or not all(isinstance(a, int) or hasattr(a, "__index__") for a in arms):
            raise BanditInputError("arms", arms, "a non-empty sequence of arm numbers 0, 1, …")
        arms = tuple(int(a) for a in arms)
        n_arms = max(arms) + 1 if self.n_arms is None else self.n_arms
        if min(arms) < 0 or not (isinstance(n_arms, int) and max(arms) < n_arms):
            raise BanditInputError("arms", arms, f"arm numbers in 0 … n_arms − 1 (n_arms = {n_arms})")
        if len(rewards) != len(arms) or not all(math.isfinite(r) for r in rewards):
            raise BanditInputError("rewards", rewards, f"{len(arms)} finite rewards, one per round")
        props = None if self.propensities is None else tuple(float(p) for p in self.propensities)
        if props is not None and (len(props) != len(arms) or not all(0 < p <= 1 for p in props)):
            raise BanditInputError("propensities", props, f"{len(arms)} probabilities in (0, 1], per round")
        object.__setattr__(self, "arms", arms)
        object.__setattr__(self, "rewards", rewards)
        object.__setattr__(self, "propensities", props)
        object.__setattr__(self, "n_arms", n_arms)

    @classmethod
    def from_rounds(cls, rounds: Sequence[Sequence[float]], n_arms: int | None = None) -> BanditLog:
        """A log from ``(arm, reward)`` or ``(arm, reward, propensity)`` per round."""
        rows = [tuple(r) for r in rounds]
        if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) not in (2, 3):
            raise BanditInputError("rounds", rows, "all (arm, reward) or all (arm, reward, propensity)")
        props = tuple(r[2] for r in rows) if len(rows[0]) == 3 else None
        return cls(tuple(int(r[0]) for r in rows), tuple(r[1] for r in rows), props, n_arms)

    def __len__(self) -> int:
        return len(self.arms)

    def pulls(self) -> tuple[int, ...]:
        """How many rounds chose each arm."""
        return tuple(map(self.arms.count, range(self.arms_count)))

    @property
    def arms_count(self) -> int:
        """``n_arms`` as an int."""
        assert self.n_arms is not None
        return self.n_arms


def _means(log: BanditLog, arm_means: Sequence[float] | None) -> tuple[tuple[float, ...], bool]:
    """The arm means to measure against, and whether they are the true ones."""
    if arm_means is not None:
        means = tuple(float(m) for m in arm_means)
        if len(means) != log.arms_count or not all(math.isfinite(m) for m in means):
            raise BanditInputError("arm_means", arm_means, f"{log.arms_count} finite means, one per arm")
        return means, True
    totals = [0.0] * log.arms_count
    for a, r in zip(log.arms, log.rewards, strict=True):
        totals[a] += r
    return tuple(t / n if n else math.nan for t, n in zip(totals, log.pulls(), strict=True)), False


@dataclass(frozen=True)
class Regret:
    """Cumulative regret per round against ``best_arm`` (``cumulative[t]`` after round ``t + 1``)."""

    rounds: int
    total: float
    cumulative: tuple[float, ...]
    best_arm: int
    arm_means: tuple[float, ...]
    true_means: bool
    pulls: tuple[int, ...]

    def describe(self) -> str:
        """One line: regret, its share of the best arm's reward, and where the rounds went."""
        basis = "true arm means" if self.true_means else "the log's own arm means (best arm in hindsight)"
        best_share = self.pulls[self.best_arm] / self.rounds
        return (
            f"regret {self.total:.4g} over {self.rounds:,} rounds ({self.total / self.rounds:.3g} per round) "
            f"against arm {self.best_arm}, by {basis}; arm {self.best_arm} got {best_share:.0%} of the rounds"
        )


def regret(log: BanditLog, arm_means: Sequence[float] | None = None) -> Regret:
    """Cumulative regret ``Σ (μ* − μ_arm)`` of the arms the log chose.

    With ``arm_means`` (known in simulations) it is the pseudo-regret against the true
    best arm; without, the empirical mean reward of each arm in the log stands in
    (arms never pulled are left out of the choice of the best).

    >>> regret(BanditLog((0, 1, 1, 0), (0.0, 1.0, 1.0, 1.0)), arm_means=[0.2, 0.5]).cumulative
    (0.3, 0.3, 0.3, 0.6)
    """
    import numpy as np

    means, true = _means(log, arm_means)
    best = int(np.nanargmax(means))
    gaps = means[best] - np.array(means)
    cumulative = np.cumsum(gaps[np.array(log.arms)])
    return Regret(
        rounds=len(log),
        total=float(cumulative[-1]),
        cumulative=tuple(np.round(cumulative, 12).tolist()),
        best_arm=best,
        arm_means=means,
        true_means=true,
        pulls=log.pulls(),
    )


@dataclass(frozen=True)
class Allocation:
    """Each arm's share of the rounds per consecutive period; ``period_ends[i]``: last round of period i."""

    period_ends: tuple[int, ...]
    shares: tuple[tuple[float, ...], ...]

    def describe(self) -> str:
        """One line: how the leading arm's share moved from the first period to the last."""
        last = self.shares[-1]
        arm = max(range(len(last)), key=last.__getitem__)
        return (
            f"arm {arm} had {self.shares[0][arm]:.0%} of the rounds in the first period and "
            f"{last[arm]:.0%} in the last ({len(self.shares)} periods)"
        )


def allocation(log: BanditLog, periods: int = 10) -> Allocation:
    """Split the rounds into ``periods`` near-equal consecutive periods and give each arm's share.

    >>> allocation(BanditLog((0, 0, 1, 1), (0, 0, 1, 1)), periods=2).shares
    ((1.0, 0.0), (0.0, 1.0))
    """
    import numpy as np

    if not (isinstance(periods, int) and 1 <= periods <= len(log)):
        raise BanditInputError("periods", periods, f"a whole number in 1 … {len(log)} (the rounds)")
    chunks = np.array_split(np.array(log.arms), periods)
    shares = [np.bincount(c, minlength=log.arms_count) / len(c) for c in chunks]
    ends = np.cumsum([len(c) for c in chunks])
    return Allocation(tuple(int(e) for e in ends), tuple(tuple(s.tolist()) for s in shares))


@dataclass(frozen=True)
class SplitCost:
    """The bandit's regret next to the expected regret of an equal split over the same rounds."""

    rounds: int
    bandit_regret: float
    uniform_regret: float

    @property
    def saved(self) -> float:
        """Reward the bandit kept that an equal split would have given up (negative: it lost more)."""
        return self.uniform_regret - self.bandit_regret

    def describe(self) -> str:
        """One line comparing the two."""
        return (
            f"over {self.rounds:,} rounds the bandit's regret was {self.bandit_regret:.4g}; an equal split "
            f"would expect {self.uniform_regret:.4g}, so the bandit saved {self.saved:.4g}"
        )


def fixed_split_cost(log: BanditLog, arm_means: Sequence[float] | None = None) -> SplitCost:
    """Regret of the bandit vs. an equal split across all arms, ``T · (max μ − mean μ)``.

    >>> fixed_split_cost(BanditLog((1, 1, 1, 1), (1.0,) * 4, n_arms=2), arm_means=[0.2, 0.6]).describe()
    "over 4 rounds the bandit's regret was 0; an equal split would expect 0.8, so the bandit saved 0.8"
    """
    report = regret(log, arm_means)
    if any(math.isnan(m) for m in report.arm_means):
        raise BanditInputError(
            "arm_means", None, "given when some arm was never pulled (an equal split needs every arm's mean)"
        )
    means = report.arm_means
    uniform = len(log) * (means[report.best_arm] - math.fsum(means) / len(means))
    return SplitCost(len(log), report.total, round(uniform, 12))


@dataclass(frozen=True)
class OffPolicyEstimate:
    """An off-policy estimate of a target policy's mean reward per round on logged traffic.

    ``effective_sample_size`` is ``(Σ w)² / Σ w²`` of the importance weights: far below
    ``rounds`` means the target policy strays from the logging policy and the estimate is noisy.
    """

    method: str
    value: float
    stderr: float
    ci_low: float
    ci_high: float
    effective_sample_size: float
    rounds: int

    def describe(self) -> str:
        """One line: the estimate with its 95% interval."""
        return (
            f"{self.method}: the target policy would earn {self.value:.4g} per round "
            f"(95% CI {self.ci_low:.4g} to {self.ci_high:.4g}; effective sample size "
            f"{self.effective_sample_size:,.0f} of {self.rounds:,} rounds)"
        )


def _weights(log: BanditLog, target_policy: Policy | Sequence[Sequence[float]]) -> np.ndarray:
    """Importance weights π(a_t | t) / p_t of the logged arms."""
    import numpy as np

    if log.propensities is None:
        raise BanditInputError("log", "propensities=None", "a log with the logging policy's propensities")
    rows = [target_policy(t) for t in range(len(log))] if callable(target_policy) else list(target_policy)
    try:
        probs = np.asarray(rows, dtype=float)
    except (TypeError, ValueError):  # ragged or not numbers
        probs = np.empty(0)
    shape = (len(log), log.arms_count)
    if probs.shape != shape or not np.isfinite(probs).all() or (probs < 0).any():
        raise BanditInputError("target_policy", rows, f"per-round arm probabilities ≥ 0, shape {shape}")
    off = np.flatnonzero(np.abs(probs.sum(axis=1) - 1) > 1e-6)
    if off.size:
        raise BanditInputError("target_policy", probs[off[0]].tolist(), f"summing to 1 (round {off[0]})")
    chosen = probs[np.arange(len(log)), np.array(log.arms)]
    return chosen / np.array(log.propensities)


def _estimate(method: str, value: float, stderr: float, w: np.ndarray) -> OffPolicyEstimate:
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.975)
    ess = float(w.sum() ** 2 / (w**2).sum()) if (w > 0).any() else 0.0
    return OffPolicyEstimate(method, value, stderr, value - z * stderr, value + z * stderr, ess, len(w))


def ips(log: BanditLog, target_policy: Policy | Sequence[Sequence[float]]) -> OffPolicyEstimate:
    """Inverse propensity scoring: ``mean(π(a_t | t) / p_t · r_t)``, unbiased when every arm
    the target policy may choose had a positive logging propensity.

    ``target_policy`` is a callable ``t -> probabilities of each arm`` (look contexts up
    by round ``t``) or a ``rounds × n_arms`` array of them.

    >>> log = BanditLog((0, 1, 1, 0), (1.0, 0.0, 1.0, 0.0), propensities=(0.5,) * 4)
    >>> ips(log, lambda t: [0.0, 1.0]).value
    0.5
    """
    import numpy as np

    w = _weights(log, target_policy)
    terms = w * np.array(log.rewards)
    stderr = float(terms.std(ddof=1) / math.sqrt(len(terms))) if len(terms) > 1 else math.nan
    return _estimate("IPS", float(terms.mean()), stderr, w)


def snips(log: BanditLog, target_policy: Policy | Sequence[Sequence[float]]) -> OffPolicyEstimate:
    """Self-normalised IPS: ``Σ w_t r_t / Σ w_t``. Slightly biased, far less variable than
    :func:`ips` when weights are large; its standard error is the delta-method one.

    >>> log = BanditLog((0, 1, 1, 0), (1.0, 0.0, 1.0, 0.0), propensities=(0.5,) * 4)
    >>> snips(log, [[0.0, 1.0]] * 4).value
    0.5
    """
    import numpy as np

    w = _weights(log, target_policy)
    r = np.array(log.rewards)
    if w.sum() == 0:
        raise BanditInputError("target_policy", None, "a policy giving some logged arm a probability > 0")
    value = float((w * r).sum() / w.sum())
    stderr = float(math.sqrt(((w * (r - value)) ** 2).sum()) / w.sum())
    return _estimate("SNIPS", value, stderr, w)


@dataclass(frozen=True)
class ThompsonRun:
    """A simulated Thompson-sampling run: its log, the true arm means, and its own regret tally."""

    log: BanditLog
    arm_means: tuple[float, ...]
    regret: float


def simulate_thompson(
    arm_means: Sequence[float], rounds: int, rng: np.random.Generator, prior: tuple[float, float] = (1.0, 1.0)
) -> ThompsonRun:
    """Thompson sampling on Bernoulli arms with Beta(``prior``) priors.

    Each round draws one sample from every arm's Beta posterior, plays the arm with the
    highest draw, and observes a 0/1 reward with that arm's true mean. The run counts its
    pseudo-regret ``Σ (max μ − μ_arm)`` as it goes. The log carries no propensities
    (Thompson sampling's are not available in closed form).

    >>> import numpy as np
    >>> run = simulate_thompson([0.1, 0.9], rounds=200, rng=np.random.default_rng(0))
    >>> run.log.pulls()[1] > 180
    True
    """
    import numpy as np

    means = np.array([float(m) for m in arm_means]) if len(arm_means) else np.empty(0)
    if means.size < 2 or not ((means >= 0) & (means <= 1)).all():
        raise BanditInputError("arm_means", arm_means, "at least two success probabilities in [0, 1]")
    if not (isinstance(rounds, int) and rounds >= 1):
        raise BanditInputError("rounds", rounds, "a whole number ≥ 1")
    if not isinstance(rng, np.random.Generator):
        raise BanditInputError("rng", rng, "a numpy.random.Generator, e.g. np.random.default_rng(0)")
    if not (len(prior) == 2 and all(p > 0 for p in prior)):
        raise BanditInputError("prior", prior, "Beta parameters (alpha, beta), both > 0")
    wins, losses = np.full(means.size, float(prior[0])), np.full(means.size, float(prior[1]))
    uniforms = rng.random(rounds)
    gaps = (means.max() - means).tolist()
    arms, rewards, tally = [], [], 0.0
    for t in range(rounds):
        arm = int(np.argmax(rng.beta(wins, losses)))
        reward = float(uniforms[t] < means[arm])
        wins[arm] += reward
        losses[arm] += 1.0 - reward
        tally += gaps[arm]
        arms.append(arm)
        rewards.append(reward)
    return ThompsonRun(
        BanditLog(tuple(arms), tuple(rewards), n_arms=means.size), tuple(means.tolist()), tally
    )
