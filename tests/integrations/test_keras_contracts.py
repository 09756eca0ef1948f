"""Keras 3's own callback contracts (``keras/src/callbacks/*_test.py``), held by ``LedgerCallback``.

Keras checks that a callback works inside ``fit``, ``evaluate`` and ``predict``,
inside a ``CallbackList`` and in a custom training loop driven as ``Callback``'s
docstring shows, and that ``EarlyStopping`` and ``ModelCheckpoint`` behave the
same whatever the order of the callbacks. Here the same situations run with
``LedgerCallback`` among the callbacks, on real tiny models (torch backend), and
what the run stores is checked against what Keras gives the user.
"""

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
from labledger.integrations.keras import LedgerCallback

pytestmark = [
    pytest.mark.timeout(120),
    # Keras reading its own variables under NumPy 2 (model.save, get_weights)
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32")[:320], y[:320]


def _model(learning_rate: float = 0.01) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10, "softmax")]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _stored_model(view, name: str, folder: Path) -> keras.Model:
    return keras.saving.load_model(view.artifact(name).download(folder / name.replace("/", "_")))


def _assert_same_weights(a: keras.Model, b: keras.Model) -> None:
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)  # bit for bit


def _no_step_twice(view) -> None:
    metrics = view.metrics
    assert not metrics.duplicated(["key", "step"]).any(), "a metric key holds two points at one step"


# -- a callback inside fit, evaluate and predict --------------------------------------------


def test_inside_evaluate_and_predict(digits) -> None:
    x, y = digits
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    evaluate_callback = LedgerCallback("keras-evaluate", log_model=False)
    results = model.evaluate(x, y, verbose=0, callbacks=[evaluate_callback], return_dict=True)
    view = ll.get_run(evaluate_callback.run.id)
    assert view.status == "finished"  # an evaluate of its own: one run, ended with it
    assert view.summary["test_loss"]["last"] == pytest.approx(results["loss"], rel=1e-12)
    assert view.summary["test_accuracy"]["last"] == pytest.approx(results["accuracy"], rel=1e-12)
    assert view.params["model/class"] == "keras.src.models.sequential.Sequential"

    predict_callback = LedgerCallback("keras-predict")
    predictions = model.predict(x[:8], verbose=0, callbacks=[predict_callback])
    np.testing.assert_array_equal(predictions, model.predict(x[:8], verbose=0))
    assert predict_callback.run is None  # predicting records nothing, starts nothing
    assert [e["name"] for e in ll.experiments()] == ["keras-evaluate"]


# -- CallbackList and custom training loops ----------------------------------------------------


def test_a_callback_list_given_to_fit(digits, tmp_path: Path) -> None:
    x, y = digits
    model = _model()
    callback, history = LedgerCallback("keras-list"), keras.callbacks.History()
    callbacks = keras.callbacks.CallbackList([callback, history], model=model)  # Keras sets no params
    model.fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=callbacks)
    view = ll.get_run(callback.run.id)
    assert view.status == "finished"
    assert list(view.metric("loss").step) == [0, 1]
    for key, values in history.history.items():
        assert view.metric(key).value.tolist() == pytest.approx([float(v) for v in values], rel=1e-12)
    assert view.params["model/class"].endswith("Sequential") and view.params["fit/epochs"] == 2
    _assert_same_weights(_stored_model(view, "model.keras", tmp_path), model)


@pytest.mark.parametrize("give_model", [True, False], ids=["model", "no-model"])
def test_the_custom_loop_of_callbacks_docstring(digits, tmp_path: Path, give_model: bool) -> None:
    x, y = digits
    model = _model()
    callback = LedgerCallback("keras-loop", checkpoint_monitor="loss")
    callbacks = keras.callbacks.CallbackList([callback], model=model if give_model else None)
    losses = []
    callbacks.on_train_begin()
    for epoch in range(3):
        callbacks.on_epoch_begin(epoch)
        for i in range(0, len(x), 64):
            callbacks.on_train_batch_begin(i // 64)
            logs = model.train_on_batch(x[i : i + 64], y[i : i + 64], return_dict=True)
            callbacks.on_train_batch_end(i // 64, logs)
        callbacks.on_epoch_end(epoch, logs)
        losses.append(float(logs["loss"]))
    callbacks.on_train_end(logs)

    view = ll.get_run(callback.run.id)
    assert view.status == "finished"
    series = view.metric("loss")
    assert list(series.step) == list(series.epoch) == [0, 1, 2]
    assert series.value.tolist() == pytest.approx(losses, rel=1e-12)
    assert view.summary["best_epoch"]["last"] == int(np.argmin(losses))
    if give_model:  # the model is known: its description, checkpoints and final weights are stored
        assert view.params["model/class"].endswith("Sequential")
        _assert_same_weights(_stored_model(view, "model.keras", tmp_path), model)
        assert view.artifact(view.tags["checkpoint/best"]).metadata["epoch"] == int(np.argmin(losses))
    else:  # Keras gives the callbacks no model: the metrics are still recorded
        assert not view.artifacts and "model/class" not in view.params


# -- EarlyStopping and ModelCheckpoint, in either order ------------------------------------------


@pytest.mark.parametrize("ledger_first", [True, False], ids=["ledger-first", "ledger-last"])
def test_early_stopping_restores_what_is_stored(digits, tmp_path: Path, ledger_first: bool) -> None:
    x, y = digits

    def stopper() -> keras.callbacks.EarlyStopping:
        # min_delta so large that only epoch 0 counts as best: the restored weights are epoch 0's
        return keras.callbacks.EarlyStopping(
            "val_loss", min_delta=10.0, patience=2, restore_best_weights=True
        )

    untracked = _model()
    expected = untracked.fit(x, y, epochs=6, validation_split=0.25, verbose=0, callbacks=[stopper()])

    model, early = _model(), stopper()
    callback = LedgerCallback("keras-order", checkpoint_monitor="val_loss")
    callbacks = [callback, early] if ledger_first else [early, callback]
    history = model.fit(x, y, epochs=6, validation_split=0.25, verbose=0, callbacks=callbacks)

    assert history.history == expected.history  # tracking changes nothing
    _assert_same_weights(model, untracked)
    view = ll.get_run(callback.run.id)
    assert early.best_epoch == 0 and early.stopped_epoch == 2
    # the stored final model is what the user holds after fit: the restored best weights
    _assert_same_weights(_stored_model(view, "model.keras", tmp_path), model)
    assert view.summary["best_epoch"]["last"] == early.best_epoch
    assert view.summary["stopped_epoch"]["last"] == early.stopped_epoch
    best = view.artifact(view.tags["checkpoint/best"])
    assert best.metadata["epoch"] == early.best_epoch and best.metadata["score"] == early.best
    _assert_same_weights(_stored_model(view, best.name, tmp_path), model)
    assert len([a for a in view.artifacts if a.kind == "checkpoint"]) == 1


@pytest.mark.parametrize("ledger_first", [True, False], ids=["ledger-first", "ledger-last"])
def test_model_checkpoint_and_the_stored_best_agree(digits, tmp_path: Path, ledger_first: bool) -> None:
    x, y = digits
    keras_best = tmp_path / "keras-best.keras"
    keeper = keras.callbacks.ModelCheckpoint(str(keras_best), monitor="val_loss", save_best_only=True)
    callback = LedgerCallback("keras-checkpoint", checkpoint_monitor="val_loss", log_model=False)
    model = _model(0.05)
    callbacks = [callback, keeper] if ledger_first else [keeper, callback]
    history = model.fit(x, y, epochs=4, validation_split=0.25, verbose=0, callbacks=callbacks)

    view = ll.get_run(callback.run.id)
    best = view.artifact(view.tags["checkpoint/best"])
    assert best.metadata["epoch"] == int(np.argmin(history.history["val_loss"]))
    _assert_same_weights(_stored_model(view, best.name, tmp_path), keras.saving.load_model(keras_best))
    assert view.params["callbacks/ModelCheckpoint/save_best_only"] is True
    assert view.params["callbacks/ModelCheckpoint/monitor"] == "val_loss"


def test_reused_early_stopping_and_callback(digits) -> None:
    """Keras resets EarlyStopping at each fit; the ledger callback starts a new run per fit."""
    x, y = digits
    model = _model()
    early = keras.callbacks.EarlyStopping("val_loss", min_delta=10.0, patience=1)
    callback = LedgerCallback("keras-reuse", log_model=False)
    runs = []
    for _ in range(2):
        model.fit(x, y, epochs=5, validation_split=0.25, verbose=0, callbacks=[callback, early])
        runs.append(ll.get_run(callback.run.id))
    assert runs[0].id != runs[1].id
    for view in runs:
        assert view.status == "finished"
        assert view.summary["stopped_epoch"]["last"] == 1 and view.summary["best_epoch"]["last"] == 0
        assert list(view.metric("loss").step) == [0, 1]


# -- TerminateOnNaN: a graceful stop, and an error that skips on_train_end ---------------------


def _exploding() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model, np.array([[1.0], [2.0]], "float32"), np.array([[np.inf], [np.inf]], "float32")


def test_terminate_on_nan_stops_and_the_run_says_so() -> None:
    model, x, y = _exploding()
    callback = LedgerCallback("keras-nan", log_model=False)
    history = model.fit(
        x, y, epochs=3, batch_size=1, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN(), callback]
    )
    view = ll.get_run(callback.run.id)
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])
    assert view.status == "finished"
    assert not np.isfinite(view.metric("loss").value.iloc[0])  # stored as Keras gave it
    assert view.summary["stopped_epoch"]["last"] == 0


def test_an_error_that_skips_on_train_end_fails_the_run() -> None:
    class Raising(keras.callbacks.Callback):  # as TerminateOnNaN(raise_error=True) does
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("NaN or Inf loss on purpose")

    model, x, y = _exploding()
    callback = LedgerCallback("keras-nan-error", log_model=False)
    with pytest.raises(RuntimeError, match="on purpose"):
        model.fit(x, y, epochs=1, batch_size=1, verbose=0, callbacks=[callback, Raising()])
    first = callback.run
    assert not first.ended  # Keras skipped on_train_end: the run waits for the exit (or the next fit)
    model.fit(x[:1], np.ones((1, 1), "float32"), epochs=1, verbose=0, callbacks=[callback])
    assert ll.get_run(first.id).status == "failed"
    assert callback.run.id != first.id and ll.get_run(callback.run.id).status == "finished"


# -- ReduceLROnPlateau: the learning rate Keras reports, in either order ------------------------


@pytest.mark.parametrize("ledger_first", [True, False], ids=["ledger-first", "ledger-last"])
def test_reduce_lr_on_plateau(digits, ledger_first: bool) -> None:
    x, y = digits
    plateau = keras.callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=10.0)
    callback = LedgerCallback("keras-plateau", log_model=False)
    callbacks = [callback, plateau] if ledger_first else [plateau, callback]
    history = _model().fit(x, y, epochs=3, verbose=0, callbacks=callbacks)
    view = ll.get_run(callback.run.id)
    expected = history.history["learning_rate"]
    assert expected == pytest.approx([0.01, 0.01, 0.005])  # halved after the first epoch without gain
    assert view.metric("learning_rate").value.tolist() == pytest.approx(expected, rel=1e-6)
    assert view.params["callbacks/ReduceLROnPlateau/factor"] == 0.5
    assert view.params["callbacks/ReduceLROnPlateau/patience"] == 0
    assert view.params["callbacks/ReduceLROnPlateau/min_delta"] == 10.0
    _no_step_twice(view)
