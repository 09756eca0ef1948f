"""A bandit's and an interleaving experiment's summaries, from the per-period aggregates.

Regret is ``Σ_periods Σ_arms pulls · (μ* − μ_arm)``: against the true arm means when they are
known (simulations), else the log's own mean reward per arm (the best arm in hindsight), which
is what :func:`labledger.online.bandits.regret` gives on the same rounds.

>>> summary = bandit_summary(read_online(ll.get_run("homepage/bandit-1")))  # doctest: +SKIP
>>> summary.regret, summary.saved  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labledger.online import record

if TYPE_CHECKING:
    import numpy as np

    from labledger.online.interleaving import InterleavingResult

__all__ = ["BanditSummary", "bandit_summary", "interleaving_summary"]


@dataclass
class BanditSummary:
    """A bandit's arms from per-period aggregates: pulls, mean reward, regret, allocation."""

    arms: list[str]
    pulls: list[int]
    means: list[float]
    best_arm: str
    true_means: bool
    cumulative_regret: list[float]  # after each period
    shares: list[list[float]]  # per period, per arm
    uniform_regret: float

    @property
    def regret(self) -> float:
        return self.cumulative_regret[-1] if self.cumulative_regret else 0.0

    @property
    def saved(self) -> float:
        return self.uniform_regret - self.regret


def _true_means(arms: list[str], arm_means: Sequence[float] | Mapping[str, float]) -> np.ndarray:
    import numpy as np

    from labledger.errors import InvalidValueError

    if isinstance(arm_means, Mapping):
        if set(arm_means) != set(arms):
            raise InvalidValueError("arm_means", dict(arm_means), f"one mean per arm of {arms}")
        arm_means = [arm_means[a] for a in arms]
    values = np.array([float(m) for m in arm_means], dtype=float)
    if values.shape != (len(arms),) or not np.isfinite(values).all():
        raise InvalidValueError(
            "arm_means", list(arm_means), f"{len(arms)} finite means, one per arm of {arms}"
        )
    return values


def bandit_summary(
    data: record.OnlineData, arm_means: Sequence[float] | Mapping[str, float] | None
) -> BanditSummary | None:
    """Per-arm pulls, mean reward, cumulative regret per period, allocation, equal-split cost."""
    import numpy as np

    arms = data.variants
    pulls = np.array([data.column(record.bandit_key(a, "pulls")) for a in arms]).T  # periods × arms
    rewards = np.array([data.column(record.bandit_key(a, "reward")) for a in arms]).T
    if not pulls.size or pulls.sum() == 0:
        return None
    totals = pulls.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(totals > 0, rewards.sum(axis=0) / totals, np.nan)
    truth = arm_means is not None
    ref = _true_means(arms, arm_means) if arm_means is not None else means
    best = int(np.nanargmax(ref))
    gaps = np.nan_to_num(ref[best] - ref)
    cumulative = np.cumsum(pulls @ gaps)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.nan_to_num(pulls / pulls.sum(axis=1, keepdims=True))
    uniform = float(totals.sum() * (ref[best] - np.nanmean(ref)))
    return BanditSummary(
        arms=list(arms),
        pulls=[int(x) for x in totals],
        means=[float(x) for x in means],
        best_arm=arms[best],
        true_means=truth,
        cumulative_regret=[float(x) for x in np.round(cumulative, 12)],
        shares=shares.tolist(),
        uniform_regret=uniform,
    )


def interleaving_summary(data: record.OnlineData) -> InterleavingResult | None:
    """The sign test on the logged per-query wins."""
    from labledger.online.interleaving import preference_test

    wa, wb, ties = (int(data.total(record.interleaving_key(f))) for f in record.INTERLEAVING_FIELDS)
    if wa + wb + ties == 0:
        return None
    return preference_test([(1, 0)] * wa + [(0, 1)] * wb + [(0, 0)] * ties, alpha=data.alpha)
