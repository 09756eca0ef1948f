"""The contracts Lightning 2.6's own logger tests hold its loggers to, held for ``LedgerLogger``.

Adapted from ``tests/tests_pytorch/loggers/test_all.py``, ``test_logger.py`` and
``test_csv.py`` (and what ``test_mlflow.py`` checks is stored), with real trainers
on tiny data and checks on what the run stores.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

pytest.importorskip("lightning")

import lightning as L
import torch
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.tuner.tuning import Tuner

import labledger as ll
from labledger.integrations.lightning import LedgerLogger

from .test_lightning_runs import LIGHTNING_WARNINGS

pytestmark = [
    pytest.mark.timeout(120),
    *LIGHTNING_WARNINGS,
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*:UserWarning"),
    # Lightning's own contract tests log integer tensors
    pytest.mark.filterwarnings(
        "ignore:You called `self.log.* but the value needs to be floating:UserWarning"
    ),
]


def _trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    options = {
        "default_root_dir": str(tmp_path),
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "limit_train_batches": 2,
        "limit_val_batches": 2,
        "limit_test_batches": 2,
        "log_every_n_steps": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return L.Trainer(**{**options, **kwargs})


class HistoryLogger(LedgerLogger):
    """A LedgerLogger that also keeps what Lightning handed it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.history: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, metrics, step=None) -> None:
        super().log_metrics(metrics, step)
        self.history.append((step, dict(metrics)))


def _points(view) -> list[tuple[int, str, float]]:
    frame = view.metrics
    return sorted(zip(frame.step.astype(int), frame.key.astype(str), frame.value.astype(float), strict=True))


def test_fit_then_test_logs_what_lightning_hands_over(tmp_path: Path) -> None:
    """test_all.py::test_loggers_fit_test_all: the steps and keys Lightning gives, each stored."""

    class CustomModel(BoringModel):
        def training_step(self, batch, batch_idx):
            loss = self.step(batch)
            self.log("train_some_val", loss)
            return {"loss": loss}

        def on_validation_epoch_end(self):
            self.log_dict({"early_stop_on": torch.tensor(1), "val_loss": torch.tensor(0.5)})

        def on_test_epoch_end(self):
            self.log("test_loss", torch.tensor(2))

    logger = HistoryLogger("contract-fit-test")
    trainer = _trainer(tmp_path, logger=logger, limit_train_batches=1, limit_val_batches=1)
    model = CustomModel()
    trainer.fit(model)
    trainer.test(model)
    logger.end()

    assert [(s, sorted(m)) for s, m in logger.history] == [
        (0, ["epoch", "train_some_val"]),
        (0, ["early_stop_on", "epoch", "val_loss"]),
        (1, ["epoch", "test_loss"]),
    ]
    expected = sorted(
        (step, key, float(value)) for step, metrics in logger.history for key, value in metrics.items()
    )
    view = ll.get_run(logger.run.id)
    assert _points(view) == expected  # every key, every step, every value: epoch included
    assert view.status == "finished"


def test_logger_and_trainer_pickle(tmp_path: Path) -> None:
    """test_all.py::test_loggers_pickle_all and test_logger.py::test_multiple_loggers_pickle."""
    logger = LedgerLogger("contract-pickle", save_dir=tmp_path)
    _ = logger.experiment
    logger.log_metrics({"a": 1.0}, step=0)
    logger.save()
    copy = pickle.loads(pickle.dumps(logger))
    assert copy.run.id == logger.run.id  # a copy in this process logs to the same run

    trainer = L.Trainer(max_epochs=1, logger=[logger, CSVLogger(tmp_path)], enable_progress_bar=False)
    trainer2 = pickle.loads(pickle.dumps(trainer))
    trainer2.logger.log_metrics({"acc": 1.0}, step=1)
    for each in trainer2.loggers:
        each.log_metrics({"b": 2.0}, 2)
    assert trainer2.logger.name == logger.name == "contract-pickle"
    assert trainer2.logger.save_dir == logger.save_dir == str(tmp_path)
    assert trainer2.logger.version == logger.version
    logger.end()
    summary = ll.get_run(logger.run.id).summary
    assert {k: summary[k]["last"] for k in ("a", "acc", "b")} == {"a": 1.0, "acc": 1.0, "b": 2.0}


@pytest.mark.parametrize("tuner_method", ["lr_find", "scale_batch_size"])
def test_tuners_leave_the_logger_alone(tmp_path: Path, tuner_method: str) -> None:
    """test_all.py::test_logger_reset_correctly: the tuners hand back the same logger, which stays empty."""

    class CustomModel(BoringModel):
        def __init__(self, lr=0.1, batch_size=1):
            super().__init__()
            self.save_hyperparameters()

    model = CustomModel()
    logger = LedgerLogger("contract-tuner")
    trainer = _trainer(tmp_path, logger=logger, limit_train_batches=None, limit_val_batches=None)
    tuner = Tuner(trainer)
    kwargs = {"num_training": 5} if tuner_method == "lr_find" else {"max_trials": 2}
    getattr(tuner, tuner_method)(model, **kwargs)
    assert trainer.logger is logger and model.logger is logger
    assert not ll.runs("contract-tuner").shape[0] or ll.get_run(logger.run.id).metrics.empty


def test_default_name_version_and_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """test_all.py::test_logger_default_name, test_mlflow.py::test_mlflow_log_dir."""
    assert LedgerLogger().name == "default"
    monkeypatch.setenv("LABLEDGER_EXPERIMENT", "from-env")
    assert LedgerLogger().name == "from-env"
    logger = LedgerLogger("contract-dirs", save_dir=tmp_path / "logs")
    trainer = _trainer(tmp_path, logger=logger, limit_train_batches=1, limit_val_batches=3)
    assert trainer.log_dir == logger.save_dir == str(tmp_path / "logs")
    trainer.fit(BoringModel())
    view = ll.get_run(logger.run.id)
    assert logger.version == view.name
    assert logger.log_dir == str(tmp_path / "logs" / "contract-dirs" / view.name)
    assert trainer.checkpoint_callback.dirpath == os.path.join(logger.log_dir, "checkpoints")
    assert set(os.listdir(trainer.checkpoint_callback.dirpath)) == {"epoch=0-step=1.ckpt"}
    assert trainer.log_dir == logger.save_dir


def test_versions_like_automatic_versioning() -> None:
    """test_csv.py::test_manual_versioning, test_named_version: a run name; a taken one gets a suffix."""
    first, second = LedgerLogger("contract-versions", name="v1"), LedgerLogger("contract-versions", name="v1")
    assert (first.version, second.version) == ("v1", "v1-2")
    first.end()
    second.end()


class LoggedEpoch(BoringModel):
    def on_train_epoch_end(self):
        self.log("epoch", self.current_epoch)


def test_stored_like_mlflow(tmp_path: Path) -> None:
    """test_mlflow.py::test_mlflow_logger_dirs_creation: ``epoch`` is a metric, the hparams are params."""

    class Model(LoggedEpoch):
        def __init__(self, width: int = 32, dropout: float = 0.1):
            super().__init__()
            self.save_hyperparameters()

    logger = LedgerLogger("contract-mlflow", save_dir=tmp_path)
    model = Model()
    trainer = _trainer(tmp_path, logger=logger, limit_train_batches=5, limit_val_batches=5)
    trainer.fit(model)
    logger.end()
    view = ll.get_run(logger.run.id)
    assert "epoch" in view.metric_keys()
    assert {k: view.params[k] for k in model.hparams} == dict(model.hparams)
    assert os.listdir(trainer.checkpoint_callback.dirpath) == ["epoch=0-step=5.ckpt"]


def test_custom_logger_contract(tmp_path: Path) -> None:
    """test_logger.py::test_custom_logger / test_multiple_loggers: metrics, checkpoints, finalize."""

    class CustomModel(BoringModel):
        def training_step(self, batch, batch_idx):
            loss = self.step(batch)
            self.log("train_loss", loss)
            return {"loss": loss}

    first, second = LedgerLogger("contract-multi"), LedgerLogger("contract-multi")
    csv = CSVLogger(tmp_path, name="csv")
    trainer = _trainer(tmp_path, max_steps=2, max_epochs=None, logger=[first, second, csv])
    trainer.fit(CustomModel())
    assert trainer.state.finished
    assert first.run.id != second.run.id
    assert not first.run.ended  # finalize("success") keeps the run for later trainer calls
    for logger in (first, second):
        logger.end()
        view = ll.get_run(logger.run.id)
        assert view.status == "finished"
        assert len(view.metric("train_loss")) == 2
        assert [a.name for a in view.artifacts if a.kind == "checkpoint"] == ["epoch=0-step=2.ckpt"]
    rows = (Path(csv.log_dir) / "metrics.csv").read_text().splitlines()
    values = [float(r.split(",")[rows[0].split(",").index("train_loss")]) for r in rows[1:]]
    assert list(ll.get_run(first.run.id).metric("train_loss").value) == pytest.approx(values, rel=1e-6)


def test_step_key_sets_the_step(tmp_path: Path) -> None:
    """test_logger.py::test_adding_step_key: a logged ``step`` value is the step Lightning gives."""

    class CustomModel(BoringModel):
        logged_step = 0

        def on_train_epoch_end(self):
            self.logged_step += 1
            self.log_dict({"step": float(self.logged_step), "train_acc": self.logged_step / 10})

        def on_validation_epoch_end(self):
            self.logged_step += 1
            self.log_dict({"step": float(self.logged_step), "val_acc": self.logged_step / 10})

    logger = LedgerLogger("contract-step")
    trainer = _trainer(tmp_path, logger=logger, max_epochs=3, num_sanity_val_steps=0)
    trainer.fit(CustomModel())
    logger.end()
    view = ll.get_run(logger.run.id)
    val_acc = view.metric("val_acc")
    assert list(val_acc.step) == [1, 3, 5]
    assert list(val_acc.value) == pytest.approx([0.1, 0.3, 0.5])
    assert list(view.metric("train_acc").step) == [2, 4, 6]


@pytest.mark.parametrize(("log_checkpoints", "stored"), [("all", 2), (True, 1), (False, 0)])
def test_checkpoint_logging_modes(tmp_path: Path, log_checkpoints, stored: int) -> None:
    """test_mlflow.py::test_mlflow_log_model: ``"all"`` stores each checkpoint, ``True`` what is kept."""
    logger = LedgerLogger("contract-ckpt", save_dir=tmp_path, log_checkpoints=log_checkpoints)
    trainer = _trainer(tmp_path, logger=logger, max_epochs=2, limit_train_batches=3, limit_val_batches=3)
    trainer.fit(BoringModel())
    logger.end()
    view = ll.get_run(logger.run.id)
    names = sorted(a.name for a in view.artifacts if a.kind == "checkpoint")
    assert len(names) == stored
    if stored:
        kept = Path(trainer.checkpoint_callback.best_model_path).name
        assert view.tags[f"checkpoint/{kept}"].startswith("kept") and view.tags["checkpoint/best"] == kept
        assert all(view.tags[f"checkpoint/{n}"] == "removed" for n in names if n != kept)
    with pytest.raises(ll.errors.InvalidValueError, match="log_checkpoints"):
        LedgerLogger(log_checkpoints="some")


def test_finalize_statuses() -> None:
    """test_mlflow.py::test_mlflow_logger_finalize: success keeps the run open for the next trainer call,
    failed ends it failed."""
    logger = LedgerLogger("contract-finalize")
    _ = logger.experiment
    logger.finalize("success")
    assert not logger.run.ended
    logger.finalize("failed")
    assert ll.get_run(logger.run.id).status == "failed"


DDP_HELPERS = """
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers.logger import DummyExperiment


class RankZeroLoggerCheck(Callback):
    # test_all.py::RankZeroLoggerCheck, and the module using the run's methods through `experiment`
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        experiment = pl_module.logger.experiment
        if trainer.is_global_zero:
            assert not isinstance(experiment, DummyExperiment)
            experiment.set_tags({"from_rank_zero": "yes"})
            experiment.log_metric("seen_on_rank_zero", float(batch_idx), step=batch_idx)
        else:
            assert isinstance(experiment, DummyExperiment)
            assert experiment.something(foo="bar") is None
"""

DDP_EXPERIMENT = """
import lightning as L
from lightning.pytorch.demos.boring_classes import BoringModel

from labledger.integrations.lightning import LedgerLogger
from contract_helpers import RankZeroLoggerCheck

if __name__ == "__main__":
    logger = LedgerLogger("contract-ddp")
    trainer = L.Trainer(logger=logger, strategy="ddp_spawn", accelerator="cpu", devices=2, max_steps=1,
                        callbacks=[RankZeroLoggerCheck()], enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(BoringModel())
    print(logger.run.id)
"""


@pytest.mark.timeout(180)
def test_ddp_spawn_experiment_on_each_rank(run_script, tmp_path: Path) -> None:
    """test_all.py::test_logger_initialization: rank 0 gets the run's methods, other ranks a no-op object."""
    (tmp_path / "contract_helpers.py").write_text(DDP_HELPERS)  # importable in the spawned workers
    done = run_script(DDP_EXPERIMENT, env={"PYTHONPATH": str(tmp_path)}, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    view = ll.get_run(done.stdout.strip().splitlines()[-1])
    assert view.tags["from_rank_zero"] == "yes"
    assert list(view.metric("seen_on_rank_zero").value) == [0.0]
    assert view.params["trainer/world_size"] == 2
