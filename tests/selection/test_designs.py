"""The comparison follows the recorded design: measured fold sizes, time-ordered folds, one-sided
tests, scorer signs — on real scikit-learn models and splitters."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

import labledger as ll
import labledger.integrations.sklearn as llsk
from labledger.cli.app import main

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (
    GridSearchCV,
    ShuffleSplit,
    StratifiedKFold,
    TimeSeriesSplit,
    cross_val_score,
)
from sklearn.tree import DecisionTreeClassifier


def _cv_runs(store, estimators, X, y, cv, scoring="accuracy"):
    ids = []
    for name, estimator in estimators.items():
        scores = cross_val_score(estimator, X, y, cv=cv, scoring=scoring)
        with ll.start_run("designs", name=name, store=store) as run:
            run.log_folds(scoring, scores.tolist(), cv=cv, X=X, y=y)
        ids.append(run.id)
    return ids


def test_shuffle_split_uses_its_measured_ratio_not_one_over_k_minus_one(store_path):
    X, y = make_classification(n_samples=200, n_features=8, random_state=0)
    cv = ShuffleSplit(n_splits=10, test_size=0.25, random_state=0)
    ids = _cv_runs(
        store_path,
        {
            "logreg": LogisticRegression(max_iter=500),
            "tree": DecisionTreeClassifier(max_depth=2, random_state=0),
        },
        X,
        y,
        cv,
    )
    pair = ll.compare(ids, metric="accuracy", store=store_path).pairs[0]
    assert pair.result is not None and pair.result.test_train_ratio == pytest.approx(50 / 150)
    a, b = (np.array(ll.get_run(i, store=store_path).folds.sort_values("fold").value) for i in ids)
    d = a - b
    t = d.mean() / np.sqrt((1 / 10 + 50 / 150) * d.var(ddof=1))
    assert pair.result.statistic == pytest.approx(t, rel=1e-12)
    assert pair.result.p_value == pytest.approx(2 * stats.t.sf(abs(t), 9), rel=1e-9)
    assert pair.description == "Nadeau–Bengio corrected resampled t-test"  # not repeated k-fold


def test_time_ordered_folds_get_a_paired_test_on_differences_with_a_caveat(store_path):
    X, y = make_regression(n_samples=300, n_features=5, noise=5.0, random_state=0)
    cv = TimeSeriesSplit(n_splits=5, test_size=40)
    ids = _cv_runs(store_path, {"ridge": Ridge(1.0), "ridge-strong": Ridge(300.0)}, X, y, cv, scoring="r2")
    view = ll.get_run(ids[0], store=store_path)
    assert view.params["cv/time_ordered"] is True and view.params["cv/test_sizes"] == [40] * 5
    pair = ll.compare(ids, metric="r2", store=store_path).pairs[0]
    assert pair.result is not None and pair.result.test == "paired-t"
    assert pair.caveat and "time-ordered folds (TimeSeriesSplit)" in pair.verdict
    assert pair.posterior is None  # no Bayesian view under the corrected model's broken assumptions
    a, b = (np.array(ll.get_run(i, store=store_path).folds.sort_values("fold").value) for i in ids)
    assert pair.result.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
    text = CliRunner().invoke(main, ["compare", *ids, "-m", "r2", "--store", str(store_path)]).output
    assert "caveat: time-ordered folds" in text
    board = ll.leaderboard("designs", "r2", store=store_path)
    assert any("time-ordered" in e.note for e in board.entries)


def test_one_sided_alternatives_and_their_verdicts(store_path):
    X, y = make_classification(n_samples=240, n_features=10, n_informative=6, random_state=1)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    good, bad = _cv_runs(
        store_path,
        {
            "logreg": LogisticRegression(max_iter=500),
            "stump": DecisionTreeClassifier(max_depth=1, random_state=0),
        },
        X,
        y,
        cv,
    )
    two = ll.compare([good, bad], metric="accuracy", store=store_path).pairs[0]
    greater = ll.compare([good, bad], metric="accuracy", alternative="greater", store=store_path).pairs[0]
    less = ll.compare([good, bad], metric="accuracy", alternative="less", store=store_path).pairs[0]
    assert two.result and greater.result and less.result
    assert greater.result.p_value == pytest.approx(two.result.p_value / 2, rel=1e-12)
    assert less.result.p_value == pytest.approx(1 - greater.result.p_value, rel=1e-12)
    assert greater.winner == "a" and "one-sided, H1: A > B" in greater.verdict
    assert less.winner is None and less.verdict.startswith("no significant evidence that A < B on accuracy")
    out = CliRunner().invoke(
        main, ["compare", good, bad, "-m", "accuracy", "--alternative", "less", "--store", str(store_path)]
    )
    assert out.exit_code == 0 and "one-sided: H1 A − B < 0" in out.output
    bad_choice = CliRunner().invoke(main, ["compare", good, bad, "--alternative", "bigger"])
    assert bad_choice.exit_code == 2 and "bigger" in bad_choice.output


def test_a_negated_loss_is_ranked_by_its_recorded_direction(store_path):
    """``scoring={"LogLoss": "neg_log_loss"}``: values are greater-is-better whatever the name says."""
    X, y = make_classification(n_samples=200, n_features=6, random_state=2)
    search = GridSearchCV(
        LogisticRegression(max_iter=500),
        {"C": [1e-4, 1.0]},
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        scoring={"LogLoss": "neg_log_loss"},
        refit="LogLoss",
    )
    with llsk.autolog(experiment="logloss", store=store_path):
        search.fit(X, y)
    board = ll.leaderboard("logloss", "LogLoss", include_children=True, store=store_path)
    assert board.direction == "max"
    leader = next(e for e in board.entries if e.rank == 1)
    assert leader.run.params["C"] == search.best_params_["C"] == 1.0
    assert leader.mean == pytest.approx(search.best_score_)


def test_default_scoring_is_found_under_the_scorers_name(store_path):
    X, y = make_classification(n_samples=120, n_features=5, random_state=3)
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 1.0]}, cv=3)
    with llsk.autolog(experiment="default-scoring", store=store_path):
        search.fit(X, y)
    board = ll.leaderboard("default-scoring", "accuracy", include_children=True, store=store_path)
    assert [e.source for e in board.entries if e.run.parent_id] == ["folds", "folds"]
    out = CliRunner().invoke(
        main, ["leaderboard", "default-scoring", "-m", "accuracy", "--children", "--store", str(store_path)]
    )
    assert out.exit_code == 0 and "leader" in out.output
