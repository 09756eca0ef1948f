"""PyTorch Lightning integration: real tiny trainings on the CPU, checked against what Lightning reports."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("lightning")

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import labledger as ll
from labledger.integrations.lightning import LedgerCallback, LedgerLogger

from .test_lightning_runs import LIGHTNING_WARNINGS

pytestmark = [
    *LIGHTNING_WARNINGS,
    # CSVLogger cannot write a torch dtype hyperparameter to its YAML file
    pytest.mark.filterwarnings("ignore:Skipping 'dtype' parameter because it is not possible:UserWarning"),
]


class Regressor(L.LightningModule):
    """A two-layer MLP on random regression data."""

    def __init__(
        self,
        lr: float = 0.05,
        hidden: int = 8,
        fail_at_epoch: int | None = None,
        activation: type[nn.Module] = nn.ReLU,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(4, hidden, dtype=dtype), activation(), nn.Linear(hidden, 1, dtype=dtype)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        if self.hparams.fail_at_epoch == self.current_epoch:
            raise RuntimeError("diverged on purpose")
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class Interrupted(Regressor):
    def training_step(self, batch, batch_idx):
        if self.current_epoch == 1:
            raise KeyboardInterrupt
        return super().training_step(batch, batch_idx)


@pytest.fixture
def loaders() -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=generator)
    y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(96, 1, generator=generator)
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16)
    return train, val


def _trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    options = {
        "max_epochs": 3,
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": str(tmp_path),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "log_every_n_steps": 1,
    }
    return L.Trainer(**{**options, **kwargs})


def test_logger_records_fit_and_test_in_one_run(tmp_path: Path, loaders) -> None:
    train, val = loaders
    L.seed_everything(7)
    logger = LedgerLogger("lit-mlp", save_dir=tmp_path / "logs", hypothesis="an MLP fits a sum")
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=2)
    trainer = _trainer(tmp_path, logger=logger, callbacks=[checkpoint], gradient_clip_val=1.0)
    model = Regressor()
    trainer.fit(model, train, val)
    fitted = {k: float(v) for k, v in trainer.callback_metrics.items()}
    tested = trainer.test(model, val)[0]
    logger.end()

    view = ll.get_run(logger.run.id)
    assert view.status == "finished" and view.experiment == "lit-mlp"
    # save_dir / name / version as Lightning users expect
    assert logger.name == "lit-mlp" and logger.version == view.name
    assert Path(checkpoint.dirpath) == tmp_path / "logs" / "lit-mlp" / view.name / "checkpoints"
    params = view.params
    assert params["lr"] == 0.05 and params["hidden"] == 8
    # framework objects become plain values
    assert params["activation"] == "torch.nn.modules.activation.ReLU" and params["dtype"] == "torch.float32"
    assert params["trainer/max_epochs"] == 3 and params["trainer/precision"] == "32-true"
    assert params["trainer/gradient_clip_val"] == 1.0 and params["trainer/accumulate_grad_batches"] == 1
    assert params["trainer/devices"] == 1 and params["trainer/strategy"] == "SingleDeviceStrategy"
    assert params["model/class"] == f"{Regressor.__module__}.Regressor"
    assert params["model/params/total"] == sum(p.numel() for p in model.parameters())
    assert params["seed"] == 7
    # metrics: one val_loss per epoch, the last equal to what the trainer reports
    val_loss = view.metric("val_loss")
    assert list(val_loss.epoch) == [0, 1, 2]
    assert val_loss.value.iloc[2] == pytest.approx(fitted["val_loss"])
    assert view.metric("train_loss_epoch").value.iloc[-1] == pytest.approx(fitted["train_loss_epoch"])
    assert list(view.metric("train_loss_step").step) == list(range(12))
    assert view.metric("test_loss").value.iloc[-1] == pytest.approx(tested["test_loss"])
    assert [d["role"] for d in view.datasets] == ["train", "validation"]


def test_logger_stores_the_checkpoints_modelcheckpoint_keeps(tmp_path: Path, loaders) -> None:
    train, val = loaders
    logger = LedgerLogger("lit-ckpt", save_dir=tmp_path)
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=2)
    trainer = _trainer(tmp_path, logger=logger, callbacks=[checkpoint])
    trainer.fit(Regressor(), train, val)
    logger.end()

    view = ll.get_run(logger.run.id)
    on_disk = sorted(os.listdir(checkpoint.dirpath))
    stored = {a.name: a for a in view.artifacts if a.kind == "checkpoint"}
    assert sorted(stored) == on_disk and len(on_disk) == 2  # the worst of 3 was deleted: not stored
    assert all(view.tags[f"checkpoint/{n}"].startswith("kept, rank ") for n in stored)
    for name in stored:
        meta = stored[name].metadata
        score = float(checkpoint.best_k_models[os.path.join(checkpoint.dirpath, name)])
        assert meta["score"] == pytest.approx(score)
        assert meta["monitor"] == "val_loss" and meta["global_rank"] == 0
        assert name == f"epoch={meta['epoch']}-step={meta['step']}.ckpt"
    best = view.tags["checkpoint/best"]
    assert best == Path(checkpoint.best_model_path).name
    assert view.tags[f"checkpoint/{best}"] == "kept, rank 1"
    # the stored best checkpoint loads back and predicts like Lightning's own file
    x = torch.randn(5, 4)
    restored, reference = _restore(stored[best].path), _restore(checkpoint.best_model_path)
    with torch.no_grad():
        assert torch.equal(restored(x), reference(x))


def _restore(path: str | Path) -> Regressor:
    """A Regressor from a checkpoint file, as ``load_from_checkpoint`` rebuilds it (any Lightning version)."""
    saved = torch.load(path, weights_only=False)
    model = Regressor(**saved["hyper_parameters"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


LIGHTNING_22 = tuple(int(p) for p in L.__version__.split(".")[:2]) >= (2, 2)


@pytest.mark.skipif(
    not LIGHTNING_22, reason="Lightning 2.1's CSVLogger cannot write a torch.dtype hyperparameter to YAML"
)
def test_callback_keeps_the_users_logger(tmp_path: Path, loaders) -> None:
    train, val = loaders
    L.seed_everything(11)
    csv = CSVLogger(tmp_path, name="csv")
    callback = LedgerCallback("lit-callback")
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1, dirpath=tmp_path / "ckpt")
    trainer = _trainer(tmp_path, logger=csv, callbacks=[callback, checkpoint, EarlyStopping("val_loss")])
    model = Regressor(hidden=6)
    trainer.fit(model, train, val)
    fitted = {k: float(v) for k, v in trainer.callback_metrics.items()}
    trainer.validate(model, val)
    callback.end()

    assert (Path(csv.log_dir) / "metrics.csv").exists()  # the user's logger still logs
    view = ll.get_run(callback.run.id)
    assert view.status == "finished"
    params = view.params
    assert params["hidden"] == 6 and params["seed"] == 11 and params["trainer/max_epochs"] == 3
    assert params["model/params/trainable"] == sum(p.numel() for p in model.parameters())
    # the keys the user's logger got: per step and per epoch
    train_keys = set(view.metrics[view.metrics.key.str.startswith("train")].key)
    assert train_keys == {"train_loss_step", "train_loss_epoch"}
    assert list(view.metric("train_loss_epoch").epoch) == [0, 1, 2]
    val_loss = view.metric("val_loss")
    assert list(val_loss.epoch)[:3] == [0, 1, 2] and len(val_loss) == 4  # + trainer.validate()
    assert val_loss.value.iloc[2] == pytest.approx(fitted["val_loss"])
    assert view.metric("train_loss_epoch").value.iloc[-1] == pytest.approx(fitted["train_loss_epoch"])
    # the kept checkpoint, with the epoch and step Lightning saved it at
    ckpts = [a for a in view.artifacts if a.kind == "checkpoint"]
    best = next(a for a in ckpts if a.name == view.tags["checkpoint/best"])
    assert best.name == Path(checkpoint.best_model_path).name
    assert best.name == f"epoch={best.metadata['epoch']}-step={best.metadata['step']}.ckpt"


def test_callback_subclass_keeps_its_own_batch_hooks(tmp_path: Path, loaders) -> None:
    """The per-batch hooks LedgerCallback turns off stay on where a subclass defines them."""
    train, val = loaders

    class CountingCallback(LedgerCallback):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.batches = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.batches += 1
            pl_module.log("batch_seen", float(self.batches))

    plain, counting = LedgerCallback("lit-hooks"), CountingCallback("lit-hooks")
    assert plain.on_train_batch_end is None and plain.on_before_backward is None
    assert plain.on_train_epoch_end is not None
    trainer = _trainer(tmp_path, logger=False, callbacks=[counting])
    trainer.fit(Regressor(), train, val)
    counting.end()
    assert counting.batches == 3 * len(train)
    assert ll.get_run(counting.run.id).summary["batch_seen"]["last"] == 3 * len(train)


@pytest.mark.parametrize("integration", ["logger", "callback"])
def test_failing_training_step_leaves_a_failed_run(tmp_path: Path, loaders, integration: str) -> None:
    train, val = loaders
    if integration == "logger":
        tracker = LedgerLogger("lit-fail")
        trainer = _trainer(tmp_path, logger=tracker)
    else:
        tracker = LedgerCallback("lit-fail")
        trainer = _trainer(tmp_path, logger=False, callbacks=[tracker])
    with pytest.raises(RuntimeError, match="diverged on purpose"):
        trainer.fit(Regressor(fail_at_epoch=1), train, val)
    view = ll.get_run(tracker.run.id)
    assert view.status == "failed"
    assert "diverged on purpose" in view.error
    assert list(view.metric("val_loss").epoch) == [0]  # what epoch 0 logged is kept
    assert view.params["lr"] == 0.05


@pytest.mark.filterwarnings("ignore:Detected KeyboardInterrupt")
def test_interrupt_marks_the_run_killed(tmp_path: Path, loaders) -> None:
    train, val = loaders
    logger = LedgerLogger("lit-kill")
    trainer = _trainer(tmp_path, logger=logger)
    with contextlib.suppress(SystemExit):  # Lightning ≥ 2.2 turns Ctrl-C into a graceful exit
        trainer.fit(Interrupted(), train, val)
    view = ll.get_run(logger.run.id)
    assert view.status == "killed"
    assert len(view.metric("val_loss")) == 1


def test_a_given_run_is_used_and_left_open(tmp_path: Path, loaders) -> None:
    train, val = loaders
    with ll.start_run("lit-given") as run:
        trainer = _trainer(tmp_path, max_epochs=1, logger=LedgerLogger(run=run))
        trainer.fit(Regressor(), train, val)
        assert not run.ended
        run.log_metric("extra", 1.0)
    view = ll.get_run(run.id)
    assert view.status == "finished" and "val_loss" in view.summary and "extra" in view.summary


@pytest.mark.filterwarnings("ignore:np.find_common_type is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'train_dataloader' does not have many workers")
def test_pytorch_lightning_package(tmp_path: Path, loaders) -> None:
    pl = pytest.importorskip("pytorch_lightning")
    train, _ = loaders

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    logger = LedgerLogger("ptl")
    trainer = pl.Trainer(
        max_epochs=2,
        logger=logger,
        default_root_dir=str(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(Module(), train)
    logger.end()
    view = ll.get_run(logger.run.id)
    assert view.params["trainer/max_epochs"] == 2
    assert view.summary["train_loss"]["count"] == 8
    assert view.summary["train_loss"]["last"] == pytest.approx(float(trainer.callback_metrics["train_loss"]))
    kept = [n for n, v in view.tags.items() if n.startswith("checkpoint/epoch") and v.startswith("kept")]
    assert kept == [f"checkpoint/{Path(trainer.checkpoint_callback.best_model_path).name}"]


DDP_SCRIPT = """
import json
import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import labledger as ll
from labledger.integrations.lightning import LedgerLogger


class Module(L.LightningModule):
    def __init__(self, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("train_loss", loss, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


if __name__ == "__main__":
    L.seed_everything(0)
    x = torch.randn(32, 4)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    logger = LedgerLogger("lit-ddp")
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp_spawn", logger=logger,
                        callbacks=[ModelCheckpoint(monitor="val_loss")], enable_progress_bar=False,
                        enable_model_summary=False, log_every_n_steps=1)
    trainer.fit(Module(), data, data)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    print(json.dumps({"run": logger.run.id, "metrics": metrics}))
"""


@pytest.mark.slow
def test_ddp_spawn_two_processes_write_one_run(run_script) -> None:
    done = run_script(DDP_SCRIPT, env={"LABLEDGER_COMPLETENESS": "off"}, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    counts = {e["name"]: e["runs"] for e in ll.experiments()}
    assert counts == {"lit-ddp": 1}  # only global rank 0 wrote, into the main process's run
    view = ll.get_run(report["run"])
    assert view.status == "finished"
    assert view.params["trainer/world_size"] == 2 and view.params["trainer/devices"] == 2
    assert view.params["model/class"] == "__main__.Module"
    assert list(view.metric("val_loss").epoch) == [0, 1]
    assert view.metric("val_loss").value.iloc[-1] == pytest.approx(report["metrics"]["val_loss"])
    assert view.metric("train_loss_epoch").value.iloc[-1] == pytest.approx(
        report["metrics"]["train_loss_epoch"]
    )
    assert view.tags["checkpoint/best"].endswith(".ckpt")
