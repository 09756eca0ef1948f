"""xgb.cv records its cross-validation design: the folds xgboost made (nfold, stratified, ranking
groups) or was given (index pairs, a splitter), measured, and each metric's direction."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("sklearn")

import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.model_selection import KFold

import labledger as ll
from labledger.integrations.xgboost import LedgerCallback
from labledger.tracking.cv_design import splits_fingerprint

PARAMS = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1, "eval_metric": ["logloss", "auc"]}


@pytest.fixture(scope="module")
def dtrain() -> xgb.DMatrix:
    X, y = make_classification(n_samples=100, n_features=5, weights=[0.7], random_state=0)
    X[:, 0] = np.arange(100)  # feature 0 is the row number: the folds' data say which rows they hold
    return xgb.DMatrix(X, y)


def _cv(dtrain: xgb.DMatrix, **kwargs) -> ll.RunView:
    with ll.start_run("xgb-design") as run:
        xgb.cv(PARAMS, dtrain, 3, callbacks=[LedgerCallback(run)], **kwargs)
    return ll.get_run(run.id)


def _xgboost_folds(dtrain: xgb.DMatrix, **kwargs) -> list[tuple[np.ndarray, np.ndarray]]:
    """The rows of every fold xgboost itself builds for these arguments (read from its slices)."""
    packs = xgb.training.mknfold(dall=dtrain, param={}, **kwargs)

    def rows(d: xgb.DMatrix) -> np.ndarray:
        return d.get_data().toarray()[:, 0].astype(np.int64)

    return [(rows(p.dtrain), rows(p.dtest)) for p in packs]


@pytest.mark.parametrize("stratified", [False, True])
def test_nfold_records_the_folds_xgboost_made(dtrain, stratified):
    view = _cv(dtrain, nfold=3, seed=7, stratified=stratified)
    folds = _xgboost_folds(dtrain, nfold=3, seed=7, stratified=stratified)
    p = view.params
    assert (p["cv/class"], p["cv/n_splits"], p["cv/random_state"]) == ("xgboost.nfold", 3, 7)
    assert p["cv/stratified"] is stratified and p["cv/shuffle"] is True
    assert p["cv/train_sizes"] == [len(train) for train, _ in folds]
    assert p["cv/test_sizes"] == [len(test) for _, test in folds]
    assert p["cv/n_test"] == pytest.approx(100 / 3)
    assert p["cv/fingerprint"] == splits_fingerprint(folds)  # the very rows, in xgboost's order
    assert p["cv/time_ordered"] is False
    assert view.fold_stats[("logloss", "test")]["n"] == 3


def test_unshuffled_nfold_is_a_contiguous_split(dtrain):
    p = _cv(dtrain, nfold=4, shuffle=False).params
    assert p["cv/shuffle"] is False
    assert p["cv/test_sizes"] == [25] * 4 and p["cv/train_sizes"] == [75] * 4
    folds = _xgboost_folds(dtrain, nfold=4, seed=0, shuffle=False)
    assert p["cv/fingerprint"] == splits_fingerprint(folds)


def test_explicit_folds_and_a_splitter(dtrain):
    rows = np.arange(100)
    explicit = [(rows[rows < 60], rows[(rows >= 60) & (rows < 80)]), (rows[rows < 80], rows[rows >= 80])]
    p = _cv(dtrain, folds=explicit).params
    assert (p["cv/class"], p["cv/n_splits"]) == ("explicit", 2)
    assert (p["cv/train_sizes"], p["cv/test_sizes"]) == ([60, 80], [20, 20])
    assert p["cv/time_ordered"] is True and p["cv/fingerprint"] == splits_fingerprint(explicit)

    splitter = KFold(4, shuffle=True, random_state=1)
    p = _cv(dtrain, folds=splitter).params
    labels = dtrain.get_label()
    assert p["cv/class"] == "sklearn.model_selection._split.KFold"
    assert (p["cv/n_splits"], p["cv/shuffle"], p["cv/random_state"]) == (4, True, 1)
    assert p["cv/test_sizes"] == [25] * 4
    assert p["cv/fingerprint"] == splits_fingerprint(splitter.split(labels, labels))


def test_ranking_data_is_split_by_query_group():
    rng = np.random.RandomState(0)
    sizes = [5, 9, 3, 12, 7, 4, 10]
    X, y = rng.normal(size=(sum(sizes), 3)), rng.randint(0, 3, size=sum(sizes))
    X[:, 0] = np.arange(sum(sizes))
    dtrain = xgb.DMatrix(X, y)
    dtrain.set_group(sizes)
    with ll.start_run("xgb-rank") as run:
        params = {"objective": "rank:pairwise", "nthread": 1, "eval_metric": "ndcg@3"}
        xgb.cv(params, dtrain, 2, nfold=3, seed=2, callbacks=[LedgerCallback(run)])
    p = ll.get_run(run.id).params
    folds = _xgboost_folds(dtrain, nfold=3, seed=2)
    assert p["cv/test_sizes"] == [len(test) for _, test in folds]
    assert p["cv/fingerprint"] == splits_fingerprint(folds)
    assert p["direction/ndcg@3"] == "max"


def error_rate(predt: np.ndarray, dmatrix: xgb.DMatrix) -> tuple[str, float]:
    return "error_rate", float(np.mean((predt > 0.5) != dmatrix.get_label()))


def hit_rate(predt: np.ndarray, dmatrix: xgb.DMatrix) -> tuple[str, float]:
    return "hit_rate", float(np.mean((predt > 0.5) == dmatrix.get_label()))


def test_each_metric_records_its_direction(dtrain):
    p = _cv(dtrain, nfold=3, custom_metric=error_rate).params
    assert (p["direction/logloss"], p["direction/auc"]) == ("min", "max")
    assert "direction/error_rate" not in p  # a custom metric without maximize=: unknown
    p = _cv(dtrain, nfold=3, custom_metric=hit_rate, maximize=True).params
    assert (p["direction/hit_rate"], p["direction/logloss"]) == ("max", "min")


def test_sizes_are_measured_on_the_folds_xgboost_trained_on(dtrain):
    def first_40_rows(train: xgb.DMatrix, test: xgb.DMatrix, param: dict) -> tuple:
        return train.slice(np.arange(40)), test, param  # preprocessing may change a fold's data

    p = _cv(dtrain, nfold=3, seed=7, fpreproc=first_40_rows).params
    assert p["cv/train_sizes"] == [40, 40, 40] and p["cv/n_train"] == 40.0
    assert p["cv/test_sizes"] == [len(test) for _, test in _xgboost_folds(dtrain, nfold=3, seed=7)]
