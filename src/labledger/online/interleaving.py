"""Team-draft interleaving: which of two rankers do users prefer, from their clicks?

Instead of showing each user one ranker (an A/B test), every query gets one list that
merges both rankings (Radlinski, Kurup & Joachims, 2008, "How Does Clickthrough Data
Reflect Retrieval Quality?", CIKM). Like captains picking teams, each round a coin flip
decides which ranker picks first; each then adds its highest-ranked item not yet shown,
and the item joins that ranker's team. A click credits the team of the clicked item; the
ranker whose team gets more clicks wins the query. Over many queries a sign test says
whether one ranker wins more often than chance. Interleaving needs one to two orders of
magnitude fewer queries than an A/B test on the same rankers (Chapelle, Joachims,
Radlinski & Yue, 2012, "Large-Scale Validation and Analysis of Interleaved Search
Evaluation", ACM TOIS 30(1)).

>>> import random
>>> from labledger.online.interleaving import credit, interleave, preference_test
>>> shown = interleave(["d1", "d2", "d3"], ["d2", "d4", "d1"], random.Random(0))
>>> [item for item, _ in shown]
['d2', 'd1', 'd4']
>>> credit(shown, clicked_items={"d4"})
(0, 1)
>>> print(preference_test([(0, 1)] * 30 + [(1, 0)] * 10 + [(1, 1)] * 5).describe())
users prefer b: it won 30 of 40 queries with a preference (75%, 95% CI 60%–86%; sign test p = 0.00222); 5 ties
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from labledger.online.checks import OnlineInputError

__all__ = ["InterleavingInputError", "InterleavingResult", "credit", "interleave", "preference_test"]

Item = TypeVar("Item", bound=Hashable)
Team = Literal["a", "b"]


class InterleavingInputError(OnlineInputError):
    """An argument of an interleaving function is malformed; ``argument`` names it."""


def _check_ranking(name: str, ranking: Sequence[Any]) -> list[Any]:
    if isinstance(ranking, str | bytes) or not isinstance(ranking, Sequence):
        raise InterleavingInputError(name, ranking, "a sequence of items, best first")
    items = list(ranking)
    try:
        duplicates = len(set(items)) != len(items)
    except TypeError:
        raise InterleavingInputError(name, ranking, "a sequence of hashable items (ids)") from None
    if duplicates:
        raise InterleavingInputError(name, ranking, "a ranking without repeated items")
    return items


def _check_rng(rng: Any) -> None:
    """Coin flips come from a ``random.Random`` or a ``numpy.random.Generator``, never global state."""
    if not isinstance(rng, random.Random):
        import numpy as np

        if not isinstance(rng, np.random.Generator):
            raise InterleavingInputError(
                "rng", rng, "a numpy.random.Generator or a random.Random instance, e.g. default_rng(0)"
            )


def interleave(
    ranking_a: Sequence[Item], ranking_b: Sequence[Item], rng: Any, length: int | None = None
) -> list[tuple[Item, Team]]:
    """Team-draft interleaving of two rankings: ``[(item, "a" | "b"), ...]`` in display order.

    Each round a coin flip from ``rng`` (a ``numpy.random.Generator`` or ``random.Random``)
    picks which ranker drafts first; then each ranker adds its best item not yet in the
    list. Drafting stops when either ranking has no item left to add or the list has
    ``length`` items. Every item appears at most once; the teams differ in size by at most one.

    >>> interleave([1, 2, 3], [1, 2, 3], random.Random(1), length=2)
    [(1, 'a'), (2, 'b')]
    """
    a, b = _check_ranking("ranking_a", ranking_a), _check_ranking("ranking_b", ranking_b)
    _check_rng(rng)
    if length is not None and not (isinstance(length, int) and length >= 0):
        raise InterleavingInputError("length", length, "None or a whole number ≥ 0")
    limit = len(set(a) | set(b)) if length is None else length
    shown: list[tuple[Item, Team]] = []
    seen: set[Item] = set()
    next_a = next_b = 0  # positions before which every item is already shown
    size = {"a": 0, "b": 0}
    while len(shown) < limit:
        while next_a < len(a) and a[next_a] in seen:
            next_a += 1
        while next_b < len(b) and b[next_b] in seen:
            next_b += 1
        if next_a == len(a) or next_b == len(b):
            break
        team: Team = "a" if size["a"] < size["b"] or (size["a"] == size["b"] and rng.random() < 0.5) else "b"
        item = a[next_a] if team == "a" else b[next_b]
        shown.append((item, team))
        seen.add(item)
        size[team] += 1
    return shown


def credit(interleaved: Sequence[tuple[Item, Team]], clicked_items: Iterable[Item]) -> tuple[int, int]:
    """Clicks credited to each ranker on one query: ``(clicks on a's team, clicks on b's team)``.

    >>> credit([("x", "a"), ("y", "b"), ("z", "a")], ["x", "z"])
    (2, 0)
    """
    teams: dict[Any, str] = {}
    for i, entry in enumerate(interleaved):
        if not (isinstance(entry, tuple) and len(entry) == 2 and entry[1] in ("a", "b")):
            raise InterleavingInputError(
                f"interleaved[{i}]", entry, 'an (item, "a" | "b") pair from interleave()'
            )
        teams[entry[0]] = entry[1]
    clicks = list(clicked_items) if not isinstance(clicked_items, Collection) else clicked_items
    if isinstance(clicks, str | bytes):
        raise InterleavingInputError("clicked_items", clicked_items, "a collection of clicked items")
    unknown = [item for item in clicks if item not in teams]
    if unknown:
        raise InterleavingInputError(
            "clicked_items",
            unknown,
            "items of the interleaved list (clicks elsewhere on the page do not count)",
        )
    wins_a = sum(teams[item] == "a" for item in clicks)
    return wins_a, len(clicks) - wins_a


@dataclass(frozen=True)
class InterleavingResult:
    """Per-query wins of an interleaving experiment and the sign test on them.

    ``preference_b`` is the share of queries with a preference that ``b`` won (NaN if
    every query tied); ``winner`` is ``"a"``, ``"b"``, or ``None`` for no preference at ``alpha``.
    """

    queries: int
    wins_a: int
    wins_b: int
    ties: int
    preference_b: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    winner: Team | None

    def describe(self) -> str:
        """One line: who users prefer, by how much, and how sure that is."""
        decided = self.wins_a + self.wins_b
        if decided == 0:
            return f"no preference: all {self.queries} queries tied"
        leader, won = ("b", self.wins_b) if self.wins_b >= self.wins_a else ("a", self.wins_a)
        share = won / decided
        lo, hi = (self.ci_low, self.ci_high) if leader == "b" else (1 - self.ci_high, 1 - self.ci_low)
        evidence = (
            f"{won} of {decided} queries with a preference ({share:.0%}, {1 - self.alpha:.0%} CI "
            f"{lo:.0%}–{hi:.0%}; sign test p = {self.p_value:.3g}); {self.ties} ties"
        )
        if self.winner is None:
            return f"no preference at α = {self.alpha:g}: {leader} won {evidence}"
        return f"users prefer {self.winner}: it won {evidence}"


def preference_test(per_query_credits: Iterable[tuple[int, int]], alpha: float = 0.05) -> InterleavingResult:
    """Sign test of per-query ``(clicks a, clicks b)`` pairs from :func:`credit`.

    A query is won by the ranker with more credited clicks and tied otherwise (including
    no clicks); ties are left out of the two-sided binomial test of "each ranker wins half
    the decided queries" (``scipy.stats.binomtest``) and of the Wilson interval of b's share.

    >>> r = preference_test([(1, 0), (0, 1), (0, 0), (2, 1)])
    >>> r.wins_a, r.wins_b, r.ties, r.winner
    (2, 1, 1, None)
    """
    from scipy import stats

    if not (isinstance(alpha, numbers.Real) and 0 < alpha < 1):
        raise InterleavingInputError("alpha", alpha, "in (0, 1), e.g. 0.05")
    wins_a = wins_b = ties = 0
    queries = 0
    for i, pair in enumerate(per_query_credits):
        ok = isinstance(pair, tuple | list) and len(pair) == 2
        whole = ok and all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in pair)
        if not whole or not all(c >= 0 for c in pair):
            raise InterleavingInputError(
                f"per_query_credits[{i}]",
                pair,
                "a (clicks a, clicks b) pair of whole numbers ≥ 0 from credit()",
            )
        queries += 1
        wins_a += pair[0] > pair[1]
        wins_b += pair[1] > pair[0]
        ties += pair[0] == pair[1]
    if queries == 0:
        raise InterleavingInputError("per_query_credits", [], "the credits of at least one query")
    decided = wins_a + wins_b
    if decided == 0:
        share, lo, hi, p = math.nan, math.nan, math.nan, 1.0
    else:
        test = stats.binomtest(wins_b, decided, 0.5)
        ci = test.proportion_ci(confidence_level=1 - alpha, method="wilson")
        share, lo, hi, p = wins_b / decided, float(ci.low), float(ci.high), float(test.pvalue)
    winner: Team | None = None if p > alpha else ("b" if wins_b > wins_a else "a")
    return InterleavingResult(
        queries=queries,
        wins_a=wins_a,
        wins_b=wins_b,
        ties=ties,
        preference_b=share,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        alpha=float(alpha),
        winner=winner,
    )
