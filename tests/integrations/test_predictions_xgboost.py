"""XGBoost LedgerCallback(log_predictions=True): the final model's predictions on every eval set."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("sklearn")
pytest.importorskip("pyarrow")

import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

import labledger as ll
from labledger.integrations.xgboost import LedgerCallback
from labledger.predictions.read import NoPredictionsError


def _only_run(experiment: str) -> ll.RunView:
    (run_id,) = ll.runs(experiment)["id"]
    return ll.get_run(run_id)


def _prediction_tables(view: ll.RunView) -> list[str]:
    return sorted(a.metadata["split"] for a in view.artifacts if a.kind == "predictions")


def test_binary_train_stores_each_eval_set_with_the_best_iteration() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    dtrain, dvalid = xgb.DMatrix(X[:400], y[:400]), xgb.DMatrix(X[400:], y[400:])
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.5, "nthread": 1}
    booster = xgb.train(
        params,
        dtrain,
        200,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=3,
        verbose_eval=False,
        callbacks=[LedgerCallback(experiment="xgb-preds", log_predictions=True)],
    )
    assert booster.best_iteration + 1 < booster.num_boosted_rounds()  # early stopping kept more trees
    view = _only_run("xgb-preds")
    assert _prediction_tables(view) == ["train", "valid"]
    valid = ll.get_predictions(view, split="valid")
    expected = booster.predict(dvalid, iteration_range=(0, booster.best_iteration + 1))
    np.testing.assert_array_equal(valid.proba[:, 1], expected)
    np.testing.assert_array_equal(valid.y_pred, (expected > 0.5).astype(int))
    np.testing.assert_array_equal(valid.y_true, y[400:])
    assert valid.classes == [0, 1] and valid.meta["task"] == "classification"
    assert ll.get_predictions(view, split="train").rows == 400


def test_multiclass_softprob_and_softmax() -> None:
    X, y = load_iris(return_X_y=True)
    dtrain, dvalid = xgb.DMatrix(X[::2], y[::2]), xgb.DMatrix(X[1::2], y[1::2])
    for objective in ("multi:softprob", "multi:softmax"):
        params = {"objective": objective, "num_class": 3, "max_depth": 2, "nthread": 1}
        booster = xgb.train(
            params,
            dtrain,
            5,
            evals=[(dvalid, "valid")],
            verbose_eval=False,
            callbacks=[LedgerCallback(experiment=f"xgb-{objective[6:]}", log_predictions=True)],
        )
        stored = ll.get_predictions(_only_run(f"xgb-{objective[6:]}"), split="valid")
        assert stored.classes == [0, 1, 2]
        if objective == "multi:softprob":
            np.testing.assert_array_equal(stored.proba, booster.predict(dvalid))
            np.testing.assert_array_equal(stored.y_pred, booster.predict(dvalid).argmax(axis=1))
        else:
            np.testing.assert_array_equal(stored.y_pred, booster.predict(dvalid).astype(int))
            np.testing.assert_allclose(stored.proba.sum(axis=1), 1.0)
            np.testing.assert_array_equal(stored.proba.argmax(axis=1), stored.y_pred)


def test_sklearn_wrapper_eval_set_regression() -> None:
    X, y = load_diabetes(return_X_y=True)
    model = xgb.XGBRegressor(
        n_estimators=10,
        max_depth=2,
        n_jobs=1,
        callbacks=[LedgerCallback(experiment="xgb-reg", log_predictions=True)],
    )
    model.fit(X[:300], y[:300], eval_set=[(X[300:], y[300:])], verbose=False)
    stored = ll.get_predictions(_only_run("xgb-reg"), split="validation_0")
    assert stored.meta["task"] == "regression" and stored.proba is None
    np.testing.assert_array_equal(stored.y_pred, model.predict(X[300:]))
    np.testing.assert_array_equal(stored.y_true, y[300:].astype(np.float32))


def test_nothing_is_stored_by_default() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    dtrain = xgb.DMatrix(X, y)
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    first = xgb.train(
        params,
        dtrain,
        5,
        evals=[(dtrain, "train")],
        verbose_eval=False,
        callbacks=[LedgerCallback(experiment="xgb-off")],
    )
    view = _only_run("xgb-off")
    assert _prediction_tables(view) == []
    with pytest.raises(NoPredictionsError):
        ll.get_predictions(view, split="train")
    second = xgb.train(
        params,
        dtrain,
        5,
        evals=[(dtrain, "train")],
        verbose_eval=False,
        callbacks=[LedgerCallback(experiment="xgb-on", log_predictions=True)],
    )
    assert first.save_raw() == second.save_raw()  # predicting changed nothing in the model
