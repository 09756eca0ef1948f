"""Lightning's hyperparameter contracts (``test_logger.py``, ``test_csv.py``), held for ``LedgerLogger``."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import pytest

pytest.importorskip("lightning")

import numpy as np
import torch
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel

import labledger as ll
from labledger.integrations.lightning import LedgerLogger

from .test_lightning_contracts import _trainer
from .test_lightning_runs import LIGHTNING_WARNINGS

pytestmark = [
    pytest.mark.timeout(120),
    *LIGHTNING_WARNINGS,
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*:UserWarning"),
]


def test_numpy_hparams_sanitized_like_lightning() -> None:
    """test_logger.py::test_np_sanitization, given as a Namespace."""
    logger = LedgerLogger("contract-numpy")
    params = {
        "np.bool_": np.bool_(1),
        "np.byte": np.byte(2),
        "np.intc": np.intc(3),
        "np.int_": np.int_(4),
        "np.longlong": np.longlong(5),
        "np.single": np.single(6.0),
        "np.double": np.double(8.9),
        "np.csingle": np.csingle(7 + 2j),
        "np.cdouble": np.cdouble(9 + 4j),
    }
    logger.log_hyperparams(Namespace(**params))
    assert logger.run.params == {
        "np.bool_": True,
        "np.byte": 2,
        "np.intc": 3,
        "np.int_": 4,
        "np.longlong": 5,
        "np.single": 6.0,
        "np.double": 8.9,
        "np.csingle": "(7+2j)",
        "np.cdouble": "(9+4j)",
    }
    logger.end()


def test_hparams_like_csv_logger(tmp_path: Path) -> None:
    """test_csv.py::test_log_hyperparams and test_log_metrics: every value kept (nested dicts flattened)."""
    logger = LedgerLogger("contract-csv", save_dir=tmp_path)
    logger.log_hyperparams(
        {
            "float": 0.3,
            "int": 1,
            "string": "abc",
            "bool": True,
            "dict": {"a": {"b": "c"}},
            "list": [1, 2, 3],
            "layer": torch.nn.BatchNorm1d,
        }
    )
    logger.log_metrics(
        {"float": 0.3, "int": 1, "FloatTensor": torch.tensor(0.1), "IntTensor": torch.tensor(1)}, 10
    )
    logger.log_metrics({"float": 0.4}, None)
    logger.end()
    view = ll.get_run(logger.run.id)
    assert view.params == {
        "float": 0.3,
        "int": 1,
        "string": "abc",
        "bool": True,
        "dict/a/b": "c",
        "list": [1, 2, 3],
        "layer": "torch.nn.modules.batchnorm.BatchNorm1d",
    }
    assert view.summary["FloatTensor"]["last"] == pytest.approx(0.1)
    assert view.summary["IntTensor"]["last"] == 1.0
    assert list(view.metric("float").value) == [0.3, 0.4]


@pytest.mark.parametrize("log_to_logger", [True, False])
def test_save_hyperparameters_logger_switch(tmp_path: Path, log_to_logger: bool) -> None:
    """test_logger.py::test_log_hyperparams_being_called: ``save_hyperparameters(logger=False)`` logs none."""

    class TestModel(BoringModel):
        def __init__(self, param_one, param_two):
            super().__init__()
            self.save_hyperparameters(logger=log_to_logger)

    logger = LedgerLogger("contract-hparams-switch")
    trainer = _trainer(tmp_path, logger=logger, num_sanity_val_steps=0, limit_train_batches=1)
    trainer.fit(TestModel("pytorch", "lightning"))
    params = ll.get_run(logger.run.id).params
    assert ("param_one" in params) is log_to_logger
    assert params["trainer/max_epochs"] == 1  # the trainer's settings either way
    logger.end()


def test_hparams_key_collision(tmp_path: Path) -> None:
    """test_logger.py::test_log_hyperparams_key_collision: Lightning's error reaches the user; run failed."""

    class TestModel(BoringModel):
        def __init__(self, hparams):
            super().__init__()
            self.save_hyperparameters(hparams)

    class TestDataModule(BoringDataModule):
        def __init__(self, hparams):
            super().__init__()
            self.save_hyperparameters(hparams)

    same = {"1": 1, "three": 3.0}
    logger = LedgerLogger("contract-collision")
    trainer = _trainer(tmp_path, logger=logger, enable_checkpointing=False, num_sanity_val_steps=0)
    trainer.fit(TestModel(same), TestDataModule(same))  # the same key and value in both: fine
    assert ll.get_run(logger.run.id).params["three"] == 3.0
    logger.end()

    failing = LedgerLogger("contract-collision")
    trainer = _trainer(tmp_path, logger=failing, enable_checkpointing=False, num_sanity_val_steps=0)
    with pytest.raises(RuntimeError, match="Error while merging hparams"):
        trainer.fit(TestModel(same), TestDataModule({**same, "1": 0}))
    view = ll.get_run(failing.run.id)
    assert view.status == "failed" and "Error while merging hparams" in view.error
