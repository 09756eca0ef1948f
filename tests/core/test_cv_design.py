"""Run.log_folds(..., cv=...): the cross-validation design is recorded with the folds, measured
from the splits themselves, so a corrected paired test can use the real test/train sizes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    RepeatedStratifiedKFold,
    ShuffleSplit,
    TimeSeriesSplit,
    cross_val_score,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import labledger as ll
from labledger.tracking.cv_design import (
    FoldCountError,
    FoldDesignError,
    design_params,
    splits_fingerprint,
    time_ordered,
)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 4))
    y = np.repeat([0, 1], 50)
    X[y == 1] += 0.8
    return X, y


def _stored(run: ll.Run) -> ll.RunView:
    run.end()
    return ll.get_run(run.id)


def test_kfold_records_sizes_and_the_fingerprint_of_the_folds_used(run, data):
    X, y = data
    cv = KFold(5)
    scores = cross_val_score(DecisionTreeClassifier(max_depth=2, random_state=0), X, y, cv=cv)
    stats = run.log_folds("accuracy", scores, cv=cv, X=X, y=y)
    assert stats["mean"] == pytest.approx(scores.mean())
    view = _stored(run)
    p = view.params
    assert p["cv/class"] == "sklearn.model_selection._split.KFold"
    assert (p["cv/n_splits"], p["cv/shuffle"], p["cv/random_state"]) == (5, False, None)
    assert p["cv/fingerprint"] == splits_fingerprint(cv.split(X, y))
    assert p["cv/train_sizes"] == [80] * 5 and p["cv/test_sizes"] == [20] * 5
    assert (p["cv/n_train"], p["cv/n_test"]) == (80.0, 20.0)
    assert p["cv/time_ordered"] is False
    assert "cv/n_repeats" not in p and "cv/groups" not in p
    assert view.fold_stats[("accuracy", "test")]["n"] == 5


def test_repeated_stratified_kfold_is_100_folds_of_90_10_not_99_1(run, data):
    X, y = data
    cv = RepeatedStratifiedKFold(n_splits=10, n_repeats=10, random_state=0)
    scores = cross_val_score(DecisionTreeClassifier(max_depth=1, random_state=0), X, y, cv=cv)
    run.log_folds("accuracy", scores, cv=cv, X=X, y=y)
    p = _stored(run).params
    assert p["cv/class"] == "sklearn.model_selection._split.RepeatedStratifiedKFold"
    assert (p["cv/n_splits"], p["cv/n_repeats"], p["cv/k"]) == (100, 10, 10)
    assert p["cv/train_sizes"] == [90] * 100 and p["cv/test_sizes"] == [10] * 100
    assert (p["cv/n_train"], p["cv/n_test"]) == (90.0, 10.0)
    assert p["cv/fingerprint"] == splits_fingerprint(cv.split(X, y))


def test_shuffle_split_records_its_test_size(run, data):
    X, _ = data
    cv = ShuffleSplit(10, test_size=0.25, random_state=3)
    run.log_folds("accuracy", np.linspace(0.7, 0.8, 10), cv=cv, X=X)
    p = _stored(run).params
    assert (p["cv/test_size"], p["cv/train_size"], p["cv/n_splits"]) == (0.25, None, 10)
    assert p["cv/train_sizes"] == [75] * 10 and p["cv/test_sizes"] == [25] * 10
    assert p["cv/random_state"] == 3 and p["cv/fingerprint"] is not None


def test_unseeded_shuffling_gives_sizes_but_no_fingerprint_and_leaves_generators_alone(run, data):
    X, _ = data
    state = np.random.RandomState(5)
    before_state, before_global = state.get_state()[1].copy(), np.random.get_state()[1].copy()
    run.log_folds("accuracy", [0.8] * 10, cv=ShuffleSplit(10, test_size=0.2), X=X)
    with ll.start_run("tests") as seeded_by_object:
        seeded_by_object.log_folds("f1", [0.7] * 4, cv=KFold(4, shuffle=True, random_state=state), X=X)
    assert np.array_equal(state.get_state()[1], before_state)  # the user's generator did not move
    assert np.array_equal(np.random.get_state()[1], before_global)
    p = _stored(run).params
    assert p["cv/fingerprint"] is None  # another split() call gives other folds
    assert p["cv/test_sizes"] == [20] * 10  # but always of the same size
    p = ll.get_run(seeded_by_object.id).params
    assert p["cv/fingerprint"] is None and p["cv/test_sizes"] == [25] * 4
    groups = np.arange(100) % 9  # group sizes differ: the fold sizes depend on the draw
    with ll.start_run("tests") as other:
        other.log_folds("accuracy", [0.8] * 3, cv=GroupShuffleSplit(3), X=X, groups=groups)
    p = ll.get_run(other.id).params
    assert p["cv/n_splits"] == 3 and p["cv/fingerprint"] is None
    assert "cv/train_sizes" not in p and "cv/test_sizes" not in p and "cv/n_test" not in p


def test_time_series_split_is_time_ordered_with_measured_sizes(run):
    X = np.arange(4500, dtype=float).reshape(-1, 1)
    y = np.sin(X[:, 0] / 300)
    cv = TimeSeriesSplit(n_splits=8, test_size=500)
    scores = cross_val_score(DecisionTreeRegressor(max_depth=3), X, y, cv=cv)
    run.log_folds("r2", scores, cv=cv, X=X, y=y)
    p = _stored(run).params
    assert p["cv/train_sizes"] == [500 * k for k in range(1, 9)]
    assert p["cv/train_sizes"][-1] == 4000 and p["cv/test_sizes"] == [500] * 8
    assert (p["cv/test_size"], p["cv/gap"], p["cv/max_train_size"]) == (500, 0, None)
    assert p["cv/time_ordered"] is True
    assert p["cv/n_train"] == 2250.0


def test_explicit_index_pairs_and_boolean_masks(run):
    splits = [([0, 1, 2, 3], [4, 5]), ([0, 1, 2, 3, 4, 5], [6, 7, 8])]
    run.log_folds("mae", [0.3, 0.4], cv=splits)
    rows = np.arange(9)
    masks = [(rows < 4, (rows >= 4) & (rows < 6)), (rows < 6, rows >= 6)]  # the same folds as masks
    run.log_folds("mae", [0.5, 0.6], split="train", cv=masks)
    p = _stored(run).params
    assert p["cv/class"] == "explicit" and p["cv/n_splits"] == 2
    assert (p["cv/train_sizes"], p["cv/test_sizes"]) == ([4, 6], [2, 3])
    assert p["cv/time_ordered"] is True
    assert p["cv/fingerprint"] == splits_fingerprint(splits)
    assert p["cv/shuffle"] is None and p["cv/random_state"] is None


def test_groups_are_fingerprinted(run, data):
    X, y = data
    groups = np.arange(100) // 10
    run.log_folds("accuracy", [0.9, 0.8, 0.85, 0.7, 0.75], cv=GroupKFold(5), X=X, y=y, groups=groups)
    p = _stored(run).params
    assert p["cv/groups"] == ll.fingerprint(groups).digest
    assert p["cv/train_sizes"] == [80] * 5 and p["cv/test_sizes"] == [20] * 5


def test_a_count_mismatch_names_the_key_and_both_counts_and_logs_nothing(run, data):
    X, _ = data
    with pytest.raises(FoldCountError, match=r"'accuracy'.*4 values.*5 folds") as caught:
        run.log_folds("accuracy", [0.9, 0.8, 0.85, 0.7], cv=KFold(5), X=X)
    assert (caught.value.key, caught.value.n_values, caught.value.n_folds) == ("accuracy", 4, 5)
    assert isinstance(caught.value, ll.errors.LabledgerError) and isinstance(caught.value, ValueError)
    with pytest.raises(FoldDesignError, match=r"'f1'.*pass X"):
        run.log_folds("f1", [0.9] * 5, cv=KFold(5))
    with pytest.raises(FoldDesignError, match=r"'f1'.*neither a splitter"):
        run.log_folds("f1", [0.9] * 5, cv=5)
    with pytest.raises(FoldDesignError, match=r"'f1'.*\(train_indices, test_indices\) pairs"):
        run.log_folds("f1", [0.9], cv=[[0, 1, 2]])
    view = _stored(run)
    assert not any(k.startswith("cv/") for k in view.params)
    assert view.fold_stats == {}


def test_relogging_the_same_design_is_a_no_op_and_another_design_conflicts(run, data):
    X, y = data
    cv = KFold(5)
    run.log_folds("accuracy", [0.9] * 5, cv=cv, X=X, y=y)
    run.log_folds("accuracy", [0.9] * 5, cv=cv, X=X, y=y)
    run.log_folds("accuracy", [0.95] * 5, split="train", cv=cv, X=X, y=y)
    with pytest.raises(ll.errors.ParamConflictError, match="cv/"):
        run.log_folds("f1", [0.9] * 4, cv=KFold(4), X=X)
    assert set(_stored(run).fold_stats) == {("accuracy", "test"), ("accuracy", "train")}


def test_design_params_and_time_ordered_work_on_plain_lists():
    assert time_ordered([([0, 1], [2]), ([0, 1, 2], [3])])
    assert not time_ordered([([1, 2], [0])])
    p = design_params(splits=[([0, 1, 2], [3]), ([0, 1, 3], [2])])
    assert p["cv/class"] == "explicit" and p["cv/n_test"] == 1.0 and p["cv/time_ordered"] is False
    assert design_params(KFold(3))["cv/n_splits"] == 3  # without data: the count, no sizes
    assert "cv/train_sizes" not in design_params(KFold(3))
