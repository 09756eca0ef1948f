"""Keras 3 integration: real tiny models on the digits data, checked against ``history.history``."""

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

pytestmark = [
    # Keras reading its own variables under NumPy 2 (model.save in the tests' reference callback)
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32")[:600], y[:600]


def _model(learning_rate=0.01) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def test_fit_is_recorded_as_keras_reports_it(digits, tmp_path: Path) -> None:
    x, y = digits
    schedule = keras.optimizers.schedules.ExponentialDecay(0.02, decay_steps=5, decay_rate=0.5)
    model = _model(schedule)
    callback = LedgerCallback("keras-digits", checkpoint_monitor="val_loss", log_every_n_batches=4)
    history = model.fit(x, y, epochs=3, batch_size=64, validation_split=0.25, verbose=0, callbacks=[callback])

    view = ll.get_run(callback.run.id)
    assert view.status == "finished"
    params = view.params
    assert params["model/class"] == "keras.src.models.sequential.Sequential"
    assert params["model/layers"] == len(model.layers) == 2
    assert params["model/params/total"] == model.count_params()
    assert params["model/config/name"] == model.get_config()["name"]
    assert params["compile/loss"] == "sparse_categorical_crossentropy"
    assert params["compile/metrics"] == ["accuracy"]
    assert params["optimizer/learning_rate/class_name"] == "ExponentialDecay"
    assert params["optimizer/learning_rate/config/initial_learning_rate"] == 0.02
    assert params["fit/epochs"] == 3 and params["fit/batch_size"] == 64
    assert params["fit/validation_split"] == 0.25 and params["fit/steps"] == history.params["steps"]
    assert view.datasets[0]["summary"]["shape"] == [450, 64]  # the training part of the split
    # every epoch log, step = epoch, exactly as Keras reports it
    for key, values in history.history.items():
        series = view.metric(key)
        assert list(series.step) == [0, 1, 2] and list(series.epoch) == [0, 1, 2]
        assert series.value.tolist() == pytest.approx([float(v) for v in values], rel=1e-12)
    # the learning rate in effect at each epoch's start, from the schedule
    steps = history.params["steps"]
    expected_lr = [float(schedule(epoch * steps)) for epoch in range(3)]
    assert view.metric("learning_rate").value.tolist() == pytest.approx(expected_lr, rel=1e-6)
    assert list(view.metric("batch/loss").step) == list(range(4, 3 * steps + 1, 4))
    # best checkpoints by val_loss, the final model, and both load back
    best_epoch = int(np.argmin(history.history["val_loss"]))
    assert view.summary["best_epoch"]["last"] == best_epoch
    best = view.artifact(view.tags["checkpoint/best"])
    assert best.kind == "checkpoint" and best.metadata["epoch"] == best_epoch
    assert best.metadata["score"] == pytest.approx(min(history.history["val_loss"]))
    final = view.artifact("model.keras")
    assert final.kind == "model" and final.metadata["class"] == params["model/class"]
    restored = keras.saving.load_model(final.download(tmp_path / "final.keras"))
    np.testing.assert_allclose(
        restored.predict(x[:20], verbose=0), model.predict(x[:20], verbose=0), rtol=1e-6
    )
    if best_epoch == 2:  # the best checkpoint is the final weights
        reloaded = keras.saving.load_model(best.download(tmp_path / "best.keras"))
        np.testing.assert_allclose(reloaded.predict(x[:20], verbose=0), model.predict(x[:20], verbose=0))


def test_best_checkpoint_restores_its_epoch(digits, tmp_path: Path) -> None:
    x, y = digits
    model = _model(0.05)
    reference = tmp_path / "reference"
    reference.mkdir()

    class KeepEveryEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.save(reference / f"{epoch}.keras")

    callback = LedgerCallback("keras-best", checkpoint_monitor="val_accuracy", log_model=False)
    history = model.fit(
        x, y, epochs=3, batch_size=32, validation_split=0.2, verbose=0, callbacks=[callback, KeepEveryEpoch()]
    )
    view = ll.get_run(callback.run.id)
    best = view.artifact(view.tags["checkpoint/best"])
    accuracies = history.history["val_accuracy"]
    assert best.metadata["epoch"] == int(np.argmax(accuracies))  # "auto" maximizes accuracy
    restored = keras.saving.load_model(best.download(tmp_path / "best.keras"))
    same_epoch = keras.saving.load_model(reference / f"{best.metadata['epoch']}.keras")
    np.testing.assert_array_equal(restored.predict(x[:30], verbose=0), same_epoch.predict(x[:30], verbose=0))
    improved = [v for i, v in enumerate(accuracies) if v > max(accuracies[:i], default=-1.0)]
    checkpoints = [a for a in view.artifacts if a.kind == "checkpoint"]
    assert len(checkpoints) == len(improved)
    assert not [a for a in view.artifacts if a.kind == "model"]


def test_early_stopping_epochs(digits) -> None:
    x, y = digits
    stopper = keras.callbacks.EarlyStopping("val_loss", patience=1, min_delta=100.0)
    callback = LedgerCallback("keras-early", log_model=False)
    history = _model().fit(x, y, epochs=10, validation_split=0.2, verbose=0, callbacks=[callback, stopper])
    view = ll.get_run(callback.run.id)
    assert len(history.history["loss"]) == 2
    assert view.summary["stopped_epoch"]["last"] == stopper.stopped_epoch == 1
    # EarlyStopping judges the best epoch (min_delta=100: no later epoch counts as better)
    assert view.summary["best_epoch"]["last"] == stopper.best_epoch == 0
    assert view.params["fit/batch_size"] == 32  # Keras' default
    assert not [a for a in view.artifacts if a.kind == "checkpoint"]


@pytest.mark.timeout(120)
def test_best_epoch_compares_one_metric_when_validation_skips_epochs(digits) -> None:
    x, y = digits
    wrong = (y[200:300] + 1) % 10  # validation labels that training makes worse: val_loss > loss
    callback = LedgerCallback("keras-validation-freq", log_model=False)
    history = _model(0.05).fit(
        x[:200],
        y[:200],
        epochs=4,
        validation_data=(x[200:300], wrong),
        validation_freq=2,
        verbose=0,
        callbacks=[callback],
    )
    view = ll.get_run(callback.run.id)
    assert list(view.metric("val_loss").step) == [1, 3]  # validated every second epoch only
    # best by val_loss among the validated epochs, never a training loss against a validation loss
    assert view.summary["best_epoch"]["last"] == [1, 3][int(np.argmin(history.history["val_loss"]))]


class FailingModel(keras.Sequential):
    """Fails in its second epoch (the user's train_step)."""

    def train_step(self, *args, **kwargs):
        if getattr(self, "_epochs_seen", 0) >= 1:
            raise RuntimeError("exploding gradients on purpose")
        return super().train_step(*args, **kwargs)


class CountEpochs(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model._epochs_seen = epoch + 1


def test_failing_fit_inside_the_callback_block_is_failed(digits) -> None:
    x, y = digits
    model = FailingModel([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(RuntimeError, match="on purpose"), LedgerCallback("keras-fail") as callback:
        model.fit(x, y, epochs=3, verbose=0, callbacks=[CountEpochs(), callback])
    view = ll.get_run(callback.run.id)
    assert view.status == "failed" and "exploding gradients" in view.error
    assert len(view.metric("loss")) == 1  # epoch 0 was logged before the failure
    assert view.params["model/class"].endswith("FailingModel")


def test_interrupt_inside_the_callback_block_is_killed(digits) -> None:
    x, y = digits

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), LedgerCallback("keras-kill") as callback:
        _model().fit(x, y, epochs=4, verbose=0, callbacks=[callback, CtrlC()])
    view = ll.get_run(callback.run.id)
    assert view.status == "killed" and len(view.metric("loss")) == 2


def test_each_fit_gets_its_own_run(digits) -> None:
    x, y = digits
    callback = LedgerCallback("keras-twice", log_model=False)
    model = _model()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    first = callback.run
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    assert callback.run.id != first.id
    assert ll.get_run(first.id).summary["loss"]["count"] == 1
    assert ll.get_run(callback.run.id).summary["loss"]["count"] == 2
    assert ll.get_run(callback.run.id).status == "finished"


def test_uncaught_failure_ends_the_run_failed_at_exit(run_script) -> None:
    script = """
        import os
        os.environ["KERAS_BACKEND"] = "torch"
        import keras, numpy as np
        from labledger.integrations.keras import LedgerCallback

        class Boom(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    raise ValueError("bad batch on purpose")

        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
        model.fit(x, x.sum(1), epochs=5, verbose=0, callbacks=[LedgerCallback("keras-exit"), Boom()])
    """
    done = run_script(script, env={"LABLEDGER_COMPLETENESS": "off"}, timeout=120)
    assert done.returncode != 0 and "bad batch on purpose" in done.stderr
    (summary,) = [e for e in ll.experiments() if e["name"] == "keras-exit"]
    assert summary["runs"] == 1 and not summary["running"]
    (run_id,) = ll.open_store(None).run_ids()
    view = ll.get_run(run_id)
    assert view.status == "failed" and "bad batch on purpose" in view.error
    assert list(view.metric("loss").epoch) == [0, 1]


def test_a_given_run_stays_open_and_evaluate_lands_in_it(digits) -> None:
    x, y = digits
    model = _model()
    with ll.start_run("keras-given") as run:
        callback = LedgerCallback(run=run, log_model=False)
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
        assert not run.ended
        results = model.evaluate(x, y, verbose=0, callbacks=[callback], return_dict=True)
    view = ll.get_run(run.id)
    assert view.status == "finished"
    assert view.summary["test_loss"]["last"] == pytest.approx(results["loss"])


def test_bad_options_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="checkpoint_mode"):
        LedgerCallback(checkpoint_mode="best")
    with pytest.raises(InvalidValueError, match="log_every_n_batches"):
        LedgerCallback(log_every_n_batches=0)


# -- what else a fit is configured with ----------------------------------------------------------


@pytest.mark.timeout(120)
def test_class_and_sample_weights_and_other_callbacks_are_params(digits, tmp_path: Path) -> None:
    x, y = digits
    weights = {c: 1.0 + c / 4 for c in range(10)}
    callbacks = [
        keras.callbacks.EarlyStopping("val_loss", patience=3, min_delta=0.001, restore_best_weights=True),
        keras.callbacks.EarlyStopping("loss", patience=5),
        keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=2, cooldown=1, min_lr=1e-5),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    callback = LedgerCallback("keras-settings", log_model=False)
    _model().fit(
        x,
        y,
        epochs=1,
        validation_split=0.25,
        class_weight=weights,
        verbose=0,
        callbacks=[*callbacks, callback],
    )
    params = ll.get_run(callback.run.id).params
    assert params["fit/class_weight/0"] == 1.0 and params["fit/class_weight/9"] == 3.25
    assert params["fit/sample_weight"] is False
    expected = {
        "callbacks/EarlyStopping/monitor": "val_loss",
        "callbacks/EarlyStopping/mode": "auto",
        "callbacks/EarlyStopping/patience": 3,
        "callbacks/EarlyStopping/min_delta": 0.001,
        "callbacks/EarlyStopping/baseline": None,
        "callbacks/EarlyStopping/restore_best_weights": True,
        "callbacks/EarlyStopping/start_from_epoch": 0,
        "callbacks/EarlyStopping_2/monitor": "loss",
        "callbacks/EarlyStopping_2/patience": 5,
        "callbacks/ReduceLROnPlateau/factor": 0.5,
        "callbacks/ReduceLROnPlateau/patience": 2,
        "callbacks/ReduceLROnPlateau/cooldown": 1,
        "callbacks/ReduceLROnPlateau/min_lr": 1e-5,
        "callbacks/ReduceLROnPlateau/min_delta": 1e-4,
        "callbacks/ModelCheckpoint/filepath": str(tmp_path / "best.keras"),
        "callbacks/ModelCheckpoint/save_best_only": True,
        "callbacks/ModelCheckpoint/save_weights_only": False,
        "callbacks/ModelCheckpoint/save_freq": "epoch",
    }
    for key, value in expected.items():  # each setting with its own type
        assert params[key] == value and type(params[key]) is type(value), key
    assert params["callbacks/classes"] == [
        "keras.src.callbacks.early_stopping.EarlyStopping",
        "keras.src.callbacks.early_stopping.EarlyStopping",
        "keras.src.callbacks.reduce_lr_on_plateau.ReduceLROnPlateau",
        "keras.src.callbacks.model_checkpoint.ModelCheckpoint",
        "keras.src.callbacks.terminate_on_nan.TerminateOnNaN",
    ]

    weighted = LedgerCallback("keras-settings", log_model=False)
    _model().fit(x, y, epochs=1, sample_weight=np.linspace(0.5, 1.5, len(x)), verbose=0, callbacks=[weighted])
    params = ll.get_run(weighted.run.id).params
    assert params["fit/sample_weight"] is True and params["fit/class_weight"] is None
    assert params["callbacks/classes"] == []


@pytest.mark.timeout(120)
def test_multi_input_data_is_fingerprinted_by_content(digits) -> None:
    x, y = digits[0][:240], digits[1][:240]
    first, second = x[:, :48].copy(), x[:, 48:].copy()  # repr elides arrays this large
    changed = second.copy()
    changed[120, 7] += 0.5  # one value in the middle, where repr shows "..."
    assert repr([first, second]) == repr([first, changed])

    a = keras.Input((48,))
    b = keras.Input((16,))
    joined = keras.layers.Concatenate()([keras.layers.Dense(8)(a), keras.layers.Dense(8)(b)])
    model = keras.Model([a, b], keras.layers.Dense(10, activation="softmax")(joined))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")

    def train_fingerprint(inputs) -> str:
        callback = LedgerCallback("keras-inputs", log_model=False)
        model.fit(inputs, y, epochs=1, validation_split=0.25, verbose=0, callbacks=[callback])
        (dataset,) = ll.get_run(callback.run.id).datasets
        assert dataset["name"] == "train" and dataset["summary"]["items"]["1"]["shape"] == [180, 16]
        return dataset["fingerprint"]

    original = train_fingerprint([first, second])
    assert train_fingerprint([first, changed]) != original
    assert train_fingerprint([first.copy(), second.copy()]) == original  # same data, other objects
    assert train_fingerprint([first[::-1].copy(), second[::-1].copy()]) != original  # rows reordered
