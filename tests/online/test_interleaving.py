"""Team-draft interleaving: the list's properties, and recovering the better ranker from simulated clicks."""

from __future__ import annotations

import doctest
import math
import random

import numpy as np
import pytest

from labledger.errors import LabledgerError
from labledger.online import interleaving
from labledger.online.interleaving import InterleavingInputError, credit, interleave, preference_test

ALPHA = 0.05


def _random_rankings(rng: np.random.Generator) -> tuple[list[int], list[int]]:
    pool = int(rng.integers(1, 15))
    a = rng.permutation(pool)[: int(rng.integers(0, pool + 1))].tolist()
    b = rng.permutation(pool)[: int(rng.integers(0, pool + 1))].tolist()
    return a, b


def test_each_item_once_teams_balanced_and_every_prefix_holds_both_rankers_top_items():
    rng = np.random.default_rng(0)
    for trial in range(2000):
        a, b = _random_rankings(rng)
        coin = random.Random(trial) if trial % 2 else np.random.default_rng(trial)
        shown = interleave(a, b, coin)
        items = [item for item, _ in shown]
        assert len(items) == len(set(items))
        for k in range(len(shown) + 1):
            prefix = set(items[:k])
            n_a = sum(team == "a" for _, team in shown[:k])
            n_b = k - n_a
            assert abs(n_a - n_b) <= 1
            # a's team picked n_a times, each its best unshown item: a's top n_a are all in the prefix
            assert set(a[:n_a]) <= prefix and set(b[:n_b]) <= prefix
            assert set(a[: k // 2]) <= prefix and set(b[: k // 2]) <= prefix
        for item, team in shown:
            assert item in (a if team == "a" else b)
        # it stops only when a ranking has nothing new left
        assert set(a) <= set(items) or set(b) <= set(items)


def test_length_cuts_the_list_and_the_same_seed_gives_the_same_list():
    a, b = list(range(10)), list(range(9, -1, -1))
    shown = interleave(a, b, np.random.default_rng(4), length=5)
    assert len(shown) == 5 and shown == interleave(a, b, np.random.default_rng(4), length=5)
    assert interleave(a, b, random.Random(1), length=0) == []
    assert interleave([], b, random.Random(1)) == []


def test_the_first_pick_is_a_fair_coin():
    firsts = [interleave([1, 2], [3, 4], random.Random(seed))[0][1] for seed in range(2000)]
    share = firsts.count("a") / 2000
    assert abs(share - 0.5) <= 3 * math.sqrt(0.25 / 2000)


def _cascade_clicks(items: list[int], relevant: np.ndarray, rng: np.random.Generator) -> list[int]:
    """Cascade user: scans top-down, clicks relevant items with 0.7 and others with 0.1, stops
    after a click with probability 0.5 and after each position with probability 0.1."""
    clicks = []
    for item in items:
        if rng.random() < (0.7 if relevant[item] else 0.1):
            clicks.append(item)
            if rng.random() < 0.5:
                break
        if rng.random() < 0.1:
            break
    return clicks


def _experiment(rng: np.random.Generator, queries: int, noise_a: float, noise_b: float, same: bool = False):
    credits = []
    for _ in range(queries):
        relevant = rng.random(20) < 0.3
        score_a = relevant + rng.normal(0, noise_a, 20)
        ranking_a = np.argsort(-score_a).tolist()
        ranking_b = ranking_a if same else np.argsort(-(relevant + rng.normal(0, noise_b, 20))).tolist()
        shown = interleave(ranking_a, ranking_b, rng, length=10)
        credits.append(credit(shown, _cascade_clicks([item for item, _ in shown], relevant, rng)))
    return preference_test(credits)


def test_the_better_ranker_wins_over_500_queries():
    # b ranks with a quarter of a's noise; measured: b wins 250 of 377 decided queries (66%), p = 2.3e-10
    result = _experiment(np.random.default_rng(11), 500, noise_a=1.0, noise_b=0.25)
    assert result.winner == "b" and result.p_value < 1e-6
    assert result.preference_b > 0.6 and result.ci_low > 0.5
    assert result.queries == 500 == result.wins_a + result.wins_b + result.ties
    assert result.describe().startswith("users prefer b: it won ")
    flipped = _experiment(np.random.default_rng(11), 500, noise_a=0.25, noise_b=1.0)
    assert flipped.winner == "a"


def test_identical_rankers_show_a_preference_at_no_more_than_the_nominal_rate():
    # 1,000 experiments of 200 queries with the same ranking on both sides; binomial tolerance
    # 3 · sqrt(0.05 · 0.95 / 1000) = 0.021. Measured: 5.2%, b's mean share 0.5005.
    rng = np.random.default_rng(2024)
    results = [_experiment(rng, 200, 1.0, 1.0, same=True) for _ in range(1000)]
    rate = sum(r.winner is not None for r in results) / 1000
    assert rate <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / 1000)
    assert abs(np.mean([r.preference_b for r in results]) - 0.5) < 0.01


def test_preference_test_counts_and_verdicts():
    result = preference_test([(2, 1), (0, 0), (1, 1), (0, 3), (1, 0)])
    assert (result.wins_a, result.wins_b, result.ties, result.queries) == (2, 1, 2, 5)
    assert result.preference_b == pytest.approx(1 / 3) and result.p_value == pytest.approx(1.0)
    assert result.winner is None and result.describe().startswith("no preference at α = 0.05: a won 2 of 3")
    tied = preference_test([(0, 0), (1, 1)])
    assert math.isnan(tied.preference_b) and tied.p_value == 1.0 and tied.winner is None
    assert tied.describe() == "no preference: all 2 queries tied"
    strong_a = preference_test([(1, 0)] * 20)
    assert strong_a.winner == "a" and strong_a.p_value == pytest.approx(2 * 0.5**20)
    assert strong_a.describe().startswith("users prefer a: it won 20 of 20")


def test_credit_counts_clicks_per_team():
    shown = [("x", "a"), ("y", "b"), ("z", "a"), ("w", "b")]
    assert credit(shown, []) == (0, 0)
    assert credit(shown, {"y", "w", "x"}) == (1, 2)
    assert credit(shown, iter(["z"])) == (1, 0)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: interleave([1, 1], [2], random.Random(0)), "ranking_a"),
        (lambda: interleave([1], "abc", random.Random(0)), "ranking_b"),
        (lambda: interleave([[1]], [2], random.Random(0)), "ranking_a"),
        (lambda: interleave([1], [2], random), "rng"),
        (lambda: interleave([1], [2], None), "rng"),
        (lambda: interleave([], [], None), "rng"),
        (lambda: interleave([1], [2], random.Random(0), length=-1), "length"),
        (lambda: credit([("x", "c")], []), "interleaved[0]"),
        (lambda: credit([("x", "a")], ["q"]), "clicked_items"),
        (lambda: credit([("x", "a")], "x"), "clicked_items"),
        (lambda: preference_test([]), "per_query_credits"),
        (lambda: preference_test([(1, 0), (1, -1)]), "per_query_credits[1]"),
        (lambda: preference_test([(1, 0)], alpha=0), "alpha"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(InterleavingInputError) as info:
        call()
    assert info.value.argument == argument and str(info.value).startswith(argument)
    assert isinstance(info.value, LabledgerError) and isinstance(info.value, ValueError)


def test_the_docstring_examples_run():
    assert doctest.testmod(interleaving, raise_on_error=False).failed == 0
