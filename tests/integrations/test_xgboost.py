"""XGBoost LedgerCallback: curves, best iteration, checkpoints, model, importances as XGBoost reports them."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("sklearn")

import xgboost as xgb
from sklearn.datasets import load_breast_cancer, make_regression
from sklearn.model_selection import GridSearchCV, KFold

import labledger as ll
import labledger.integrations.sklearn as llsk
from labledger.integrations.xgboost import LedgerCallback

PARAMS = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "max_depth": 3, "nthread": 1}


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    llsk.autolog(disable=True)


def _load(artifact: ll.ArtifactView) -> xgb.Booster:
    booster = xgb.Booster()
    with artifact.open() as f:
        booster.load_model(bytearray(f.read()))
    return booster


def _only_run(experiment: str) -> ll.RunView:
    (run_id,) = ll.runs(experiment)["id"]
    return ll.get_run(run_id)


def _metric(view: ll.RunView, key: str) -> list[float]:
    return view.metric(key).sort_values("step")["value"].tolist()


def test_train_records_curves_best_iteration_checkpoints_model_and_importances(cancer):
    X, y = cancer
    dtrain, dvalid = xgb.DMatrix(X[:400], y[:400]), xgb.DMatrix(X[400:], y[400:])
    history: dict = {}
    with ll.start_run("xgb") as run:
        booster = xgb.train(
            PARAMS,
            dtrain,
            60,
            evals=[(dtrain, "train"), (dvalid, "valid")],
            early_stopping_rounds=5,
            evals_result=history,
            verbose_eval=False,
            callbacks=[LedgerCallback(run, checkpoint_every=5)],
        )
    view = ll.get_run(run.id)
    for data in ("train", "valid"):
        for metric in ("logloss", "auc"):
            assert _metric(view, f"{data}/{metric}") == history[data][metric]
    assert view.metric("valid/logloss")["step"].tolist() == list(range(len(history["valid"]["logloss"])))
    assert view.summary["xgb/best_iteration"]["last"] == booster.best_iteration
    assert view.summary["xgb/best_score"]["last"] == pytest.approx(booster.best_score)

    arts = {a.name: a for a in view.artifacts}
    checkpoints = sorted((a for a in view.artifacts if a.kind == "checkpoint"), key=lambda a: a.name)
    rounds = booster.num_boosted_rounds()
    assert [a.metadata["iteration"] for a in checkpoints] == list(range(4, rounds, 5))
    restored = _load(checkpoints[0])
    assert restored.num_boosted_rounds() == 5
    np.testing.assert_allclose(
        restored.predict(dvalid), booster.predict(dvalid, iteration_range=(0, 5)), rtol=1e-6
    )
    model = arts["model.ubj"]
    assert model.kind == "model" and model.metadata["class"] == "xgboost.core.Booster"
    final = _load(model)
    np.testing.assert_array_equal(final.predict(dvalid), booster.predict(dvalid))

    with arts["feature_importance.csv"].open("r") as f:
        rows = {r["feature"]: r for r in csv.DictReader(f)}
    for kind in ("gain", "weight", "cover"):
        expected = booster.get_score(importance_type=kind)
        assert set(rows) == set(expected)
        for feature, value in expected.items():
            assert float(rows[feature][kind]) == pytest.approx(value, rel=1e-12)
    assert arts["feature_importance.csv"].kind == "feature_importance"
    with arts["feature_importance.png"].open() as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    datasets = {d["name"]: d for d in view.datasets}
    assert datasets["dtrain"]["role"] == "train" and datasets["dtrain"]["summary"]["rows"] == 400
    assert datasets["eval/valid"]["summary"]["rows"] == len(X) - 400
    assert datasets["dtrain"]["fingerprint"] != datasets["eval/valid"]["fingerprint"]
    assert ll.get_run(run.id).status == "finished"


def test_params_are_recorded_as_given_and_the_full_configuration_as_json(cancer):
    X, y = cancer
    dtrain, dvalid = xgb.DMatrix(X[:400], y[:400]), xgb.DMatrix(X[400:], y[400:])
    params = {**PARAMS, "eta": 0.3, "subsample": np.float32(0.5)}
    cb = LedgerCallback(experiment="xgb-params")
    booster = xgb.train(
        params,
        dtrain,
        20,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=4,
        verbose_eval=False,
        callbacks=[cb],
    )
    view = _only_run("xgb-params")
    assert {k: v for k, v in view.params.items() if k.startswith("xgb/")} == {
        "xgb/objective": "binary:logistic",
        "xgb/eval_metric": ["logloss", "auc"],
        "xgb/max_depth": 3,
        "xgb/nthread": 1,
        "xgb/eta": 0.3,
        "xgb/subsample": 0.5,
        "xgb/num_boost_round": 20,
        "xgb/early_stopping_rounds": 4,
        "xgb/maximize": None,
    }
    assert isinstance(view.params["xgb/max_depth"], int)
    deep = ll.runs("xgb-params", where="params.xgb/max_depth >= 3 and params.xgb/eta < 0.5")
    assert list(deep["id"]) == [view.id]
    (config,) = [a for a in view.artifacts if a.name == "xgboost_config.json"]
    with config.open("r") as f:
        assert json.load(f) == json.loads(booster.save_config())  # every default included
    assert cb.run is not None and cb.run.id == view.id

    pairs = [("objective", "binary:logistic"), ("eval_metric", "auc"), ("eval_metric", "logloss")]
    cb = LedgerCallback(experiment="xgb-pairs")
    xgb.train(pairs, dtrain, 2, evals=[(dvalid, "valid")], verbose_eval=False, callbacks=[cb])
    assert _only_run("xgb-pairs").params["xgb/eval_metric"] == ["auc", "logloss"]


def test_the_wrapper_records_its_params_and_its_training_data(cancer):
    X, y = cancer
    cb = LedgerCallback(experiment="xgb-wrapper")
    clf = xgb.XGBClassifier(
        n_estimators=30,
        max_depth=2,
        early_stopping_rounds=3,
        eval_metric=["logloss"],
        n_jobs=1,
        callbacks=[xgb.callback.EarlyStopping(rounds=5), cb],
    )
    clf.fit(X[:400], y[:400], eval_set=[(X[400:], y[400:])], verbose=False)
    view = _only_run("xgb-wrapper")
    params = view.params
    assert params["xgb/n_estimators"] == 30 and params["xgb/max_depth"] == 2
    assert params["xgb/early_stopping_rounds"] == 3
    assert params["xgb/learning_rate"] is None  # not given: xgboost's default applies
    assert params["xgb/callbacks"] == [
        "xgboost.callback.EarlyStopping",
        "labledger.integrations.xgboost.LedgerCallback",
    ]
    assert params["fit/eval_set"] == 1 and params["fit/sample_weight"] is False
    assert not [k for k, v in params.items() if isinstance(v, str) and " at 0x" in v]
    datasets = {d["name"]: d for d in view.datasets}
    assert datasets["X"]["fingerprint"] == ll.fingerprint(X[:400]).digest
    assert datasets["y"]["fingerprint"] == ll.fingerprint(y[:400]).digest
    assert datasets["validation_0/X"]["fingerprint"] == ll.fingerprint(X[400:]).digest
    assert datasets["X"]["role"] == "train" and datasets["validation_0/X"]["role"] == "evaluation"
    assert view.completeness.parts["hyperparameters"][0]
    assert view.completeness.parts["training configuration"][0]


def test_params_declare_their_roles_for_completeness():
    from labledger.lineage import completeness

    roles = completeness.param_roles()
    assert completeness.param_role("xgb/max_depth", roles) == "hyperparameter"
    assert completeness.param_role("xgb/learning_rate", roles) == "hyperparameter"
    for key in ("xgb/n_estimators", "xgb/num_boost_round"):  # as scikit-learn's estimator/n_estimators
        assert completeness.param_role(key, roles) == "hyperparameter", key
    for key in ("xgb/early_stopping_rounds", "xgb/eval_metric", "xgb/nthread", "xgb/seed", "xgb/device"):
        assert completeness.param_role(key, roles) == "configuration", key


def test_dmatrix_fingerprint_is_stable_and_content_sensitive(cancer):
    X, y = cancer
    with ll.start_run("fp") as run:
        a = run.log_dataset("a", xgb.DMatrix(X, y))
        b = run.log_dataset("b", xgb.DMatrix(X.copy(), y.copy()))
        y2 = y.copy()
        y2[0] = 1 - y2[0]
        c = run.log_dataset("c", xgb.DMatrix(X, y2))
    assert a == b != c


def error_rate(predt: np.ndarray, dmatrix: xgb.DMatrix) -> tuple[str, float]:
    return "error_rate", float(np.mean((predt > 0.5) != dmatrix.get_label()))


def test_cv_records_mean_std_and_each_fold_per_iteration_and_folds_at_the_best_iteration(cancer):
    X, y = cancer
    dtrain = xgb.DMatrix(X, y)
    with ll.start_run("xgb-cv") as run:
        frame = xgb.cv(
            {"objective": "binary:logistic", "max_depth": 2, "eta": 0.6, "nthread": 1},
            dtrain,
            200,
            nfold=3,
            seed=0,
            custom_metric=error_rate,
            early_stopping_rounds=3,
            callbacks=[LedgerCallback(run)],
        )
    view = ll.get_run(run.id)
    best = len(frame) - 1  # xgb.cv keeps the rows up to the best iteration
    evaluated = best + 3 + 1
    for data in ("train", "test"):
        for metric in ("logloss", "error_rate"):
            mean = _metric(view, f"{data}/{metric}")
            assert len(mean) == evaluated  # every evaluated iteration, also those after the best
            np.testing.assert_allclose(mean[: best + 1], frame[f"{data}-{metric}-mean"], rtol=1e-12)
            std = _metric(view, f"{data}/{metric}/std")
            np.testing.assert_allclose(std[: best + 1], frame[f"{data}-{metric}-std"], rtol=1e-9, atol=1e-15)
            folds = np.array([_metric(view, f"fold{k}/{data}/{metric}") for k in range(3)])
            np.testing.assert_allclose(folds.mean(axis=0), mean, rtol=1e-12)
            stats = view.fold_stats[(metric, data)]  # the folds at the best iteration, custom metric too
            assert stats["n"] == 3
            folds_frame = view.folds
            chosen = folds_frame[(folds_frame.key == metric) & (folds_frame.split == data)]
            stored = chosen.sort_values("fold")["value"]
            assert stored.tolist() == folds[:, best].tolist()
            assert stats["mean"] == pytest.approx(frame[f"{data}-{metric}-mean"].iloc[-1], rel=1e-12)
            assert stats["std"] == pytest.approx(frame[f"{data}-{metric}-std"].iloc[-1], rel=1e-9, abs=1e-15)
    assert view.summary["xgb/best_iteration"]["last"] == best
    assert view.params["cv/n_splits"] == 3 and view.params["cv/random_state"] == 0
    assert view.params["xgb/custom_metric"].endswith("error_rate")


def test_sklearn_wrapper_starts_and_ends_its_own_run():
    X, y = make_regression(n_samples=300, n_features=8, noise=5.0, random_state=0)
    reg = xgb.XGBRegressor(
        n_estimators=12, max_depth=3, n_jobs=1, callbacks=[LedgerCallback(experiment="reg")]
    )
    reg.fit(X, y, eval_set=[(X[:100], y[:100])], verbose=False)
    df = ll.runs("reg", include_children=True)
    assert len(df) == 1
    view = ll.get_run(df.iloc[0]["id"])
    assert view.status == "finished"
    assert _metric(view, "validation_0/rmse") == reg.evals_result()["validation_0"]["rmse"]
    assert {a.kind for a in view.artifacts} >= {"model", "feature_importance", "plot"}
    assert view.params["xgb/n_estimators"] == 12


def test_a_cloned_estimator_logs_to_the_same_run():
    from sklearn.base import clone

    X, y = make_regression(n_samples=120, n_features=4, random_state=3)
    with ll.start_run("cloned") as run:
        reg = clone(xgb.XGBRegressor(n_estimators=4, n_jobs=1, callbacks=[LedgerCallback(run)]))
        reg.fit(X, y, eval_set=[(X, y)], verbose=False)
    assert len(ll.runs("cloned", include_children=True)) == 1
    assert _metric(ll.get_run(run.id), "validation_0/rmse") == reg.evals_result()["validation_0"]["rmse"]


def test_candidates_of_a_tracked_search_get_their_folds_curves():
    X, y = make_regression(n_samples=240, n_features=6, noise=10.0, random_state=1)
    cv = KFold(2, shuffle=True, random_state=0)
    estimator = xgb.XGBRegressor(n_estimators=8, n_jobs=1, callbacks=[LedgerCallback()])
    llsk.autolog(experiment="xgb-search")
    search = GridSearchCV(estimator, {"max_depth": [2, 3], "learning_rate": [0.3]}, cv=cv)
    search.fit(X, y, eval_set=[(X, y)], verbose=False)

    parent = ll.get_run(_parents(ll.runs("xgb-search", include_children=True)).iloc[0]["id"])
    assert len(parent.children) == 2
    # the refit is the search run's own training
    assert (
        _metric(parent, "validation_0/rmse") == search.best_estimator_.evals_result()["validation_0"]["rmse"]
    )
    for child in parent.children:
        params = {"max_depth": child.params["max_depth"], "learning_rate": child.params["learning_rate"]}
        folds = []
        for k, (train, _) in enumerate(cv.split(X, y)):
            ref = xgb.XGBRegressor(n_estimators=8, n_jobs=1, **params)
            ref.fit(X[train], y[train], eval_set=[(X, y)], verbose=False)
            curve = ref.evals_result()["validation_0"]["rmse"]
            assert _metric(child, f"fold{k}/validation_0/rmse") == pytest.approx(curve, rel=1e-12)
            folds.append(curve)
        np.testing.assert_allclose(_metric(child, "validation_0/rmse"), np.mean(folds, axis=0), rtol=1e-12)
        np.testing.assert_allclose(_metric(child, "validation_0/rmse/std"), np.std(folds, axis=0), atol=1e-9)


def test_parallel_workers_write_nothing():
    X, y = make_regression(n_samples=200, n_features=5, random_state=2)
    llsk.autolog(experiment="xgb-parallel")
    search = GridSearchCV(
        xgb.XGBRegressor(n_estimators=5, n_jobs=1, callbacks=[LedgerCallback()]),
        {"max_depth": [2, 3]},
        cv=2,
        n_jobs=2,
    )
    search.fit(X, y)
    df = ll.runs("xgb-parallel", include_children=True)
    assert len(df) == 3  # the search and its two candidates; no run from a worker
    assert set(df["status"]) == {"finished"}


def test_invalid_checkpoint_interval_is_refused():
    with pytest.raises(ll.errors.InvalidValueError, match="checkpoint_every"):
        LedgerCallback(checkpoint_every=0)


def _parents(frame):
    """The rows without a parent run."""
    return frame[frame.parent_id.isna()]
