"""scikit-learn autolog records the cross-validation design: the measured size of every fold,
repeats, groups, time order, and which direction each recorded score is better in."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn

pytest.importorskip("sklearn")

import sklearn.model_selection as ms
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, make_scorer
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    HalvingGridSearchCV,
    RepeatedStratifiedKFold,
    ShuffleSplit,
    TimeSeriesSplit,
)
from sklearn.tree import DecisionTreeClassifier

import labledger as ll
import labledger.integrations.sklearn as llsk
from labledger.tracking.cv_design import splits_fingerprint

SKLEARN_14 = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 4)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 4))
    y = np.repeat([0, 1], 50)
    X[y == 1] += 0.7
    return X, y


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    llsk.autolog(disable=True)


class SizeRecordingTree(DecisionTreeClassifier):
    """A real tree that notes how many rows every fit and score saw (its own ``score``)."""

    seen: list[tuple[str, int]] = []  # noqa: RUF012 - shared by the clones a search makes

    def fit(self, X, y, sample_weight=None, check_input=True):
        SizeRecordingTree.seen.append(("fit", len(X)))
        return super().fit(X, y, sample_weight=sample_weight, check_input=check_input)

    def score(self, X, y, sample_weight=None):
        SizeRecordingTree.seen.append(("score", len(X)))
        return float(np.mean(self.predict(X) == y))


def _top_runs(experiment: str) -> list[ll.RunView]:
    df = ll.runs(experiment, include_children=True).sort_values("start_time")
    return [ll.get_run(i) for i in df[df["parent_id"].isna()]["id"]]


def _design(params: dict) -> dict:
    return {k: v for k, v in params.items() if k.startswith("cv/")}


def test_grid_search_with_repeated_stratified_kfold_records_100_folds_of_90_10(data):
    X, y = data
    cv = RepeatedStratifiedKFold(n_splits=10, n_repeats=10, random_state=0)
    llsk.autolog(experiment="repeated")
    SizeRecordingTree.seen = []
    grid = {"max_depth": [1, 2]}
    search = GridSearchCV(SizeRecordingTree(random_state=0), grid, cv=cv, refit=False).fit(X, y)
    fits = [n for what, n in SizeRecordingTree.seen if what == "fit"]
    scores = [n for what, n in SizeRecordingTree.seen if what == "score"]
    assert set(fits) == {90} and set(scores) == {10}  # what scikit-learn really trained and scored on

    (parent,) = _top_runs("repeated")
    design = _design(parent.params)
    assert design == {
        "cv/class": "sklearn.model_selection._split.RepeatedStratifiedKFold",
        "cv/n_splits": 100,
        "cv/shuffle": None,
        "cv/random_state": 0,
        "cv/fingerprint": splits_fingerprint(cv.split(X, y)),
        "cv/n_repeats": 10,
        "cv/k": 10,
        "cv/train_sizes": [90] * 100,
        "cv/test_sizes": [10] * 100,
        "cv/n_train": 90.0,
        "cv/n_test": 10.0,
        "cv/time_ordered": False,
    }
    assert parent.params["direction/score"] == "max"  # the tree's own score method keeps its name
    assert len(parent.children) == 2
    for child in parent.children:
        assert _design(child.params) == design
        assert child.fold_stats[("score", "test")]["n"] == 100
    assert search.n_splits_ == 100


def test_cross_validate_with_shuffle_split_records_the_indices_it_used(data):
    X, y = data
    llsk.autolog(experiment="shuffle")
    cv = ShuffleSplit(5, test_size=0.25)  # no seed: only the indices scikit-learn returns say which rows
    results = ms.cross_validate(LogisticRegression(), X, y, cv=cv, return_indices=True)
    (run,) = _top_runs("shuffle")
    p = run.params
    pairs = list(zip(results["indices"]["train"], results["indices"]["test"], strict=True))
    assert p["cv/fingerprint"] == splits_fingerprint(pairs)
    assert (p["cv/test_size"], p["cv/train_size"], p["cv/n_splits"]) == (0.25, None, 5)
    assert p["cv/train_sizes"] == [75] * 5 and p["cv/test_sizes"] == [25] * 5
    assert p["scoring/accuracy"] == "accuracy" and p["direction/accuracy"] == "max"
    assert set(run.fold_stats) == {("accuracy", "test")}  # the classifier's score, by its name


def test_a_search_over_explicit_folds_records_them(data):
    X, y = data
    rows = np.arange(100)
    folds = [(rows[rows % 4 != k], rows[rows % 4 == k]) for k in range(3)]  # 3 folds, a quarter out
    llsk.autolog(experiment="explicit")
    GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2]}, cv=folds).fit(X, y)
    (parent,) = _top_runs("explicit")
    for view in (parent, *parent.children):
        p = view.params
        assert (p["cv/class"], p["cv/n_splits"], p["cv/shuffle"]) == ("explicit", 3, None)
        assert p["cv/train_sizes"] == [75] * 3 and p["cv/test_sizes"] == [25] * 3
        assert p["cv/fingerprint"] == splits_fingerprint(folds)


def test_time_series_split_is_time_ordered_and_a_regressor_scores_r2():
    X = np.arange(600, dtype=float).reshape(-1, 1)
    y = 0.01 * X[:, 0] + np.sin(X[:, 0] / 20)
    llsk.autolog(experiment="time")
    scores = ms.cross_val_score(Ridge(), X, y, cv=TimeSeriesSplit(n_splits=5, test_size=100))
    (run,) = _top_runs("time")
    p = run.params
    assert p["cv/time_ordered"] is True
    assert p["cv/train_sizes"] == [100, 200, 300, 400, 500] and p["cv/test_sizes"] == [100] * 5
    assert (p["cv/test_size"], p["cv/gap"], p["cv/max_train_size"]) == (100, 0, None)
    assert p["scoring/r2"] == "r2" and p["direction/r2"] == "max"
    stored = run.folds.sort_values("fold")["value"].tolist()
    assert run.folds["key"].unique().tolist() == ["r2"] and stored == scores.tolist()


def test_group_kfold_records_the_groups_fingerprint_and_group_sized_folds(data):
    X, y = data
    groups = np.repeat(np.arange(10), [4, 6, 8, 10, 12, 12, 10, 14, 16, 8])
    llsk.autolog(experiment="groups")
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 3]}, cv=GroupKFold(3))
    search.fit(X, y, groups=groups)
    (parent,) = _top_runs("groups")
    expected = list(GroupKFold(3).split(X, y, groups))
    for view in (parent, *parent.children):
        assert view.params["cv/groups"] == ll.fingerprint(groups).digest
        assert view.params["cv/test_sizes"] == [len(test) for _, test in expected]
        assert view.params["cv/fingerprint"] == splits_fingerprint(expected)
    assert sum(parent.params["cv/test_sizes"]) == 100


def test_a_loss_scorer_is_recorded_as_greater_is_better(data):
    X, y = data
    llsk.autolog(experiment="loss")
    # scikit-learn 1.4 named it response_method; 1.3 (the oldest supported) needs_proba
    proba = {"response_method": "predict_proba"} if SKLEARN_14 else {"needs_proba": True}
    custom = make_scorer(log_loss, greater_is_better=False, **proba)
    search = GridSearchCV(
        LogisticRegression(),
        {"C": [0.01, 1.0]},
        cv=4,
        scoring={"LogLoss": "neg_log_loss", "Custom": custom},
        refit="LogLoss",
    ).fit(X, y)
    (parent,) = _top_runs("loss")
    p = parent.params
    assert (p["direction/LogLoss"], p["direction/Custom"]) == ("max", "max")
    assert p["scoring/LogLoss"] == "neg_log_loss"
    assert "greater_is_better=False" in p["scoring/Custom"] and "log_loss" in p["scoring/Custom"]
    best = next(c for c in parent.children if c.tags.get("best") == "true")
    assert best.fold_stats[("LogLoss", "test")]["mean"] == pytest.approx(search.best_score_)
    assert all(c.fold_stats[("LogLoss", "test")]["mean"] < 0 for c in parent.children)  # negated losses


def test_default_scored_search_records_accuracy(data):
    X, y = data
    llsk.autolog(experiment="default")
    GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2]}, cv=3).fit(X, y)
    (parent,) = _top_runs("default")
    assert parent.params["scoring/accuracy"] == "accuracy" and parent.params["direction/accuracy"] == "max"
    assert "scoring/score" not in parent.params
    for child in parent.children:
        assert set(child.fold_stats) == {("accuracy", "test")}
        assert "rank/accuracy" in child.summary


def test_halving_candidates_record_the_sizes_of_their_iteration(data):
    X, y = data
    llsk.autolog(experiment="halving-sizes")
    SizeRecordingTree.seen = []
    search = HalvingGridSearchCV(
        SizeRecordingTree(random_state=0),
        {"max_depth": [1, 2, 3, 4]},
        cv=4,
        factor=2,
        min_resources=40,
        random_state=0,
        refit=False,
        return_train_score=False,
    ).fit(X, y)
    (parent,) = _top_runs("halving-sizes")
    assert "cv/train_sizes" not in parent.params  # iterations differ: the candidates say
    assert parent.params["cv/fingerprint"] is None
    results = search.cv_results_
    seen = iter(SizeRecordingTree.seen)
    measured: dict[int, tuple[set[int], set[int]]] = {}
    for itr in results["iter"]:  # scikit-learn fits and scores candidate by candidate, fold by fold
        for _ in range(4):
            fit, score = next(seen), next(seen)
            train, test = measured.setdefault(int(itr), (set(), set()))
            train.add(fit[1])
            test.add(score[1])
    for child in parent.children:
        train, test = measured[child.params["halving/iter"]]
        assert set(child.params["cv/train_sizes"]) == train and len(child.params["cv/train_sizes"]) == 4
        assert set(child.params["cv/test_sizes"]) == test
    assert len(measured) == 2 and measured[0] != measured[1]
