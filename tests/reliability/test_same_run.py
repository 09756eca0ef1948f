"""Concurrency on one run: threads, flushes and a framework callback logging alongside the user."""

from __future__ import annotations

import threading

import pytest

import labledger as ll

from .conftest import integrity

N = 20_000


@pytest.mark.timeout(60)
def test_threads_logging_flushing_and_tagging_one_run_lose_and_reorder_nothing(run, store_path, monkeypatch):
    monkeypatch.setenv("LABLEDGER_FLUSH_INTERVAL", "0.01")  # the background writer competes too
    start = threading.Barrier(4)
    stop_flushing = threading.Event()

    def logger(offset: float, key: str) -> None:
        start.wait()
        for i in range(N):
            run.log_metric(key, float(i), step=i)
            run.log_metrics({"shared": offset + i, f"{key}/dict": float(i)})  # default steps
            if i % 2000 == 0:
                run.set_tags({f"{key}/progress": str(i)})

    def params() -> None:
        start.wait()
        for i in range(200):
            run.log_params({f"p{i}": i})

    def flusher() -> None:
        start.wait()
        while not stop_flushing.is_set():
            run.flush()

    threads = [
        threading.Thread(target=logger, args=(1e6, "a")),
        threading.Thread(target=logger, args=(2e6, "b")),
        threading.Thread(target=params),
    ]
    flushing = threading.Thread(target=flusher)
    for t in [*threads, flushing]:
        t.start()
    for t in threads:
        t.join()
    stop_flushing.set()
    flushing.join()
    run.end()

    assert integrity(store_path / "labledger.db") == "ok"
    view = ll.get_run(run.id)
    assert view.params == {f"p{i}": i for i in range(200)}
    last = str((N - 1) // 2000 * 2000)
    assert view.tags == {"a/progress": last, "b/progress": last}
    for key in ("a", "b", "a/dict", "b/dict"):
        history = view.metric(key)
        assert history["step"].tolist() == list(range(N))
        assert history["value"].tolist() == [float(i) for i in range(N)]
    shared = view.metric("shared")
    assert shared["step"].tolist() == list(range(2 * N)), "default steps are unique and in order"
    values = shared["value"].tolist()
    for offset in (1e6, 2e6):  # each thread's points keep their order and none is lost
        assert [v - offset for v in values if offset <= v < offset + N] == [float(i) for i in range(N)]
    assert view.summary["shared"]["count"] == 2 * N


LIGHTNING_WITH_MANUAL_LOGGING = """
import threading, warnings
warnings.filterwarnings("ignore")
import torch
import lightning.pytorch as pl
import labledger as ll
from labledger.integrations.lightning import LedgerCallback

BATCHES, EPOCHS = 16, 3


class Tiny(pl.LightningModule):
    def __init__(self, run):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.run = run

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        self.run.log_metric("manual/batch_loss", loss.detach(), step=self.global_step)  # by hand
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


torch.manual_seed(0)
data = torch.utils.data.TensorDataset(torch.randn(BATCHES * 4, 4), torch.randn(BATCHES * 4, 1))
loader = torch.utils.data.DataLoader(data, batch_size=4)
with ll.start_run("same-run", name="callback-and-hand") as run:
    done = threading.Event()

    def monitor():  # a second thread logging by hand, e.g. system metrics
        i = 0
        while not done.is_set():
            run.log_metric("manual/monitor", float(i), step=i)
            i += 1
        print("monitor", i, flush=True)

    thread = threading.Thread(target=monitor)
    thread.start()
    trainer = pl.Trainer(
        max_epochs=EPOCHS, callbacks=[LedgerCallback(run=run)], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(Tiny(run), loader)
    done.set()
    thread.join()
    assert not run.ended, "a callback given the user's run must not end it"
    run.log_metric("manual/after_fit", 1.0)
print("status", run.status, flush=True)
"""


KERAS_WITH_MANUAL_LOGGING = """
import threading, warnings
warnings.filterwarnings("ignore")
import numpy as np
import keras
import labledger as ll
from labledger.integrations.keras import LedgerCallback

BATCHES, EPOCHS = 16, 3


class ByHand(keras.callbacks.Callback):  # the user's own logging, batch by batch
    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy()) - 1
        self.run.log_metric("manual/batch_loss", logs["loss"], step=step)


keras.utils.set_random_seed(0)
x = np.random.rand(BATCHES * 4, 4).astype("float32")
y = np.random.rand(BATCHES * 4, 1).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
with ll.start_run("same-run", name="callback-and-hand") as run:
    done = threading.Event()

    def monitor():
        i = 0
        while not done.is_set():
            run.log_metric("manual/monitor", float(i), step=i)
            i += 1
        print("monitor", i, flush=True)

    thread = threading.Thread(target=monitor)
    thread.start()
    model.fit(x, y, batch_size=4, epochs=EPOCHS, verbose=0,
              callbacks=[LedgerCallback(run=run, log_every_n_batches=1, log_model=False), ByHand(run)])
    done.set()
    thread.join()
    assert not run.ended, "a callback given the user's run must not end it"
    run.log_metric("manual/after_fit", 1.0)
print("status", run.status, flush=True)
"""

WITH_MANUAL_LOGGING = {"lightning": LIGHTNING_WITH_MANUAL_LOGGING, "keras": KERAS_WITH_MANUAL_LOGGING}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("framework", ["lightning", "keras"])
def test_a_framework_callback_and_the_user_log_to_one_run_at_once(store_path, spawn, framework):
    pytest.importorskip(framework)
    pytest.importorskip(f"labledger.integrations.{framework}")
    proc = spawn(
        WITH_MANUAL_LOGGING[framework], env={"LABLEDGER_FLUSH_INTERVAL": "0.05", "KERAS_BACKEND": "torch"}
    )
    out, err = proc.communicate(timeout=110)
    assert proc.returncode == 0, err[-3000:]
    monitored = int(out.split("monitor", 1)[1].split()[0])
    assert "status finished" in out

    assert integrity(store_path / "labledger.db") == "ok"
    view = ll.get_run("same-run/callback-and-hand")
    assert view.status == "finished"
    batches = view.metric("manual/batch_loss")
    assert batches["step"].tolist() == list(range(16 * 3))
    monitor = view.metric("manual/monitor")
    assert monitor["step"].tolist() == list(range(monitored))
    assert monitor["value"].tolist() == [float(i) for i in range(monitored)]
    assert view.summary["manual/after_fit"]["count"] == 1
    epoch_keys = [k for k in view.summary if k in ("train_loss", "train_loss_epoch", "loss")]
    assert epoch_keys, f"the callback's metrics are there too: {sorted(view.summary)}"
    assert all(view.summary[k]["count"] == 3 for k in epoch_keys), {k: view.summary[k] for k in epoch_keys}
    if framework == "keras":  # the callback's batch logs and the user's, side by side
        assert view.summary["batch/loss"]["count"] == 16 * 3
