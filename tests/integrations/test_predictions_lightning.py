"""Lightning LedgerLogger/LedgerCallback(predictions=(x_val, y_val)): the trained module's predictions."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("lightning")
pytest.importorskip("pyarrow")

import lightning as L
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import labledger as ll
from labledger.errors import InvalidValueError
from labledger.integrations.lightning import LedgerCallback, LedgerLogger

from .test_lightning_runs import LIGHTNING_WARNINGS

pytestmark = [*LIGHTNING_WARNINGS]


class Classifier(L.LightningModule):
    """A small MLP with dropout (which draws from torch's generator in training only) on digits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # logits

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x[:500] / 16.0, dtype=torch.float32), torch.tensor(y[:500])


def _trainer(**kwargs) -> L.Trainer:
    options = dict(
        max_epochs=2, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False
    )
    return L.Trainer(**{**options, **kwargs})


def _fit(digits, **kwargs) -> Classifier:
    x, y = digits
    L.seed_everything(0, verbose=False)
    module = Classifier()
    loader = DataLoader(TensorDataset(x[:400], y[:400]), batch_size=50, shuffle=True)
    _trainer(**kwargs).fit(module, loader)
    return module


def _expected(module: Classifier, x: torch.Tensor) -> np.ndarray:
    module.eval()
    with torch.no_grad():
        return torch.softmax(module(x).double(), dim=1).numpy()


def _tables(run_id: str) -> list[str]:
    return [a.metadata["split"] for a in ll.get_run(run_id).artifacts if a.kind == "predictions"]


def test_logger_stores_softmax_of_the_trained_module(digits) -> None:
    x, y = digits
    features = pd.DataFrame(
        {"ink": (x[400:] > 0.5).sum(dim=1).numpy(), "parity": np.where(y[400:] % 2, "odd", "even")}
    )
    logger = LedgerLogger("pl-preds", predictions=(x[400:], y[400:], features))
    module = _fit(digits, logger=logger)
    logger.end()
    stored = ll.get_predictions(ll.get_run(logger.run.id), split="validation")
    expected = _expected(module, x[400:])
    np.testing.assert_allclose(stored.proba, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(stored.y_pred, expected.argmax(axis=1))
    np.testing.assert_array_equal(stored.y_true, y[400:].numpy())
    assert stored.classes == list(range(10)) and stored.meta["task"] == "classification"
    assert stored.features["parity"].tolist() == features["parity"].tolist()


def test_callback_stores_a_regression_as_test_split(digits) -> None:
    x, y = digits

    class Regressor(Classifier):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 1))

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            return nn.functional.mse_loss(self(xb)[:, 0], yb)

    target = y.double() * 1.5
    callback = LedgerCallback(
        "pl-reg", predictions=(x[400:].numpy(), target[400:].numpy()), predictions_split="test"
    )
    L.seed_everything(0, verbose=False)
    module = Regressor()
    module.train()
    loader = DataLoader(TensorDataset(x[:400], target[:400].float()), batch_size=50)
    _trainer(logger=False, callbacks=[callback]).fit(module, loader)
    stored = ll.get_predictions(ll.get_run(callback.run.id))
    assert stored.meta["task"] == "regression" and stored.proba is None
    module.eval()
    with torch.no_grad():
        np.testing.assert_array_equal(stored.y_pred, module(x[400:])[:, 0].numpy())
    callback.end()


def test_off_by_default_and_training_unchanged(digits) -> None:
    x, y = digits

    def train(callback: LedgerCallback) -> tuple[dict, tuple, bool]:
        module = _fit(digits, logger=False, callbacks=[callback])
        draws = (random.random(), np.random.random_sample(3).tolist(), torch.rand(3).tolist())
        callback.end()
        return {k: v.clone() for k, v in module.state_dict().items()}, draws, module.training

    off = LedgerCallback("pl-off")
    plain = train(off)
    assert _tables(off.run.id) == []
    on = LedgerCallback("pl-on", predictions=(x[400:], y[400:]))
    tracked = train(on)
    assert _tables(on.run.id) == ["validation"]
    assert plain[0].keys() == tracked[0].keys()
    for key, value in plain[0].items():
        assert torch.equal(value, tracked[0][key]), key
    assert plain[1] == tracked[1]
    assert plain[2] == tracked[2]  # the module's training flag is put back


def test_predictions_argument_is_checked() -> None:
    with pytest.raises(InvalidValueError):
        LedgerLogger("pl-bad", predictions=(np.zeros(3),))
