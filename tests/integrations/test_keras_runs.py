"""Keras 3 integration: which run a fit goes to — sweeps, several fits into one run, the run's own options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # what tox sets; Keras reads it at import
pytest.importorskip("keras")

import keras
import numpy as np
from sklearn.datasets import load_digits

import labledger as ll
from labledger.errors import InvalidValueError
from labledger.integrations.keras import LedgerCallback

from .test_keras import _model

pytestmark = [
    # Keras reading its own variables under NumPy 2 (model.save, get_weights)
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32")[:200], y[:200]


# -- sweeps, and several fits -------------------------------------------------------------------


def _no_step_twice(view) -> None:
    assert not view.metrics.duplicated(["key", "step"]).any(), "a metric key holds two points at one step"


@pytest.mark.timeout(120)
def test_a_sweep_gives_one_finished_run_per_callback(digits) -> None:
    x, y = digits
    rates = [0.001, 0.01, 0.1]
    ids = []
    for rate in rates:
        callback = LedgerCallback("keras-sweep", name=f"lr-{rate}", log_model=False)
        _model(rate).fit(x, y, epochs=2, verbose=0, callbacks=[callback])
        ids.append(callback.run.id)
    assert len(set(ids)) == len(rates)
    for run_id, rate in zip(ids, rates, strict=True):
        view = ll.get_run(run_id)
        assert view.status == "finished" and view.name == f"lr-{rate}"
        assert view.params["optimizer/learning_rate"] == pytest.approx(rate)
        assert list(view.metric("loss").step) == [0, 1]
    table = ll.runs("keras-sweep")
    assert len(table) == 3 and set(table.status) == {"finished"}


@pytest.mark.timeout(120)
def test_several_fits_into_one_run_continue_its_steps(digits, tmp_path: Path) -> None:
    x, y = digits
    model = _model()
    with ll.start_run("keras-stages") as run:
        callback = LedgerCallback(run=run)
        model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])  # pre-training
        model.compile(optimizer=keras.optimizers.SGD(0.001), loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=3, verbose=0, callbacks=[callback])  # fine-tuning, epochs count from 0 again
        model.fit(x, y, epochs=7, initial_epoch=5, verbose=0, callbacks=[callback])  # a resumed fit
        model.evaluate(x, y, verbose=0, callbacks=[callback])
        model.evaluate(x, y, verbose=0, callbacks=[callback])
        # a sweep of new callbacks inside the active run lands in it the same way
        _model(0.05).fit(x, y, epochs=1, verbose=0, callbacks=[LedgerCallback(log_model=False)])
    view = ll.get_run(run.id)
    assert view.status == "finished"
    _no_step_twice(view)
    loss = view.metric("loss")
    assert list(loss.step) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert list(loss.epoch) == [0, 1, 0, 1, 2, 5, 6, 0]
    assert list(view.metric("test_loss").step) == [6, 7]
    params = view.params
    assert params["fit/epochs"] == 2 and params["fit_2/fit/epochs"] == 3 and params["fit_3/fit/epochs"] == 7
    assert params["optimizer/class"].endswith("Adam") and params["fit_2/optimizer/class"].endswith("SGD")
    assert params["fit_4/optimizer/learning_rate"] == pytest.approx(0.05)
    assert [d["name"] for d in view.datasets] == ["train", "fit_2/train", "fit_3/train", "fit_4/train"]
    models = sorted(a.name for a in view.artifacts if a.kind == "model")
    assert models == ["fit_2/model.keras", "fit_3/model.keras", "model.keras"]
    final = keras.saving.load_model(view.artifact("fit_3/model.keras").download(tmp_path / "final.keras"))
    for stored, held in zip(final.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(stored, held)


# -- the run it starts: name, hypothesis, tags, and how completeness reads it -------------------


@pytest.mark.timeout(120)
def test_start_run_options_and_completeness(digits, monkeypatch) -> None:
    from labledger.lineage.completeness import CompletenessWarning, param_role

    x, y = digits
    callback = LedgerCallback(
        "keras-described",
        name="wide",
        hypothesis="16 units suffice",
        tags={"team": "vision"},
        log_model=False,
    )
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    view = ll.get_run(callback.run.id)
    assert (view.name, view.hypothesis, view.tags["team"]) == ("wide", "16 units suffice", "vision")
    assert view.source["origin"] == "labledger.integrations.keras.LedgerCallback"
    parts = view.completeness.parts
    assert parts["hyperparameters"][0] and parts["training configuration"][0]
    assert param_role("optimizer/learning_rate") == "hyperparameter"
    assert param_role("model/config/layers") == "hyperparameter"
    for key in ("fit/epochs", "compile/loss", "callbacks/EarlyStopping/patience"):
        assert param_role(key) == "configuration"

    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "warn")
    with pytest.warns(CompletenessWarning) as caught:
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[LedgerCallback("keras-undescribed")])
    messages = [str(w.message) for w in caught]
    assert any("LedgerCallback(..., hypothesis='...')" in m for m in messages)
    assert not any("missing: hyperparameters" in m for m in messages)

    with ll.start_run("keras-given") as run, pytest.raises(InvalidValueError, match=r"ll\.start_run"):
        LedgerCallback(run=run, hypothesis="ignored otherwise")
