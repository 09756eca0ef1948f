"""Lightning checkpoints: what ModelCheckpoint keeps, ``last.ckpt``, early stopping, resuming.

Real trainings on tiny data on the CPU (the model and data of ``test_lightning_runs``).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

pytest.importorskip("lightning")

from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

import labledger as ll
from labledger.integrations._lightning_tap import Tap
from labledger.integrations.lightning import LedgerLogger

from .test_lightning_runs import LIGHTNING_WARNINGS, Regressor, _trainer, tiny_loaders

pytestmark = [
    pytest.mark.timeout(120),
    *LIGHTNING_WARNINGS,
]


@pytest.fixture
def loaders():
    return tiny_loaders()


def test_save_all_checkpoints_without_monitor_are_all_kept(tmp_path: Path, loaders) -> None:
    train, val = loaders
    logger = LedgerLogger("keep-all", save_dir=tmp_path)
    checkpoint = ModelCheckpoint(save_top_k=-1)
    trainer = _trainer(tmp_path, logger=logger, callbacks=[checkpoint], max_epochs=3)
    trainer.fit(Regressor(), train, val)
    logger.end()
    view = ll.get_run(logger.run.id)
    on_disk = sorted(os.listdir(checkpoint.dirpath))
    assert len(on_disk) == 3
    stored = sorted(a.name for a in view.artifacts if a.kind == "checkpoint")
    assert stored == on_disk
    assert all(view.tags[f"checkpoint/{n}"].startswith("kept") for n in stored)


@pytest.mark.filterwarnings("ignore:The dirpath has changed from:UserWarning")  # a new run, a new folder
def test_resume_records_where_it_came_from(tmp_path: Path, loaders) -> None:
    train, val = loaders
    first = LedgerLogger("resume", save_dir=tmp_path)
    checkpoint = ModelCheckpoint(save_last=True)
    _trainer(tmp_path, logger=first, callbacks=[checkpoint]).fit(Regressor(), train, val)
    first.end()
    stored = ll.get_run(first.run.id).artifact("last.ckpt")

    later = LedgerLogger("resume", save_dir=tmp_path)
    trainer = _trainer(tmp_path, logger=later, max_epochs=4)
    trainer.fit(Regressor(), train, val, ckpt_path=str(stored.path))  # the store's copy
    later.end()
    view = ll.get_run(later.run.id)
    assert view.params["resumed_from/run"] == first.run.id
    same_bytes = [a.name for a in ll.get_run(first.run.id).artifacts if a.sha256 == stored.sha256]
    assert view.params["resumed_from/artifact"] in same_bytes  # last.ckpt, or the epoch's file it equals
    assert view.params["resumed_from/checkpoint"] == str(stored.path)
    assert view.params["resumed_from/sha256"] == stored.sha256
    assert list(view.metric("train_loss_step").step) == list(range(8, 16))  # the step count goes on

    # the file on disk of a stored checkpoint is found by its content
    again = LedgerLogger("resume", save_dir=tmp_path)
    _trainer(tmp_path / "again", logger=again, max_epochs=3).fit(
        Regressor(), train, val, ckpt_path=checkpoint.last_model_path
    )
    again.end()
    params = ll.get_run(again.run.id).params
    assert (params["resumed_from/run"], params["resumed_from/artifact"]) == (first.run.id, "last.ckpt")


@pytest.mark.parametrize("log_checkpoints", [True, "all"])
def test_callback_settings_stopped_epoch_and_one_last_checkpoint(
    tmp_path: Path, loaders, log_checkpoints
) -> None:
    train, val = loaders
    logger = LedgerLogger("early-stop", save_dir=tmp_path, log_checkpoints=log_checkpoints)
    stopper = EarlyStopping("val_loss", patience=2, min_delta=10.0)  # no epoch improves by 10: stops
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1, save_last=True)
    trainer = _trainer(tmp_path, logger=logger, callbacks=[stopper, checkpoint], max_epochs=20)
    trainer.fit(Regressor(), train, val)
    logger.end()
    view = ll.get_run(logger.run.id)
    params = view.params
    assert (
        params["callbacks/EarlyStopping/patience"] == 2
        and params["callbacks/EarlyStopping/min_delta"] == 10.0
    )
    assert params["callbacks/EarlyStopping/monitor"] == "val_loss"
    assert params["callbacks/EarlyStopping/mode"] == "min"
    assert (
        params["callbacks/ModelCheckpoint/save_top_k"] == 1 and params["callbacks/ModelCheckpoint/save_last"]
    )
    assert params["callbacks/ModelCheckpoint/monitor"] == "val_loss"
    assert stopper.stopped_epoch == 2 and trainer.current_epoch == 3
    assert view.metric("stopped_epoch").value.iloc[-1] == 2.0
    stored = {a.name: a for a in view.artifacts if a.kind == "checkpoint"}
    best = Path(checkpoint.best_model_path).name
    last = view.tags["checkpoint/last"]
    with open(checkpoint.last_model_path, "rb") as f, stored[last].open() as copy:
        assert copy.read() == f.read()  # the last one is the file on disk
    if log_checkpoints is True:  # what ModelCheckpoint keeps: best and last
        assert set(stored) == {best, "last.ckpt"} and last == "last.ckpt"
    else:  # every version written, the current one named by the tag
        lasts = sorted(n for n in stored if n.startswith("last"))
        assert lasts == ["last-epoch=1-step=8.ckpt", "last-epoch=2-step=12.ckpt", "last.ckpt"]
        assert last == "last-epoch=2-step=12.ckpt"
        assert [view.tags[f"checkpoint/{n}"] for n in lasts] == ["removed", "kept (last)", "removed"]


def test_a_tapped_logger_pickles_without_the_tap(tmp_path: Path) -> None:
    """LedgerCallback taps the first logger's ``log_metrics``; a copy made meanwhile is a plain logger."""
    logger, seen = CSVLogger(tmp_path), []
    tap = Tap(logger, "log_metrics", lambda metrics, step=None: seen.append((step, metrics)))
    logger.log_metrics({"a": 1.0}, step=0)
    copy = pickle.loads(pickle.dumps(logger))
    copy.log_metrics({"b": 2.0}, step=1)
    assert seen == [(0, {"a": 1.0})] and not isinstance(vars(copy).get("log_metrics"), Tap)
    tap.remove()
    assert "log_metrics" not in vars(logger)
