"""scikit-learn autolog and the comparability guard: what is recorded lets compare and the
leaderboard refuse unfair comparisons (other targets, other halving iterations, other scorers)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

import sklearn.model_selection as ms
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, KFold
from sklearn.tree import DecisionTreeClassifier

import labledger as ll
import labledger.integrations.sklearn as llsk


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    llsk.autolog(disable=True)


def _searches(experiment: str) -> list[ll.RunView]:
    df = ll.runs(experiment).sort_values("start_time")
    return [ll.get_run(i) for i in df["id"]]


@pytest.mark.timeout(60)
def test_candidates_of_searches_on_other_targets_are_not_comparable(digits):
    X, y = digits
    cv = KFold(3, shuffle=True, random_state=0)  # the same folds for both searches
    llsk.autolog(experiment="targets")
    for target in (y, (y >= 5).astype(int)):  # the same X, another question
        GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [3, 6]}, cv=cv).fit(X, target)

    first, second = _searches("targets")
    for search in (first, second):
        inherited = {(d["name"], d["role"], d["fingerprint"]) for d in search.datasets}
        assert {(d["name"], d["role"], d["fingerprint"]) for d in search.children[0].datasets} == inherited
    a, b = first.children[0], second.children[0]
    assert a.params["cv/fingerprint"] == b.params["cv/fingerprint"]  # only the target differs

    pair = ll.compare([a.id, b.id], metric="accuracy").pairs[0]
    assert not pair.comparable and pair.result is None
    assert pair.verdict.startswith("not comparable: different target data")
    same_search = ll.compare([a.id, first.children[1].id], metric="accuracy").pairs[0]
    assert same_search.comparable and same_search.result is not None

    board = ll.leaderboard("targets", "accuracy", include_children=True)
    ranked = {e.run.id for e in board.entries if e.rank is not None}
    leader_search = next(e for e in board.entries if e.rank == 1).run.parent_id
    for entry in board.entries:
        if entry.run.parent_id is None:
            continue
        if entry.run.parent_id == leader_search:
            assert entry.run.id in ranked
        else:
            assert entry.rank is None
            assert entry.note.startswith("not comparable: different target data")
    assert "NOT COMPARABLE" in board.render()


@pytest.mark.timeout(60)
def test_halving_candidates_are_compared_within_one_iteration(digits):
    X, y = digits
    llsk.autolog(experiment="halving")
    search = HalvingGridSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": [1, 2, 3, 4, 6, 8]},
        factor=3,
        cv=3,
        min_resources=60,
        random_state=0,
    ).fit(X, y)
    results = search.cv_results_
    assert len(set(results["iter"])) == 2 and len(set(results["n_resources"])) == 2
    (parent,) = _searches("halving")
    by_index = {c.params["candidate/index"]: c for c in parent.children}
    for i, child in by_index.items():
        assert (child.params["halving/iter"], child.params["halving/n_resources"]) == (
            results["iter"][i],
            results["n_resources"][i],
        )
    last = int(max(results["iter"]))
    final = [c for c in parent.children if c.params["halving/iter"] == last]
    first = [c for c in parent.children if c.params["halving/iter"] == 0]
    assert len(final) == 2

    pair = ll.compare([final[0].id, first[0].id], metric="accuracy").pairs[0]
    assert not pair.comparable
    assert "different successive-halving iterations (iter 1 on n_resources" in pair.verdict
    within = ll.compare([final[0].id, final[1].id], metric="accuracy").pairs[0]
    assert within.comparable and within.result is not None

    board = ll.leaderboard("halving", "accuracy", include_children=True)
    ranked = [e for e in board.entries if e.rank is not None]
    assert {e.run.id for e in ranked} == {c.id for c in final}  # not the 6 of the first iteration
    for entry in board.entries:
        if entry.run.params.get("halving/iter") == 0:
            assert entry.rank is None and "different successive-halving iterations" in entry.note
    assert any("final one" in note for note in board.notes)
    assert "ranked within one iteration (iter 1" in board.render()


@pytest.mark.timeout(60)
def test_nested_cross_validation_records_the_inner_searchs_scorer(digits):
    X, y = digits
    llsk.autolog(experiment="nested-scorer")
    grid = {"max_depth": [2, 4]}
    inner = {
        "f1_macro": GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=2, scoring="f1_macro"),
        "accuracy": GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=2),  # the tree's score
        "balanced_accuracy": GridSearchCV(
            DecisionTreeClassifier(random_state=0),
            grid,
            cv=2,
            scoring=["accuracy", "balanced_accuracy"],
            refit="balanced_accuracy",
        ),
    }
    for search in inner.values():
        ms.cross_val_score(search, X, y, cv=2)
    outer = _searches("nested-scorer")
    for run, name in zip(outer, inner, strict=True):  # recorded under the inner search's scorer
        assert run.params[f"scoring/{name}"] == name and run.params[f"direction/{name}"] == "max"
        assert set(run.fold_stats) == {(name, "test")}


@pytest.mark.timeout(90)
def test_a_boosters_keys_never_share_the_searchs_best_score():
    xgb = pytest.importorskip("xgboost")
    from labledger.integrations.xgboost import LedgerCallback

    X, y = load_breast_cancer(return_X_y=True)
    X_train, y_train, X_valid, y_valid = X[:300], y[:300], X[300:450], y[300:450]
    booster = xgb.XGBClassifier(
        n_estimators=12,
        early_stopping_rounds=3,
        eval_metric="logloss",
        n_jobs=1,
        callbacks=[LedgerCallback()],
    )
    llsk.autolog(experiment="xgb-keys")
    search = GridSearchCV(booster, {"max_depth": [2, 3]}, cv=2, scoring="accuracy")
    search.fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)

    (parent,) = _searches("xgb-keys")
    assert parent.metric("best_score")["value"].tolist() == [search.best_score_]  # the CV score only
    refit_best = search.best_estimator_.best_score  # the booster's best validation logloss
    others = {
        k: s["last"] for k, s in parent.summary.items() if k.endswith("best_score") and k != "best_score"
    }
    assert list(others.values()) == [pytest.approx(refit_best)]
    for child in parent.children:
        assert "best_score" not in child.summary


@pytest.mark.timeout(60)
def test_the_integration_declares_its_param_roles(digits):
    from labledger.lineage.completeness import param_role

    assert param_role("estimator/max_iter") == "hyperparameter"  # the built-in rule says configuration
    assert param_role("estimator/n_estimators") == "hyperparameter"
    assert param_role("estimator/n_jobs") == "configuration"
    assert [param_role(k) for k in ("search/refit", "cv/n_splits", "halving/iter", "best/max_depth")] == [
        "configuration",
        "configuration",
        "configuration",
        "hyperparameter",
    ]
    X, y = digits
    llsk.autolog(experiment="roles")
    GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [2, 3]}, cv=2).fit(X, y)
    (search,) = _searches("roles")
    assert search.completeness.parts["training configuration"][0]
    assert search.completeness.parts["hyperparameters"][0]
