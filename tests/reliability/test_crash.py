"""Crashes: SIGKILL and SIGTERM in the middle of logging, an exception inside a framework callback."""

from __future__ import annotations

import signal
import time

import pytest

import labledger as ll

from .conftest import integrity

FLUSH_INTERVAL = 0.2
#: how late a point logged one flush window before the kill may still be on its way to disk
SLACK = 0.5

LOGGER = """
import time
import labledger as ll

run = ll.start_run("crash", name="victim")
print(run.id, flush=True)
i = 0
while True:
    run.log_metric("t", time.time(), step=i)  # the value is when the point was logged
    i += 1
    if i % 100 == 0:
        time.sleep(0.001)
"""

COUNTING_LOGGER = """
import sys, time
import labledger as ll

logged = 0
try:
    with ll.start_run("crash", name="terminated") as run:
        print(run.id, flush=True)
        while True:
            run.log_metric("x", float(logged), step=logged)
            logged += 1
            if logged % 100 == 0:
                time.sleep(0.001)
finally:
    sys.stderr.write(f"\\nlogged={logged}\\n")
"""


def _wait_for_points(run_id: str, at_least: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = ll.open_store().query("SELECT count FROM metric_summary WHERE run_id = ?", (run_id,))
        if rows and rows[0]["count"] >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {at_least} stored points")


@pytest.mark.timeout(60)
def test_sigkill_leaves_an_intact_store_a_crashed_run_and_every_point_older_than_a_flush_window(
    store_path, spawn
):
    proc = spawn(LOGGER, env={"LABLEDGER_FLUSH_INTERVAL": str(FLUSH_INTERVAL)})
    run_id = proc.stdout.readline().strip()
    _wait_for_points(run_id, 1)
    time.sleep(1.0)  # several flush windows of steady logging
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    assert integrity(store_path / "labledger.db") == "ok"
    view = ll.get_run(run_id)
    assert view.status == "crashed"
    history = view.metric("t")
    steps = history["step"].tolist()
    assert steps == list(range(len(steps))), "the stored points are a gapless prefix of what was logged"
    # every point logged before (kill - one flush window) is there: the newest stored point is
    # at most one flush window (plus the time a write takes on a busy machine) older than the kill
    assert history["value"].iloc[-1] >= killed_at - FLUSH_INTERVAL - SLACK
    assert view.summary["t"]["count"] == len(steps)


@pytest.mark.timeout(60)
def test_sigterm_marks_the_run_killed_and_flushes_everything_logged(store_path, spawn):
    proc = spawn(COUNTING_LOGGER, env={"LABLEDGER_FLUSH_INTERVAL": "5"})  # only the end writes
    run_id = proc.stdout.readline().strip()
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    logged = int(err.rsplit("logged=", 1)[1].split()[0])

    assert integrity(store_path / "labledger.db") == "ok"
    view = ll.get_run(run_id)
    assert view.status == "killed"
    assert "Terminated" in (view.error or "") or "SIGTERM" in (view.error or "")
    steps = view.metric("x")["step"].tolist()
    # the signal may land inside the call that would have made it `logged + 1`
    assert len(steps) in (logged, logged + 1) and logged > 1000
    assert steps == list(range(len(steps)))


LIGHTNING_FAILING_CALLBACK = """
import warnings
warnings.filterwarnings("ignore")
import torch
import lightning.pytorch as pl
from labledger.integrations.lightning import LedgerCallback


class Boom(pl.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 20:  # in the second epoch: the first one's metrics are logged
            raise RuntimeError("boom inside a callback")


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


torch.manual_seed(0)
data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
loader = torch.utils.data.DataLoader(data, batch_size=4)
trainer = pl.Trainer(
    max_epochs=3, callbacks=[LedgerCallback("crash", name="callback"), Boom()], logger=False,
    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    log_every_n_steps=1,
)
trainer.fit(Tiny(), loader)
"""


KERAS_FAILING_CALLBACK = """
import os, warnings
warnings.filterwarnings("ignore")
import numpy as np
import keras
from labledger.integrations.keras import LedgerCallback


class Boom(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.model.optimizer.iterations.numpy() == 20:  # in the second epoch
            raise RuntimeError("boom inside a callback")


keras.utils.set_random_seed(0)
x, y = np.random.rand(64, 4).astype("float32"), np.random.rand(64, 1).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
model.fit(x, y, batch_size=4, epochs=3, verbose=0,
          callbacks=[LedgerCallback("crash", name="callback", log_model=False), Boom()])
"""

FAILING_CALLBACKS = {"lightning": LIGHTNING_FAILING_CALLBACK, "keras": KERAS_FAILING_CALLBACK}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("framework", ["lightning", "keras"])
def test_an_exception_inside_a_framework_callback_marks_the_run_failed(store_path, spawn, framework):
    pytest.importorskip(framework)
    pytest.importorskip(f"labledger.integrations.{framework}")
    proc = spawn(FAILING_CALLBACKS[framework], env={"KERAS_BACKEND": "torch"})
    _, err = proc.communicate(timeout=110)
    assert proc.returncode == 1 and "boom inside a callback" in err, err[-2000:]

    assert integrity(store_path / "labledger.db") == "ok"
    view = ll.get_run("crash/callback")
    assert view.status == "failed"
    assert "boom inside a callback" in (view.error or "")
    assert view.summary, "what was logged before the exception is kept"
    assert all(s["last_step"] <= 20 for s in view.summary.values())
