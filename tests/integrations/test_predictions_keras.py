"""Keras LedgerCallback(predictions=...): the trained model's predictions, as model.predict gives them."""

from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # what tox sets; Keras reads it at import
pytest.importorskip("keras")
pytest.importorskip("pyarrow")

import keras
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

import labledger as ll
from labledger.errors import InvalidValueError
from labledger.integrations.keras import LedgerCallback

pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32")[:500], y[:500]


def _model(
    output: str = "softmax", units: int = 10, loss: str = "sparse_categorical_crossentropy"
) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.2),  # draws from the generators in training only
            keras.layers.Dense(units, activation=output),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    return model


def _tables(run: ll.Run) -> list[str]:
    return [a.metadata["split"] for a in ll.get_run(run.id).artifacts if a.kind == "predictions"]


def test_softmax_classifier_predictions_and_features(digits) -> None:
    x, y = digits
    x_val, y_val = x[400:], y[400:]
    features = pd.DataFrame({"ink": (x_val > 0.5).sum(axis=1), "odd": np.where(y_val % 2, "odd", "even")})
    model = _model()
    callback = LedgerCallback("keras-preds", predictions=(x_val, y_val, features))
    model.fit(x[:400], y[:400], epochs=2, batch_size=64, verbose=0, callbacks=[callback])

    stored = ll.get_predictions(ll.get_run(callback.run.id), split="validation")
    expected = model.predict(x_val, verbose=0)
    np.testing.assert_array_equal(stored.proba, expected.astype(np.float64))  # already probabilities
    np.testing.assert_array_equal(stored.y_pred, expected.argmax(axis=1))
    np.testing.assert_array_equal(stored.y_true, y_val)
    assert stored.classes == list(range(10)) and stored.meta["task"] == "classification"
    assert stored.features["odd"].tolist() == features["odd"].tolist()
    assert stored.features["ink"].tolist() == features["ink"].tolist()


def test_logits_one_hot_truth_binary_and_regression(digits) -> None:
    x, y = digits
    one_hot = np.eye(10, dtype="float32")[y]
    logits = _model(output="linear", loss="categorical_crossentropy")
    cb = LedgerCallback("keras-logits", predictions=(x[400:], one_hot[400:]), predictions_split="test")
    logits.fit(x[:400], one_hot[:400], epochs=1, verbose=0, callbacks=[cb])
    stored = ll.get_predictions(ll.get_run(cb.run.id))  # split "test"
    scores = logits.predict(x[400:], verbose=0).astype(np.float64)
    softmax = np.exp(scores - scores.max(axis=1, keepdims=True))
    np.testing.assert_allclose(stored.proba, softmax / softmax.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(stored.y_true, y[400:])

    even = (y % 2 == 0).astype("float32")
    binary = _model(output="sigmoid", units=1, loss="binary_crossentropy")
    cb = LedgerCallback("keras-binary", predictions=(x[400:], even[400:]))
    binary.fit(x[:400], even[:400], epochs=1, verbose=0, callbacks=[cb])
    stored = ll.get_predictions(ll.get_run(cb.run.id), split="validation")
    p = binary.predict(x[400:], verbose=0)[:, 0]
    assert stored.classes == [0, 1]
    np.testing.assert_array_equal(stored.proba[:, 1], p.astype(np.float64))
    np.testing.assert_array_equal(stored.y_pred, (p > 0.5).astype(int))

    target = (y / 9.0).astype("float32") * 3.0
    regression = _model(output="linear", units=1, loss="mse")
    cb = LedgerCallback("keras-regression", predictions=(x[400:], target[400:]))
    regression.fit(x[:400], target[:400], epochs=1, verbose=0, callbacks=[cb])
    stored = ll.get_predictions(ll.get_run(cb.run.id), split="validation")
    assert stored.meta["task"] == "regression" and stored.proba is None
    np.testing.assert_array_equal(stored.y_pred, regression.predict(x[400:], verbose=0)[:, 0])


def test_off_by_default_and_training_unchanged(digits) -> None:
    import torch

    x, y = digits

    def train(callback: LedgerCallback) -> tuple[list[np.ndarray], list[float], tuple]:
        model = _model()
        history = model.fit(x[:400], y[:400], epochs=2, batch_size=32, verbose=0, callbacks=[callback])
        draws = (random.random(), np.random.random_sample(3).tolist(), torch.rand(3).tolist())
        return [np.asarray(w) for w in model.get_weights()], history.history["loss"], draws

    off = LedgerCallback("keras-off")
    plain = train(off)
    assert _tables(off.run) == []
    on = LedgerCallback("keras-on", predictions=(x[400:], y[400:]))
    tracked = train(on)
    assert _tables(on.run) == ["validation"]
    for a, b in zip(plain[0], tracked[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert plain[1] == tracked[1]
    assert plain[2] == tracked[2]


def test_predictions_argument_is_checked() -> None:
    with pytest.raises(InvalidValueError):
        LedgerCallback("keras-bad", predictions=np.zeros((3, 2)))  # type: ignore[arg-type]
