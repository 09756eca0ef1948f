"""Lightning as people use it: sweeps, LightningCLI, two trainers on one logger, resume, callbacks.

Each test trains a real model on tiny data on the CPU and checks what the run
stores against what Lightning itself reports.
"""

from __future__ import annotations

import csv
import gc
import inspect
import os
import subprocess
import sys
import textwrap
import time
import warnings
from argparse import Namespace
from pathlib import Path

import pytest

pytest.importorskip("lightning")

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import labledger as ll
from labledger.integrations.lightning import LedgerCallback, LedgerLogger
from labledger.lineage import completeness
from labledger.store.schema import ARTIFACT_KINDS

#: the third-party warnings every Lightning test module ignores (shared with the other test_lightning_* files)
LIGHTNING_WARNINGS = [
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty:UserWarning"),
    pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"),
]
pytestmark = [pytest.mark.timeout(120), *LIGHTNING_WARNINGS]


class Regressor(L.LightningModule):
    """A small MLP on random regression data (4 batches per epoch)."""

    def __init__(
        self, lr: float = 0.05, hidden: int = 8, optimizer: str = "sgd", config: Namespace | None = None
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):
        loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    def configure_optimizers(self):
        if self.hparams.optimizer == "adam":
            optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
            return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)]
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def tiny_loaders() -> tuple[DataLoader, DataLoader]:
    """64 training and 32 validation rows of a noisy sum, 16 to a batch."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=generator)
    y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(96, 1, generator=generator)
    return (
        DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16),
        DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16),
    )


@pytest.fixture
def loaders() -> tuple[DataLoader, DataLoader]:
    return tiny_loaders()


def _trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    options = {
        "max_epochs": 2,
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": str(tmp_path),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "log_every_n_steps": 1,
    }
    return L.Trainer(**{**options, **kwargs})


def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_sweep_gives_each_logger_its_run_and_ends_them(tmp_path: Path, loaders) -> None:
    train, val = loaders

    def one(lr: float) -> LedgerLogger:
        logger = LedgerLogger("sweep", tags={"lr": str(lr)})
        trainer = _trainer(tmp_path, logger=logger, enable_checkpointing=False)
        model = Regressor(lr=lr)
        trainer.fit(model, train, val)
        trainer.test(model, val)  # the same trainer again: the same run
        return logger

    loggers = [one(lr) for lr in (0.1, 0.05, 0.01)]
    ids = [logger.run.id for logger in loggers]
    views = [ll.get_run(i) for i in ids]
    assert len(set(ids)) == 3
    assert [v.params["lr"] for v in views] == [0.1, 0.05, 0.01]
    for view in views:
        assert list(view.metric("train_loss_step").step) == list(range(8))  # each run's own steps
        assert len(view.metric("test_loss")) == 1
    # a run ends when the next logger starts one (its trainer calls being over) ...
    assert [v.status for v in views] == ["finished", "finished", "running"]
    # ... or when its logger is garbage-collected
    del loggers
    gc.collect()
    assert _wait_for(lambda: ll.get_run(ids[-1]).status == "finished")


def test_logger_used_again_after_its_run_ended_continues_in_a_new_run(tmp_path: Path, loaders) -> None:
    train, val = loaders
    first, second = LedgerLogger("alternate"), LedgerLogger("alternate")
    model = Regressor()
    trainer_a = _trainer(tmp_path, logger=first, max_epochs=1, enable_checkpointing=False)
    trainer_a.fit(model, train, val)
    _trainer(tmp_path, logger=second, max_epochs=1, enable_checkpointing=False).fit(Regressor(), train, val)
    earlier = first.run.id
    assert ll.get_run(earlier).status == "finished"
    trainer_a.test(model, val)
    later = ll.get_run(first.run.id)
    assert later.id != earlier and later.tags["continues"] == earlier
    assert later.params["lr"] == 0.05 and len(later.metric("test_loss")) == 1


CLI_SCRIPT = """
import torch
import lightning as L
from lightning.pytorch.cli import LightningCLI
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class AutoEncoder(L.LightningModule):
    def __init__(self, hidden_dim: int = 4, learning_rate: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.encoder, self.decoder = nn.Linear(8, hidden_dim), nn.Linear(hidden_dim, 8)

    def training_step(self, batch, batch_idx):
        loss = nn.functional.mse_loss(self.decoder(self.encoder(batch[0])), batch[0])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.mse_loss(self.decoder(self.encoder(batch[0])), batch[0]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)


class Data(L.LightningDataModule):
    def __init__(self, batch_size: int = 16):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage):
        x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
        self.train, self.val = TensorDataset(x[:48]), TensorDataset(x[48:])

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.hparams.batch_size)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.hparams.batch_size)


if __name__ == "__main__":
    LightningCLI(AutoEncoder, Data, seed_everything_default=3)
"""


@pytest.mark.timeout(180)
def test_lightning_cli_with_the_logger(tmp_path: Path, store_path: Path) -> None:
    pytest.importorskip("jsonargparse")
    script = tmp_path / "autoencoder.py"
    script.write_text(textwrap.dedent(CLI_SCRIPT))
    args = [
        "fit",
        "--trainer.logger=labledger.integrations.lightning.LedgerLogger",
        "--trainer.max_epochs=1",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--model.hidden_dim=3",
    ]
    env = {**os.environ, "LABLEDGER_STORE": str(store_path), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, str(script), *args]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    frame = ll.runs("default")
    assert list(frame.status) == ["finished"]
    view = ll.get_run(frame.id.iloc[0])
    params = view.params
    assert params["hidden_dim"] == 3 and params["learning_rate"] == 0.05 and params["batch_size"] == 16
    assert params["cli/model/hidden_dim"] == 3 and params["cli/trainer/max_epochs"] == 1
    assert params["cli/seed_everything"] == 3 and params["seed"] == 3
    assert not [k for k in params if "_instantiator" in k or "_class_path" in k]
    config = next(a for a in view.artifacts if a.name == "config.yaml")
    assert config.kind == ("config" if "config" in ARTIFACT_KINDS else "other")
    kept = tmp_path / "default" / view.name / "config.yaml"  # moved next to the run's checkpoints
    with config.open("r") as f:
        assert f.read() == kept.read_text()
    assert "hidden_dim: 3" in kept.read_text()
    assert not (tmp_path / "config.yaml").exists()  # so the next run's SaveConfigCallback can write its own
    assert [a.name for a in view.artifacts if a.kind == "checkpoint"] == ["epoch=0-step=3.ckpt"]


class EpochOnly(Regressor):
    def on_train_epoch_end(self):
        self.log("epoch", float(self.current_epoch))


def test_epoch_metric_and_nested_namespace_hparams(tmp_path: Path, loaders) -> None:
    train, val = loaders
    logger = LedgerLogger("epoch-namespace")
    config = Namespace(optimizer=Namespace(name="sgd", momentum=0.0), layers=2)
    trainer = _trainer(
        tmp_path, logger=logger, max_epochs=2, enable_checkpointing=False, log_every_n_steps=50
    )
    trainer.fit(EpochOnly(config=config), train, val)
    logger.log_metrics({"epoch": 7}, step=20)  # a dict holding only the epoch
    logger.end()
    view = ll.get_run(logger.run.id)
    epochs = view.metric("epoch")
    assert (20, 7.0) in set(zip(epochs.step, epochs.value, strict=True))
    assert {0.0, 1.0} <= set(epochs.value)
    params = view.params
    assert params["config/optimizer/name"] == "sgd" and params["config/optimizer/momentum"] == 0.0
    assert params["config/layers"] == 2 and "config" not in params


def test_two_trainers_on_one_logger(tmp_path: Path, loaders) -> None:
    """Pre-training then fine-tuning: the second fit's steps come after the first's."""
    train, val = loaders
    logger = LedgerLogger("pretrain-finetune")
    model = Regressor()
    _trainer(tmp_path, logger=logger, max_epochs=2, enable_checkpointing=False).fit(model, train, val)
    finetune = _trainer(
        tmp_path, logger=logger, max_epochs=3, gradient_clip_val=0.5, enable_checkpointing=False
    )
    finetune.fit(model, train, val)
    finetune.test(model, val)
    logger.end()
    view = ll.get_run(logger.run.id)
    assert list(view.metric("val_loss").step) == [3, 7, 11, 15, 19]
    assert list(view.metric("val_loss").epoch) == [0, 1, 0, 1, 2]  # each trainer's own epochs
    assert list(view.metric("train_loss_step").step) == list(range(20))
    assert list(view.metric("test_loss").step) == [20]
    for key in view.metric_keys():
        if key != "epoch":  # Lightning hands the epoch over with each metrics dict of a step
            steps = list(view.metric(key).step)
            assert len(steps) == len(set(steps)), key
    params = view.params
    assert params["trainer/max_epochs"] == 2 and params["fit/2/trainer/max_epochs"] == 3
    assert params["trainer/gradient_clip_val"] is None and params["fit/2/trainer/gradient_clip_val"] == 0.5
    assert "fit/2/lr" not in params  # what did not change is not repeated


@pytest.mark.parametrize("with_logger", [True, False])
def test_callback_records_what_a_logger_receives(tmp_path: Path, loaders, with_logger: bool) -> None:
    train, val = loaders
    callback = LedgerCallback("callback-like-logger")
    monitor = LearningRateMonitor()
    reference = CSVLogger(tmp_path, name="reference")
    loggers = [CSVLogger(tmp_path, name="csv")] if with_logger else False
    # the same seeded training with and without the callback; CSVLogger beside it in the first
    L.seed_everything(5)
    _trainer(tmp_path, logger=reference, callbacks=[LearningRateMonitor()], max_epochs=3).fit(
        Regressor(optimizer="adam"), train, val
    )
    L.seed_everything(5)
    callbacks = [callback, monitor] if with_logger else [callback]
    _trainer(tmp_path, logger=loggers, callbacks=callbacks, max_epochs=3).fit(
        Regressor(optimizer="adam"), train, val
    )
    callback.end()

    expected = set()
    with open(Path(reference.log_dir) / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            step = int(row.pop("step"))
            expected |= {(k, step, float(v)) for k, v in row.items() if v != ""}
    if not with_logger:  # without a logger there is no LearningRateMonitor
        expected = {p for p in expected if not p[0].startswith("lr-")}
    frame = ll.get_run(callback.run.id).metrics
    got = set(zip(frame.key.astype(str), frame.step.astype(int), frame.value.astype(float), strict=True))
    assert {k for k, _, _ in got} == {k for k, _, _ in expected}
    assert {(k, s) for k, s, _ in got} == {(k, s) for k, s, _ in expected}
    got_values, expected_values = ({(k, s): v for k, s, v in points} for points in (got, expected))
    assert [got_values[p] for p in sorted(got_values)] == pytest.approx(
        [expected_values[p] for p in sorted(got_values)], rel=1e-6
    )
    if with_logger:
        assert got_values["lr-Adam", 8] == pytest.approx(0.0125)  # halved each epoch by the scheduler


@pytest.mark.parametrize("integration", [LedgerLogger, LedgerCallback])
def test_run_name_hypothesis_and_tags(tmp_path: Path, loaders, integration) -> None:
    train, val = loaders
    tracker = integration("named", name="baseline", hypothesis="an MLP fits a sum", tags={"team": "vision"})
    options = (
        {"logger": tracker} if integration is LedgerLogger else {"callbacks": [tracker], "logger": False}
    )
    _trainer(tmp_path, max_epochs=1, enable_checkpointing=False, **options).fit(Regressor(), train, val)
    tracker.end()
    view = ll.get_run(tracker.run.id)
    assert (view.name, view.hypothesis, view.tags["team"]) == ("baseline", "an MLP fits a sum", "vision")


def test_param_roles_and_completeness(tmp_path: Path, loaders) -> None:
    roles = completeness.param_roles()
    assert roles["trainer/"] == roles["callbacks/"] == roles["cli/"] == "configuration"
    assert roles["cli/model/"] == "hyperparameter"
    train, val = loaders
    logger = LedgerLogger("roles")
    _trainer(tmp_path, logger=logger, max_epochs=1, callbacks=[EarlyStopping("val_loss")]).fit(
        Regressor(), train, val
    )
    logger.end()
    parts = ll.get_run(logger.run.id).completeness.parts
    assert parts["hyperparameters"][0] and parts["training configuration"][0] and parts["model type"][0]


def test_completeness_warning_names_the_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    if "origin" not in inspect.signature(ll.start_run).parameters:
        pytest.skip("this labledger's start_run does not take origin= yet")
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = LedgerLogger("warned")
        _ = logger.experiment
        logger.end()
    messages = [str(w.message) for w in caught if issubclass(w.category, completeness.CompletenessWarning)]
    assert any("labledger.integrations.lightning.LedgerLogger(..., hypothesis=" in m for m in messages)
