"""The contracts of XGBoost's own ``tests/python/test_callback.py`` (v3.2.0), with and without LedgerCallback.

Every training runs three times — untracked, with a ``LedgerCallback`` first in
the callback list and with one last — and must give the same ``evals_result``,
``best_iteration``, predictions, saved model bytes, printed output and files;
each tracked training must be recorded as what it returned.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("sklearn")

import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification

import labledger as ll
from labledger.integrations.xgboost import LedgerCallback

#: XGBoost 2.1 keeps the callbacks' order, names TrainingCheckPoint's period ``interval`` and
#: refuses ``save_best`` in ``xgb.cv`` with a message naming it
XGB_21 = tuple(int(p) for p in xgb.__version__.split(".")[:2]) >= (2, 1)
PERIOD = "interval" if XGB_21 else "iterations"

pytestmark = pytest.mark.timeout(120)

VARIANTS = ("plain", "ledger-first", "ledger-last")
_calls = itertools.count()
Place = Callable[[list[xgb.callback.TrainingCallback]], list[xgb.callback.TrainingCallback]]


@pytest.fixture(scope="module")
def cancer() -> dict[str, Any]:
    X, y = load_breast_cancer(return_X_y=True)
    split = int(X.shape[0] * 0.8)
    return {
        "X": X,
        "y": y,
        "train": xgb.DMatrix(X[:split], y[:split]),
        "valid": xgb.DMatrix(X[split:], y[split:]),
    }


def error_rate(predt: np.ndarray, dtrain: xgb.DMatrix) -> tuple[str, float]:
    """A custom metric on transformed output (no custom objective)."""
    return "CustomErr", float(np.mean((predt > 0.5) != dtrain.get_label()))


def error_rate_skl(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return float(np.mean((y_score > 0.5) != y_true))


def best_iteration(model: Any) -> Any:
    try:
        return model.best_iteration
    except AttributeError as error:
        return f"AttributeError: {error}"


def booster_outcome(booster: xgb.Booster, evals_result: dict, dtest: xgb.DMatrix) -> dict[str, Any]:
    return {
        "evals_result": evals_result,
        "best_iteration": best_iteration(booster),
        "rounds": booster.num_boosted_rounds(),
        "predictions": booster.predict(dtest).tobytes(),
        "model": bytes(booster.save_raw("ubj")),
    }


def wrapper_outcome(model: xgb.XGBModel, X: np.ndarray) -> dict[str, Any]:
    return {
        "evals_result": model.evals_result(),
        "best_iteration": best_iteration(model),
        "rounds": model.get_booster().num_boosted_rounds(),
        "predictions": model.predict_proba(X).tobytes(),
        "model": bytes(model.get_booster().save_raw("ubj")),
    }


def in_all_variants(train: Callable[[Place], dict[str, Any]], status: str = "finished") -> dict[str, Any]:
    """Run ``train`` untracked and tracked (LedgerCallback first, then last); all must agree.

    Each tracked training must be recorded: its status, its curves equal to its
    ``evals_result``, its stored model equal to the bytes of the model it returned.
    """
    results: dict[str, Any] = {}
    runs: dict[str, str | None] = {}
    experiments: dict[str, str] = {}
    for variant in VARIANTS:
        experiments[variant] = f"{variant}-{next(_calls)}"
        ledger = None if variant == "plain" else LedgerCallback(experiment=experiments[variant])

        def place(callbacks: list, ledger: LedgerCallback | None = ledger, variant: str = variant) -> list:
            if ledger is None:
                return list(callbacks)
            return [ledger, *callbacks] if variant == "ledger-first" else [*callbacks, ledger]

        results[variant] = train(place)
        found = ll.runs(experiments[variant]).sort_values("start_time")
        runs[variant] = found.iloc[-1]["id"] if len(found) else None  # the latest training's
    for variant in VARIANTS[1:]:
        assert results[variant].keys() == results["plain"].keys()
        for key, value in results["plain"].items():
            assert results[variant][key] == value, f"{variant} changed {key}"
        if status == "never started":
            assert runs[variant] is None
            continue
        assert runs[variant] is not None, f"{variant}: no run recorded"
        check_recorded(ll.get_run(runs[variant]), results[variant], status)
    return {**results["plain"], "experiments": {v: experiments[v] for v in VARIANTS[1:]}}


def check_recorded(view: ll.RunView, outcome: dict[str, Any], status: str) -> None:
    assert view.status == status, view.error
    for data, per_metric in outcome.get("evals_result", {}).items():
        for metric, values in per_metric.items():
            stored = view.metric(f"{data}/{metric}").sort_values("step")["value"].tolist()
            assert stored == values, f"{data}/{metric}"
    if "model" in outcome:
        (model,) = [a for a in view.artifacts if a.name == "model.ubj"]
        with model.open() as f:
            assert bytes(f.read()) == outcome["model"]


# -- tests/python/test_callback.py::TestCallbacks ----------------------------------------------


def printed_lines(rounds: int, verbose_eval: bool | int) -> int:
    """How many lines the evaluation monitor prints (XGBoost's own expectation)."""
    period = int(verbose_eval)
    if period == 1:
        return rounds
    if period > rounds:
        return 2
    periods = rounds // period
    return 1 + periods + int(periods * period < rounds - 1)


@pytest.mark.parametrize("verbose_eval", [True, 2, 4, 11])
def test_evaluation_monitor_prints_the_same(cancer, capsys, verbose_eval: bool | int):
    rounds = 10
    params = {"objective": "binary:logistic", "eval_metric": "error", "nthread": 1}

    def train(place: Place) -> dict[str, Any]:
        evals_result: dict = {}
        booster = xgb.train(
            params,
            cancer["train"],
            evals=[(cancer["train"], "Train"), (cancer["valid"], "Valid")],
            num_boost_round=rounds,
            evals_result=evals_result,
            verbose_eval=verbose_eval,
            callbacks=place([]),
        )
        printed = capsys.readouterr().out
        return {**booster_outcome(booster, evals_result, cancer["valid"]), "printed": printed}

    outcome = in_all_variants(train)
    assert len(outcome["evals_result"]["Valid"]["error"]) == rounds
    assert len(outcome["printed"].strip().split("\n")) == printed_lines(rounds, verbose_eval)

    def cv(place: Place) -> dict[str, Any]:
        frame = xgb.cv(
            params, cancer["train"], num_boost_round=rounds, verbose_eval=verbose_eval, callbacks=place([])
        )
        return {"cv": frame.to_dict("list"), "printed": capsys.readouterr().out}

    outcome = in_all_variants(cv)
    assert len(outcome["printed"].strip().split("\n")) == printed_lines(rounds, verbose_eval)


def test_early_stopping(cancer):
    def train(place: Place) -> dict[str, Any]:
        evals_result: dict = {}
        booster = xgb.train(
            {"objective": "binary:logistic", "eval_metric": "error", "nthread": 1},
            cancer["train"],
            evals=[(cancer["train"], "Train"), (cancer["valid"], "Valid")],
            num_boost_round=30,
            evals_result=evals_result,
            early_stopping_rounds=5,
            verbose_eval=False,
            callbacks=place([]),
        )
        return {**booster_outcome(booster, evals_result, cancer["valid"]), "dump": len(booster.get_dump())}

    outcome = in_all_variants(train)
    assert outcome["dump"] - outcome["best_iteration"] == 5 + 1


def test_early_stopping_with_a_custom_metric(cancer):
    def train(place: Place) -> dict[str, Any]:
        evals_result: dict = {}
        booster = xgb.train(
            {"objective": "binary:logistic", "eval_metric": "error", "tree_method": "hist", "nthread": 1},
            cancer["train"],
            evals=[(cancer["train"], "Train"), (cancer["valid"], "Valid")],
            custom_metric=error_rate,
            num_boost_round=1000,
            early_stopping_rounds=5,
            evals_result=evals_result,
            verbose_eval=False,
            callbacks=place([]),
        )
        return {**booster_outcome(booster, evals_result, cancer["valid"]), "dump": len(booster.get_dump())}

    outcome = in_all_variants(train)
    assert outcome["dump"] - outcome["best_iteration"] == 5 + 1
    assert "CustomErr" in outcome["evals_result"]["Valid"]


def test_early_stopping_customized(cancer):
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["error", "rmse"],
        "tree_method": "hist",
        "nthread": 1,
    }

    def train(place: Place) -> dict[str, Any]:
        stop = xgb.callback.EarlyStopping(rounds=5, metric_name="CustomErr", data_name="Train")
        evals_result: dict = {}
        booster = xgb.train(
            params,
            cancer["train"],
            evals=[(cancer["train"], "Train"), (cancer["valid"], "Valid")],
            custom_metric=error_rate,
            num_boost_round=1000,
            evals_result=evals_result,
            callbacks=place([stop]),
            verbose_eval=False,
        )
        outcome = booster_outcome(booster, evals_result, cancer["valid"])
        return {
            **outcome,
            "dump": len(booster.get_dump()),
            "history": len(stop.stopping_history["Train"]["CustomErr"]),
        }

    outcome = in_all_variants(train)
    assert outcome["dump"] - outcome["best_iteration"] == 5 + 1
    assert outcome["history"] == outcome["dump"]

    def train_nothing_improves(place: Place) -> dict[str, Any]:
        stop = xgb.callback.EarlyStopping(
            rounds=5, metric_name="CustomErr", data_name="Train", min_delta=100, save_best=True
        )
        evals_result: dict = {}
        booster = xgb.train(
            params,
            cancer["train"],
            evals=[(cancer["train"], "Train"), (cancer["valid"], "Valid")],
            custom_metric=error_rate,
            num_boost_round=100,
            evals_result=evals_result,
            callbacks=place([stop]),
            verbose_eval=False,
        )
        return booster_outcome(booster, evals_result, cancer["valid"])

    outcome = in_all_variants(train_nothing_improves)
    assert outcome["best_iteration"] == 0 and outcome["rounds"] == 1


def test_early_stopping_in_the_scikit_learn_wrapper(cancer):
    X, y = cancer["X"], cancer["y"]

    def by_rounds(place: Place) -> dict[str, Any]:
        clf = xgb.XGBClassifier(early_stopping_rounds=5, eval_metric="error", n_jobs=1, callbacks=place([]))
        clf.fit(X, y, eval_set=[(X, y)], verbose=False)
        return {**wrapper_outcome(clf, X), "dump": len(clf.get_booster().get_dump())}

    outcome = in_all_variants(by_rounds)
    assert outcome["dump"] - outcome["best_iteration"] == 5 + 1

    def by_callback(place: Place) -> dict[str, Any]:
        stop = xgb.callback.EarlyStopping(rounds=5)
        clf = xgb.XGBClassifier(eval_metric=error_rate_skl, n_jobs=1, callbacks=place([stop]))
        clf.fit(X, y, eval_set=[(X, y)], verbose=False)
        return {**wrapper_outcome(clf, X), "dump": len(clf.get_booster().get_dump())}

    outcome = in_all_variants(by_callback)
    assert outcome["dump"] - outcome["best_iteration"] == 5 + 1


def test_early_stopping_saves_the_best_model_and_refuses_a_linear_booster(cancer):
    X, y = cancer["X"], cancer["y"]

    def save_best(place: Place) -> dict[str, Any]:
        stop = xgb.callback.EarlyStopping(rounds=5, save_best=True)
        clf = xgb.XGBClassifier(
            n_estimators=100, eval_metric=error_rate_skl, n_jobs=1, callbacks=place([stop])
        )
        clf.fit(X, y, eval_set=[(X, y)], verbose=False)
        return {**wrapper_outcome(clf, X), "dump": len(clf.get_booster().get_dump())}

    outcome = in_all_variants(save_best)
    assert outcome["dump"] == outcome["best_iteration"] + 1

    def linear_save_best(place: Place) -> dict[str, Any]:
        stop = xgb.callback.EarlyStopping(rounds=5, save_best=True)
        clf = xgb.XGBClassifier(
            booster="gblinear", n_estimators=10, eval_metric=error_rate_skl, n_jobs=1, callbacks=place([stop])
        )
        with pytest.raises(ValueError) as refused:
            clf.fit(X, y, eval_set=[(X, y)], verbose=False)
        return {"refused": f"{type(refused.value).__name__}: {refused.value}"}

    in_all_variants(linear_save_best, status="failed")

    def linear(place: Place) -> dict[str, Any]:
        stop = xgb.callback.EarlyStopping(rounds=5, save_best=False)
        clf = xgb.XGBClassifier(
            booster="gblinear", n_estimators=10, eval_metric=error_rate_skl, n_jobs=1, callbacks=place([stop])
        )
        return wrapper_outcome(clf.fit(X, y, eval_set=[(X, y)], verbose=False), X)

    in_all_variants(linear)


def test_early_stopping_continues_a_loaded_model(cancer, tmp_path: Path):
    X, y = cancer["X"], cancer["y"]

    def train(place: Place) -> dict[str, Any]:
        stop = xgb.callback.EarlyStopping(rounds=5, save_best=True)
        clf = xgb.XGBClassifier(eval_metric=error_rate_skl, n_jobs=1, callbacks=place([stop]))
        clf.fit(X, y, eval_set=[(X, y)], verbose=False)
        first = clf.get_booster()
        assert first.num_boosted_rounds() == first.best_iteration + 1
        path = tmp_path / f"model-{len(os.listdir(tmp_path))}.json"
        clf.save_model(path)
        clf = xgb.XGBClassifier(n_jobs=1)
        clf.load_model(path)
        clf.set_params(eval_metric=error_rate_skl, early_stopping_rounds=3, callbacks=place([]))
        clf.fit(X, y, eval_set=[(X, y)], verbose=False)
        return wrapper_outcome(clf, X)

    outcome = in_all_variants(train)
    assert outcome["rounds"] == outcome["best_iteration"] + 3 + 1


def test_early_stopping_watches_the_last_metric():
    X, y = make_classification(random_state=1994)

    def train(place: Place, metrics: list[str] = ["logloss", "auc"]) -> dict[str, Any]:  # noqa: B006
        clf = xgb.XGBClassifier(eval_metric=metrics, early_stopping_rounds=2, n_jobs=1, callbacks=place([]))
        clf.fit(X, y, eval_set=[(X, y)], verbose=False)
        return wrapper_outcome(clf, X)

    outcome = in_all_variants(train)
    assert outcome["best_iteration"] < 8 and outcome["evals_result"]["validation_0"]["auc"][-1] > 0.99
    outcome = in_all_variants(lambda place: train(place, ["auc", "logloss"]))
    assert outcome["best_iteration"] > 50


@pytest.mark.parametrize("schedule", ["list", "callable"])
def test_a_learning_rate_schedule(cancer, schedule: str):
    rounds = 12
    rates = [0.8 * 0.9**i for i in range(rounds)]

    def train(place: Place) -> dict[str, Any]:
        scheduler = xgb.callback.LearningRateScheduler(rates if schedule == "list" else (lambda i: rates[i]))
        evals_result: dict = {}
        booster = xgb.train(
            {"objective": "binary:logistic", "eval_metric": "error", "nthread": 1},
            cancer["train"],
            rounds,
            evals=[(cancer["valid"], "eval"), (cancer["train"], "train")],
            evals_result=evals_result,
            callbacks=place([scheduler]),
            verbose_eval=False,
        )
        return booster_outcome(booster, evals_result, cancer["valid"])

    outcome = in_all_variants(train)
    errors = outcome["evals_result"]["eval"]["error"]
    assert errors[-1] <= errors[0]


def test_training_checkpoints_are_the_same_files(cancer, tmp_path: Path):
    def train(place: Place) -> dict[str, Any]:
        files = {}
        for as_pickle in (False, True):
            folder = tmp_path / f"{len(os.listdir(tmp_path))}"
            folder.mkdir()
            check_point = xgb.callback.TrainingCheckPoint(
                directory=folder, as_pickle=as_pickle, name="model", **{PERIOD: 1}
            )
            xgb.train(
                {"objective": "binary:logistic", "nthread": 1},
                cancer["train"],
                num_boost_round=10,
                verbose_eval=False,
                callbacks=place([check_point]),
            )
            files.update({p.name: p.read_bytes() for p in folder.iterdir()})
        return {"files": files}

    outcome = in_all_variants(train)
    assert {f"model_{i}.pkl" for i in range(1, 10)} <= set(outcome["files"])
    extension = getattr(xgb.callback.TrainingCheckPoint, "default_format", "json")
    assert {f"model_{i}.{extension}" for i in range(1, 10)} <= set(outcome["files"])


def test_one_callback_list_serves_several_trainings():
    X, y = load_diabetes(return_X_y=True)
    m = xgb.DMatrix(X, y)

    def train(place: Place) -> dict[str, Any]:
        callbacks = place([xgb.callback.EarlyStopping(rounds=10)])
        given = list(callbacks)
        boosters = [
            xgb.train(
                {"objective": "reg:squarederror", "eval_metric": "rmse", "nthread": 1},
                m,
                evals=[(m, "Train")],
                num_boost_round=1,
                verbose_eval=False,
                callbacks=callbacks,
            )
            for _ in range(4)
        ]
        return {"list unchanged": callbacks == given, "models": [bytes(b.save_raw("ubj")) for b in boosters]}

    outcome = in_all_variants(train)
    assert outcome["list unchanged"]
    for experiment in outcome["experiments"].values():  # one run per training, each finished
        assert list(ll.runs(experiment)["status"]) == ["finished"] * 4


def test_best_iteration_is_absent_without_early_stopping(cancer):
    X, y = cancer["X"], cancer["y"]

    def train(place: Place) -> dict[str, Any]:
        clf = xgb.XGBClassifier(n_estimators=8, n_jobs=1, callbacks=place([]))
        clf.fit(X, y, eval_set=[(X, y)], verbose=False)
        absent = {}
        for name, model in (("classifier", clf), ("booster", clf.get_booster())):
            for attribute in ("best_iteration", "best_score"):
                with pytest.raises(AttributeError, match="early stopping is used"):
                    getattr(model, attribute)
                absent[f"{name}.{attribute}"] = True
        return {**wrapper_outcome(clf, X), "absent": absent}

    in_all_variants(train)


@pytest.mark.skipif(not XGB_21, reason="XGBoost < 2.1 holds its callbacks in a set: no order to preserve")
def test_the_order_of_callbacks_is_preserved():
    rng = np.random.default_rng(0)
    X, y, w = rng.normal(size=(256, 16)), rng.normal(size=256), rng.uniform(size=256)

    def train(place: Place) -> dict[str, Any]:
        calls: list[str] = []

        class Cb2(xgb.callback.TrainingCallback):
            def before_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                assert not calls or calls[-1] in ("Cb1", "Cb2")
                calls.append("Cb2")
                return False

        class Cb1(xgb.callback.TrainingCallback):
            def before_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                assert calls[-1] == "Cb2"
                calls.append("Cb1")
                return False

        booster = xgb.train(
            {"nthread": 1}, dtrain=xgb.QuantileDMatrix(X, y, weight=w), callbacks=place([Cb2(), Cb1()])
        )
        return {"calls": calls, "model": bytes(booster.save_raw("ubj"))}

    outcome = in_all_variants(train)
    assert outcome["calls"] == ["Cb2", "Cb1"] * 10


# -- xgb.cv with callbacks --------------------------------------------------------------------------


def test_cross_validation_with_callbacks(cancer):
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 2, "nthread": 1}

    def with_early_stopping(place: Place) -> dict[str, Any]:
        frame = xgb.cv(
            params,
            cancer["train"],
            300,
            nfold=3,
            seed=0,
            custom_metric=error_rate,
            callbacks=place([xgb.callback.EarlyStopping(rounds=3, data_name="test", metric_name="logloss")]),
        )
        by_rounds = xgb.cv(
            params, cancer["train"], 300, nfold=3, seed=1, early_stopping_rounds=3, callbacks=place([])
        )
        return {"cv": frame.to_dict("list"), "by rounds": by_rounds.to_dict("list")}

    outcome = in_all_variants(with_early_stopping)
    assert 3 < len(outcome["cv"]["test-logloss-mean"]) < 300

    def save_best(place: Place) -> dict[str, Any]:
        stop = xgb.callback.EarlyStopping(rounds=3, save_best=True)
        with pytest.raises(ValueError, match="save_best" if XGB_21 else None) as refused:
            xgb.cv(params, cancer["train"], 10, nfold=3, callbacks=place([stop]))
        return {"refused": str(refused.value)}

    # EarlyStopping refuses in before_training, before the first iteration: no run is started
    # (XGBoost 2.0 refuses only after training, on its own best score: the run failed)
    in_all_variants(save_best, status="never started" if XGB_21 else "failed")
