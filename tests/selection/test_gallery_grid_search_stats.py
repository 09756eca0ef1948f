"""scikit-learn's gallery example "Statistical comparison of models using grid search", reproduced.

The example (``examples/model_selection/plot_grid_search_stats.py``) compares
four SVC kernels scored by ROC AUC under 10×10 repeated stratified k-fold: a
right-tailed corrected t-test of the best against the second model, the
uncorrected test, the Bayesian posterior (P(better), a ROPE of ±0.01, credible
intervals), then every pair with Bonferroni-adjusted p-values and the Bayesian
probabilities. Its computations are redone here, the way it does them, on the
data it generates; labledger must give the same numbers through autolog and
``compare`` (the Python API and the CLI).
"""

from __future__ import annotations

import json
from itertools import combinations
from math import comb
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import t as student_t

import labledger as ll
import labledger.integrations.sklearn as llsk
from labledger.cli.app import main

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import make_moons  # noqa: E402
from sklearn.model_selection import GridSearchCV, RepeatedStratifiedKFold  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

TOL = 1e-6


def _corrected_std(differences: np.ndarray, n_train: int, n_test: int) -> float:
    """The example's corrected standard deviation (its ``n`` is n_train + n_test)."""
    n = n_train + n_test
    return float(np.sqrt(np.var(differences, ddof=1) * (1 / n + n_test / n_train)))


def _right_tailed(differences: np.ndarray, df: int, n_train: int, n_test: int) -> tuple[float, float]:
    t_stat = float(np.mean(differences) / _corrected_std(differences, n_train, n_test))
    return t_stat, float(student_t.sf(np.abs(t_stat), df))


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = tmp_path_factory.mktemp("gallery") / ".labledger"
    X, y = make_moons(noise=0.352, random_state=1, n_samples=100)
    param_grid = [{"kernel": ["linear"]}, {"kernel": ["poly"], "degree": [2, 3]}, {"kernel": ["rbf"]}]
    cv = RepeatedStratifiedKFold(n_splits=10, n_repeats=10, random_state=0)
    search = GridSearchCV(estimator=SVC(random_state=0), param_grid=param_grid, scoring="roc_auc", cv=cv)
    with llsk.autolog(experiment="grid-stats", store=store):
        search.fit(X, y)

    results_df = pd.DataFrame(search.cv_results_).sort_values(by=["rank_test_score"])
    model_scores = results_df.filter(regex=r"split\d*_test_score")
    splits = list(cv.split(X, y))
    children = ll.runs("grid-stats", include_children=True, store=store)
    children = children[children.parent_id.notna()]
    by_index = {int(ll.get_run(i, store=store).params["candidate/index"]): i for i in children.id}
    return {
        "store": store,
        "scores": model_scores.to_numpy(),
        "runs": [by_index[int(i)] for i in results_df.index],  # best first, as the example orders them
        "n_train": len(splits[0][0]),
        "n_test": len(splits[0][1]),
    }


def test_the_design_is_recorded_with_measured_fold_sizes(gallery: dict[str, Any]) -> None:
    view = ll.get_run(gallery["runs"][0], store=gallery["store"])
    params = view.params
    assert params["cv/n_splits"] == 100 and params["cv/n_repeats"] == 10
    assert params["cv/train_sizes"] == [90] * 100 and params["cv/test_sizes"] == [10] * 100
    assert params.get("direction/roc_auc", "max") == "max"
    stored = [row for _, row in view.folds[view.folds.split == "test"].sort_values("fold").iterrows()]
    assert [r["value"] for r in stored] == gallery["scores"][0].tolist()


def test_best_against_second_frequentist_and_bayesian(gallery: dict[str, Any]) -> None:
    scores, n_train, n_test = gallery["scores"], gallery["n_train"], gallery["n_test"]
    differences = scores[0] - scores[1]
    df = differences.shape[0] - 1
    t_stat, p_val = _right_tailed(differences, df, n_train, n_test)
    plain_t = float(np.mean(differences) / np.sqrt(np.var(differences, ddof=1) / differences.shape[0]))
    plain_p = float(student_t.sf(np.abs(plain_t), df))
    posterior = student_t(df, loc=np.mean(differences), scale=_corrected_std(differences, n_train, n_test))
    better_prob = 1 - posterior.cdf(0)
    rope_prob = posterior.cdf(0.01) - posterior.cdf(-0.01)

    best, second = gallery["runs"][:2]
    pair = ll.compare([best, second], metric="roc_auc", alternative="greater", store=gallery["store"]).pairs[
        0
    ]
    assert pair.result is not None and pair.result.df == df
    assert pair.result.statistic == pytest.approx(t_stat, abs=TOL)
    assert pair.result.p_value == pytest.approx(p_val, abs=TOL)
    assert "Bouckaert" in pair.description and "n_test/n_train = 10/90" in (pair.ratio_source or "")
    assert pair.p_a_better == pytest.approx(better_prob, abs=TOL)
    assert pair.p_b_better == pytest.approx(1 - better_prob, abs=TOL)
    assert pair.posterior is not None
    for level in (0.5, 0.75, 0.95):
        assert pair.posterior.interval(level) == pytest.approx(posterior.interval(level), abs=TOL)
    # the example's conclusion: the uncorrected test calls it significant, the corrected one does not
    uncorrected = ll.compare(
        [best, second], metric="roc_auc", test="paired-t", alternative="greater", store=gallery["store"]
    ).pairs[0]
    assert uncorrected.result is not None
    assert uncorrected.result.statistic == pytest.approx(plain_t, abs=TOL)
    assert uncorrected.result.p_value == pytest.approx(plain_p, abs=TOL)
    assert uncorrected.significant and not pair.significant

    with_rope = ll.compare(
        [best, second], metric="roc_auc", alternative="greater", rope=0.01, store=gallery["store"]
    ).pairs[0]
    assert with_rope.posterior is not None
    assert with_rope.posterior.p_rope == pytest.approx(rope_prob, abs=TOL)


def _example_pairwise(gallery: dict[str, Any]) -> list[dict[str, float]]:
    scores, n_train, n_test = gallery["scores"], gallery["n_train"], gallery["n_test"]
    n_comparisons = comb(len(scores), 2)
    df = scores.shape[1] - 1
    rows = []
    for i, k in combinations(range(len(scores)), 2):
        differences = scores[i] - scores[k]
        t_stat, p_val = _right_tailed(differences, df, n_train, n_test)
        posterior = student_t(
            df, loc=np.mean(differences), scale=_corrected_std(differences, n_train, n_test)
        )
        rows.append(
            {
                "t_stat": t_stat,
                "p_val": min(1.0, p_val * n_comparisons),
                "worse_prob": float(posterior.cdf(-0.01)),
                "better_prob": float(1 - posterior.cdf(0.01)),
                "rope_prob": float(posterior.cdf(0.01) - posterior.cdf(-0.01)),
            }
        )
    return rows


def test_every_pair_with_bonferroni_and_the_bayesian_probabilities(gallery: dict[str, Any]) -> None:
    expected = _example_pairwise(gallery)
    comparison = ll.compare(
        gallery["runs"],
        metric="roc_auc",
        alternative="greater",
        correction="bonferroni",
        rope=0.01,
        store=gallery["store"],
    )
    assert len(comparison.pairs) == len(expected) == 6
    for pair, row in zip(comparison.pairs, expected, strict=True):
        assert pair.result is not None and pair.result.statistic > 0  # best first: right tail = |t|
        assert pair.result.statistic == pytest.approx(row["t_stat"], abs=TOL)
        assert pair.p_adjusted == pytest.approx(row["p_val"], abs=TOL)
        assert pair.p_b_better == pytest.approx(row["worse_prob"], abs=TOL)
        assert pair.p_a_better == pytest.approx(row["better_prob"], abs=TOL)
        assert pair.posterior is not None
        assert pair.posterior.p_rope == pytest.approx(row["rope_prob"], abs=TOL)
    # the example's reading: after Bonferroni only '2_poly' differs significantly from the others
    significant = {(p.labels, p.significant) for p in comparison.pairs}
    poly2 = comparison.labels[-1]
    assert all(sig == (poly2 in labels) for labels, sig in significant)


def test_the_cli_gives_the_same_numbers(gallery: dict[str, Any]) -> None:
    expected = _example_pairwise(gallery)
    args = ["compare", *gallery["runs"], "-m", "roc_auc", "--alternative", "greater"]
    args += ["--correction", "bonferroni", "--rope", "0.01", "--store", str(gallery["store"])]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    tests = json.loads(result.output)["tests"]
    for got, row in zip(tests, expected, strict=True):
        assert got["statistic"] == pytest.approx(row["t_stat"], abs=TOL)
        assert got["p_adjusted"] == pytest.approx(row["p_val"], abs=TOL)
        assert got["bayesian"]["p_equivalent"] == pytest.approx(row["rope_prob"], abs=TOL)
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "p (bonferroni)" in text.output and "P(equivalent)" in text.output
    assert "corrected repeated k-fold cv test (Bouckaert & Frank 2004)" in text.output


def test_holm_is_the_default_and_the_leaderboard_uses_adjusted_values(gallery: dict[str, Any]) -> None:
    comparison = ll.compare(gallery["runs"], metric="roc_auc", store=gallery["store"])
    raw = [p.result.p_value for p in comparison.pairs if p.result is not None]
    order = np.argsort(raw)
    m, running, holm = len(raw), 0.0, [0.0] * len(raw)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * raw[i]))
        holm[i] = running
    assert [p.p_adjusted for p in comparison.pairs] == pytest.approx(holm, abs=1e-12)

    board = ll.leaderboard("grid-stats", "roc_auc", include_children=True, store=gallery["store"])
    ranked = [e for e in board.entries if e.rank is not None]
    assert [e.run.id for e in ranked] == gallery["runs"]
    tested = [e for e in ranked[1:] if e.p_value is not None]
    assert len(tested) == 3 and all(e.p_adjusted is not None and e.p_adjusted >= e.p_value for e in tested)
    assert all(e.tie == (e.p_adjusted >= board.alpha) for e in tested)
