"""XGBoost LedgerCallback: how runs begin and end (failures, sweeps, callback order, pickling, options)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("sklearn")

import xgboost as xgb
from sklearn.datasets import load_breast_cancer

import labledger as ll
from labledger.integrations.xgboost import LedgerCallback

PARAMS = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 2, "nthread": 1}


@pytest.fixture(scope="module")
def data() -> tuple[xgb.DMatrix, xgb.DMatrix]:
    X, y = load_breast_cancer(return_X_y=True)
    return xgb.DMatrix(X[:400], y[:400]), xgb.DMatrix(X[400:], y[400:])


def _only_run(experiment: str) -> ll.RunView:
    frame = ll.runs(experiment)
    assert len(frame) == 1, f"expected one run in {experiment}, found {len(frame)}"
    return ll.get_run(frame.iloc[0]["id"])


def _curve(view: ll.RunView, key: str) -> list[float]:
    return view.metric(key).sort_values("step")["value"].tolist()


def _stored_model(view: ll.RunView) -> bytes:
    (model,) = [a for a in view.artifacts if a.name == "model.ubj"]
    with model.open() as f:
        return bytes(f.read())


class MetricBroke(Exception):
    pass


# -- an exception inside training ----------------------------------------------------------


@pytest.mark.timeout(60)
def test_an_exception_in_a_custom_metric_fails_the_run_and_reaches_the_user_unchanged(data):
    dtrain, dvalid = data
    error = MetricBroke("the metric broke at iteration 3")
    calls = []

    def flaky_error_rate(predt: np.ndarray, dmatrix: xgb.DMatrix) -> tuple[str, float]:
        calls.append(1)
        if len(calls) == 4:
            raise error
        return "error_rate", float(np.mean((predt > 0.5) != dmatrix.get_label()))

    cb = LedgerCallback(experiment="broken-metric")
    with pytest.raises(MetricBroke) as caught:
        xgb.train(
            PARAMS, dtrain, 10, evals=[(dvalid, "valid")], custom_metric=flaky_error_rate, callbacks=[cb]
        )
    assert caught.value is error  # the very exception, not a wrapper
    failed = _only_run("broken-metric")
    assert failed.status == "failed"
    assert "MetricBroke: the metric broke at iteration 3" in failed.error
    assert "flaky_error_rate" in failed.error and "xgb.train(" in failed.error  # where, and who called
    for key in ("valid/logloss", "valid/error_rate"):  # the iterations evaluated before the failure
        assert len(_curve(failed, key)) == 3
    assert ll.active_run() is None

    # the same callback trains again: a run of its own, and the failed one stays failed
    booster = xgb.train(PARAMS, dtrain, 4, evals=[(dvalid, "valid")], callbacks=[cb])
    runs = ll.runs("broken-metric").set_index("id")
    assert len(runs) == 2
    assert runs.loc[failed.id, "status"] == "failed"
    second = ll.get_run(cb.run.id)
    assert second.id != failed.id and second.status == "finished"
    assert _stored_model(second) == bytes(booster.save_raw("ubj"))


@pytest.mark.timeout(60)
def test_ctrl_c_inside_training_ends_the_run_killed(data):
    dtrain, dvalid = data

    def interrupted(predt: np.ndarray, dmatrix: xgb.DMatrix) -> tuple[str, float]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        xgb.train(
            PARAMS,
            dtrain,
            5,
            evals=[(dvalid, "valid")],
            custom_metric=interrupted,
            callbacks=[LedgerCallback(experiment="interrupted")],
        )
    view = _only_run("interrupted")
    assert view.status == "killed" and "KeyboardInterrupt" in view.error


@pytest.mark.timeout(60)
def test_an_exception_in_a_custom_objective_fails_the_run_once_it_is_handled(data):
    dtrain, _ = data

    def objective(predt: np.ndarray, dmatrix: xgb.DMatrix):
        raise ValueError("the objective broke")  # a new exception: a kept one would keep its traceback

    try:
        xgb.train(
            {"max_depth": 2, "nthread": 1},
            dtrain,
            5,
            obj=objective,
            callbacks=[LedgerCallback(experiment="broken-objective")],
        )
    except ValueError as caught:
        assert str(caught) == "the objective broke"
    view = _only_run("broken-objective")  # xgb.train's frame is gone: the run has ended
    assert view.status == "failed" and "without finishing" in view.error

    cb = LedgerCallback(experiment="broken-objective-again")
    with pytest.raises(ValueError, match="the objective broke"):
        xgb.train({"max_depth": 2, "nthread": 1}, dtrain, 5, obj=objective, callbacks=[cb])
    # the traceback still holds xgb.train's frame; the run ends as the callback trains again
    xgb.train({"max_depth": 2, "nthread": 1}, dtrain, 2, callbacks=[cb])
    statuses = sorted(ll.runs("broken-objective-again")["status"])
    assert statuses == ["failed", "finished"]


@pytest.mark.timeout(60)
def test_runs_left_open_by_exceptions_end_failed_at_exit_each_with_its_own_story(run_script):
    proc = run_script(
        """
        import numpy as np
        import xgboost as xgb
        from labledger.integrations.xgboost import LedgerCallback

        def objective(name):
            def broken(predt, dmatrix):
                raise RuntimeError(f"objective {name} exploded")
            return broken

        X = np.arange(40.0).reshape(20, 2)
        dtrain = xgb.DMatrix(X, (X[:, 0] > 20).astype(float))
        kept = []
        try:  # handled, but the exception is kept: xgb.train's frame lives on until exit
            xgb.train({"max_depth": 2, "nthread": 1}, dtrain, 3, obj=objective("kept"),
                      callbacks=[LedgerCallback(experiment="exit", name="kept")])
        except RuntimeError as error:
            kept.append(error)
        xgb.train({"max_depth": 2, "nthread": 1}, dtrain, 3, obj=objective("uncaught"),
                  callbacks=[LedgerCallback(experiment="exit", name="uncaught")])
        """,
        env={"LABLEDGER_COMPLETENESS": "off", "LABLEDGER_CAPTURE_CODE": "0"},
    )
    assert proc.returncode == 1 and "objective uncaught exploded" in proc.stderr
    uncaught, kept = ll.get_run("exit/uncaught"), ll.get_run("exit/kept")
    assert uncaught.status == "failed"
    assert "RuntimeError: objective uncaught exploded" in uncaught.error and "in broken" in uncaught.error
    assert kept.status == "failed"
    assert "without finishing" in kept.error and "uncaught" not in kept.error  # not the other run's story


# -- sweeps ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_sweep_gives_one_finished_run_per_training_with_the_options_given(data):
    dtrain, dvalid = data
    for depth in (1, 2, 3):
        cb = LedgerCallback(
            experiment="sweep",
            name=f"depth-{depth}",
            hypothesis="deeper trees fit the validation set better",
            tags={"sweep": "depth"},
        )
        xgb.train({**PARAMS, "max_depth": depth}, dtrain, 3, evals=[(dvalid, "valid")], callbacks=[cb])
    runs = ll.runs("sweep").sort_values("name")
    assert list(runs["name"]) == ["depth-1", "depth-2", "depth-3"]
    assert set(runs["status"]) == {"finished"}
    assert list(runs["params.xgb/max_depth"]) == [1, 2, 3]
    for run_id in runs["id"]:
        view = ll.get_run(run_id)
        assert view.hypothesis == "deeper trees fit the validation set better"
        assert view.tags["sweep"] == "depth"
        assert len(_curve(view, "valid/logloss")) == 3

    reused = LedgerCallback(experiment="sweep-reused")
    for depth in (1, 2):
        xgb.train({**PARAMS, "max_depth": depth}, dtrain, 2, evals=[(dvalid, "valid")], callbacks=[reused])
    again = ll.runs("sweep-reused")
    assert len(again) == 2 and set(again["status"]) == {"finished"}
    assert sorted(again["params.xgb/max_depth"]) == [1, 2]


def test_run_options_are_checked_when_the_callback_is_made(run):
    with pytest.raises(TypeError, match="hypotesis"):
        LedgerCallback(hypotesis="typo")
    with pytest.raises(ll.errors.InvalidValueError, match="hypothesis"):
        LedgerCallback(run, hypothesis="belongs to start_run")
    assert LedgerCallback(run).run is run


@pytest.mark.timeout(60)
def test_a_run_the_callback_starts_tells_how_to_give_it_a_hypothesis(data, monkeypatch):
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "warn")
    dtrain, _ = data
    with pytest.warns(ll.lineage.completeness.CompletenessWarning) as seen:
        xgb.train(PARAMS, dtrain, 2, callbacks=[LedgerCallback(experiment="no-hypothesis")])
    messages = " ".join(str(w.message) for w in seen)
    assert "labledger.integrations.xgboost.LedgerCallback(..., hypothesis='...')" in messages


# -- callback order ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ledger_first", [True, False], ids=["ledger-first", "ledger-last"])
def test_the_stored_model_and_curves_are_what_training_returns_in_any_callback_order(data, ledger_first):
    dtrain, dvalid = data
    stop = xgb.callback.EarlyStopping(rounds=3, save_best=True)
    ledger = LedgerCallback(experiment="order", checkpoint_every=1)
    history: dict = {}
    booster = xgb.train(
        {**PARAMS, "eta": 0.6},
        dtrain,
        200,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        evals_result=history,
        callbacks=[ledger, stop] if ledger_first else [stop, ledger],
    )
    view = _only_run("order")
    evaluated = len(history["valid"]["logloss"])
    assert booster.num_boosted_rounds() == booster.best_iteration + 1 < evaluated  # save_best cut it
    assert _stored_model(view) == bytes(booster.save_raw("ubj"))
    model = next(a for a in view.artifacts if a.name == "model.ubj")
    assert model.metadata["num_boosted_rounds"] == booster.num_boosted_rounds()
    for data_name in ("train", "valid"):
        assert _curve(view, f"{data_name}/logloss") == history[data_name]["logloss"]
    assert view.metric("valid/logloss")["step"].tolist() == list(range(evaluated))
    checkpoints = sorted(a.metadata["iteration"] for a in view.artifacts if a.kind == "checkpoint")
    assert checkpoints == list(range(evaluated))  # the iteration training stopped at included
    assert view.summary["xgb/best_iteration"]["last"] == booster.best_iteration


@pytest.mark.timeout(60)
def test_the_wrapper_stores_its_final_model_with_early_stopping_before_the_callback():
    X, y = load_breast_cancer(return_X_y=True)
    clf = xgb.XGBClassifier(
        n_estimators=200,
        max_depth=2,
        learning_rate=0.6,
        n_jobs=1,
        callbacks=[
            xgb.callback.EarlyStopping(rounds=3, save_best=True),
            LedgerCallback(experiment="skl-order"),
        ],
    )
    clf.fit(X[:400], y[:400], eval_set=[(X[400:], y[400:])], verbose=False)
    view = _only_run("skl-order")
    assert _stored_model(view) == bytes(clf.get_booster().save_raw("ubj"))
    assert _curve(view, "validation_0/logloss") == clf.evals_result()["validation_0"]["logloss"]


# -- pickling ----------------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_a_pickled_estimator_records_a_run_in_the_process_that_fits_it(run_script, tmp_path):
    clf = xgb.XGBClassifier(
        n_estimators=4, max_depth=2, n_jobs=1, callbacks=[LedgerCallback(experiment="pickled")]
    )
    (tmp_path / "clf.pkl").write_bytes(pickle.dumps(clf))
    proc = run_script(
        f"""
        import json, pickle
        from sklearn.datasets import load_breast_cancer
        X, y = load_breast_cancer(return_X_y=True)
        clf = pickle.loads(open({str(tmp_path / "clf.pkl")!r}, "rb").read())
        clf.fit(X, y, eval_set=[(X, y)], verbose=False)
        print(json.dumps(clf.evals_result()["validation_0"]["logloss"]))
        """,
        env={"LABLEDGER_COMPLETENESS": "off", "LABLEDGER_CAPTURE_CODE": "0"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr
    view = _only_run("pickled")
    assert view.status == "finished"
    assert _curve(view, "validation_0/logloss") == json.loads(proc.stdout.strip().splitlines()[-1])
    assert view.params["xgb/n_estimators"] == 4


#: ``pickle.dumps(LedgerCallback(experiment="old-pickle", checkpoint_every=2, log_importance=False))``
#: made by labledger 0.1 (commit f4320b8), as an estimator saved with its callbacks holds it.
OLD_PICKLE = (
    b"\x80\x04\x95\xe8\x00\x00\x00\x00\x00\x00\x00\x8c\x1elabledger.integrations.xgboost\x94\x8c\x0e"
    b"LedgerCallback\x94\x93\x94)\x81\x94}\x94(\x8c\x03run\x94N\x8c\x10checkpoint_every\x94K\x02\x8c\t"
    b"log_model\x94\x88\x8c\x0elog_importance\x94\x89\x8c\x0clog_datasets\x94\x88\x8c\x10start_run_kwargs"
    b"\x94}\x94\x8c\nexperiment\x94\x8c\nold-pickle\x94s\x8c\x0b_origin_pid\x94M)3\x8c\x07_target\x94N"
    b"\x8c\x08_binding\x94N\x8c\x04_fit\x94Nub."
)


def test_a_callback_pickled_by_the_previous_release_still_records(data):
    old = pickle.loads(OLD_PICKLE)
    dtrain, dvalid = data
    xgb.train(PARAMS, dtrain, 4, evals=[(dvalid, "valid")], callbacks=[old])
    view = _only_run("old-pickle")
    assert view.status == "finished" and len(_curve(view, "valid/logloss")) == 4
    assert sorted(a.metadata["iteration"] for a in view.artifacts if a.kind == "checkpoint") == [1, 3]
    assert not [a for a in view.artifacts if a.kind == "feature_importance"]


@pytest.mark.timeout(60)
def test_a_tracking_failure_is_one_warning_and_training_goes_on(data, monkeypatch):
    monkeypatch.setenv("LABLEDGER_TESTING", "0")  # what users get: a warning, not an error
    dtrain, dvalid = data
    run = ll.start_run("ended")
    run.end()
    history: dict = {}
    with pytest.warns(ll.plugins.LabledgerWarning) as seen:
        booster = xgb.train(
            PARAMS,
            dtrain,
            5,
            evals=[(dvalid, "valid")],
            evals_result=history,
            callbacks=[LedgerCallback(run, checkpoint_every=1)],
        )
    assert len(seen) == 1 and "training went on" in str(seen[0].message)
    assert booster.num_boosted_rounds() == 5 and len(history["valid"]["logloss"]) == 5
