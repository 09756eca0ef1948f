"""What logging costs in a small real training loop: Lightning and Keras, labledger beside the peers.

The same training runs once per logger, in interleaved rounds (so drift of the
machine hits every logger alike); the median wall time of each is compared with
the same loop without any logger.

- Lightning: an MLP on 8,192 random regression samples (batch 64, 128 steps per
  epoch, 8 epochs, validation every epoch, ``log_every_n_steps=10``, no
  checkpointing so every logger does the same work): no logger, ``CSVLogger``,
  ``MLFlowLogger`` (SQLite backend store), ``LedgerLogger``, ``LedgerCallback``;
  then with ``ModelCheckpoint(save_top_k=2)``: no logger vs ``LedgerLogger``
  (which also stores every kept checkpoint).
- Keras (``KERAS_BACKEND=torch``): an MLP on the bundled digits data (batch 32,
  20 epochs, ``validation_split=0.2``): no callback, ``keras.callbacks.CSVLogger``,
  ``LedgerCallback()`` (also stores the final model and the data's fingerprint);
  then ``LedgerCallback(checkpoint_monitor="val_loss")`` (stores every new best
  ``.keras`` checkpoint) beside Keras' own ``ModelCheckpoint(save_best_only=True)``.

Every tracker writes to a fresh store in a temporary folder. Wall time is the
figure that matters; the process's CPU time is shown beside it because it is
steadier on a shared machine. torch runs one intra-op thread by default
(``--threads``), which keeps timings steady. A peer that is not installed is skipped.

    python benchmarks/integration_overhead.py [--repeat 5] [--only lightning,keras]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("LABLEDGER_COMPLETENESS", "off")  # no end-of-run report printed in the timings

TARGET_OVERHEAD = 0.02


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def fresh(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"labledger-bench-{prefix}-"))


Timing = tuple[float, float]  # (wall seconds, CPU seconds of this process)


def clock() -> Timing:
    return time.perf_counter(), time.process_time()


def since(start: Timing) -> Timing:
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


def interleaved(setups: dict[str, Callable[[], Timing]], repeat: int) -> dict[str, list[Timing]]:
    """Run every setup once per round, rounds in turn; each setup returns its own timing."""
    times: dict[str, list[Timing]] = {name: [] for name in setups}
    for setup in setups.values():  # warm-up: imports, first-call costs
        setup()
    for _ in range(repeat):
        for name, setup in setups.items():
            times[name].append(setup())
    return times


# -- Lightning ------------------------------------------------------------------------------


def lightning_setups() -> dict[str, Callable[[], Timing]]:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from labledger.integrations.lightning import LedgerCallback, LedgerLogger

    class Regressor(L.LightningModule):
        def __init__(self, lr: float = 0.01, hidden: int = 64) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(32, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("val_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(9216, 32, generator=generator)
    y = x[:, :4].sum(dim=1, keepdim=True)
    train = DataLoader(TensorDataset(x[:8192], y[:8192]), batch_size=64)
    val = DataLoader(TensorDataset(x[8192:], y[8192:]), batch_size=256)

    def fit(
        make_logger: Callable[[Path], Any] | None,
        callbacks: Callable[[Path], list[Any]] | None = None,
        checkpoint: bool = False,
    ) -> Callable[[], Timing]:
        def run() -> Timing:
            folder = fresh("lightning")
            logger = make_logger(folder) if make_logger else False
            extra = callbacks(folder) if callbacks else []
            if checkpoint:
                extra.append(ModelCheckpoint(dirpath=folder / "ckpt", monitor="val_loss", save_top_k=2))
            torch.manual_seed(0)
            start = clock()
            trainer = L.Trainer(
                max_epochs=8,
                accelerator="cpu",
                devices=1,
                logger=logger,
                callbacks=extra,
                enable_checkpointing=checkpoint,
                enable_progress_bar=False,
                enable_model_summary=False,
                log_every_n_steps=10,
                default_root_dir=str(folder),
            )
            trainer.fit(Regressor(), train, val)
            for tracker in [logger, *extra]:
                if hasattr(tracker, "end"):
                    tracker.end()  # labledger: end the run, every point written
            return since(start)

        return run

    setups: dict[str, Callable[[], Timing]] = {
        "no logger": fit(None),
        "CSVLogger": fit(lambda d: CSVLogger(d)),
    }
    if installed("mlflow"):
        from lightning.pytorch.loggers import MLFlowLogger

        setups["MLFlowLogger"] = fit(
            lambda d: MLFlowLogger(experiment_name="bench", tracking_uri=f"sqlite:///{d}/mlflow.db")
        )
    setups["LedgerLogger"] = fit(lambda d: LedgerLogger("bench", store=d / "store"))
    # what a user pays day to day: the store already exists (the fresh-store rows include creating it)
    existing = fresh("lightning-store") / "store"
    import labledger as ll

    ll.open_store(existing)
    setups["LedgerLogger, existing store"] = fit(lambda d: LedgerLogger("bench", store=existing))
    setups["LedgerCallback"] = fit(None, lambda d: [LedgerCallback("bench", store=d / "store")])
    setups["no logger + ModelCheckpoint"] = fit(None, checkpoint=True)
    setups["LedgerLogger + ModelCheckpoint"] = fit(
        lambda d: LedgerLogger("bench", store=d / "store"), None, True
    )
    return setups


# -- Keras ----------------------------------------------------------------------------------


def keras_setups() -> dict[str, Callable[[], Timing]]:
    import keras
    from sklearn.datasets import load_digits

    from labledger.integrations.keras import LedgerCallback

    features, labels = load_digits(return_X_y=True)
    features = (features / 16.0).astype("float32")

    def fit(make_callbacks: Callable[[Path], list[Any]]) -> Callable[[], Timing]:
        def run() -> Timing:
            folder = fresh("keras")
            callbacks = make_callbacks(folder)
            keras.utils.set_random_seed(0)
            start = clock()
            model = keras.Sequential(
                [
                    keras.Input((64,)),
                    keras.layers.Dense(64, activation="relu"),
                    keras.layers.Dense(10, activation="softmax"),
                ]
            )
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(
                features,
                labels,
                epochs=20,
                batch_size=32,
                validation_split=0.2,
                verbose=0,
                callbacks=callbacks,
            )
            return since(start)

        return run

    return {
        "no callback": fit(lambda d: []),
        "keras CSVLogger": fit(lambda d: [keras.callbacks.CSVLogger(str(d / "log.csv"))]),
        "LedgerCallback": fit(lambda d: [LedgerCallback("bench", store=d / "store")]),
        "keras ModelCheckpoint(save_best_only)": fit(
            lambda d: [
                keras.callbacks.ModelCheckpoint(str(d / "best.keras"), "val_loss", save_best_only=True)
            ]
        ),
        "LedgerCallback + checkpoints": fit(
            lambda d: [LedgerCallback("bench", store=d / "store", checkpoint_monitor="val_loss")]
        ),
    }


# -- report ---------------------------------------------------------------------------------


def table(title: str, times: dict[str, list[Timing]], baselines: dict[str, str]) -> str:
    lines = [
        title,
        "| setup | baseline | wall s (median) | × baseline | wall overhead | CPU s (median) | CPU overhead |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    first = next(iter(times))
    for name, values in times.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        base_name = baselines.get(name, first)
        base = times[base_name]
        wall_ratio = wall / statistics.median(v[0] for v in base)
        cpu_ratio = cpu / statistics.median(v[1] for v in base)
        lines.append(
            f"| {name} | {base_name} | {wall:.3f} | {wall_ratio:.3f} | {100 * (wall_ratio - 1):+.1f}% "
            f"| {cpu:.3f} | {100 * (cpu_ratio - 1):+.1f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="measured rounds per setup (after a warm-up)")
    parser.add_argument("--only", default="lightning,keras", help="comma-separated: lightning, keras")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: steadier timings)")
    args = parser.parse_args(argv)
    if installed("torch"):
        import torch

        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    import logging

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    wanted = set(args.only.split(","))
    print(
        f"# integration overhead — Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{args.repeat} rounds after a warm-up, torch threads {args.threads}\n"
    )
    if "lightning" in wanted:
        if installed("lightning"):
            times = interleaved(lightning_setups(), args.repeat)
            baselines = {"LedgerLogger + ModelCheckpoint": "no logger + ModelCheckpoint"}
            print(table("## PyTorch Lightning (8 epochs × 128 steps)", times, baselines))
            if not installed("mlflow"):
                print("(MLFlowLogger skipped: mlflow is not installed)")
            print()
        else:
            print("(Lightning skipped: not installed)\n")
    if "keras" in wanted:
        if installed("keras"):
            times = interleaved(keras_setups(), args.repeat)
            baselines = {"LedgerCallback + checkpoints": "keras ModelCheckpoint(save_best_only)"}
            print(
                table(
                    f"## Keras {os.environ['KERAS_BACKEND']} backend (20 epochs × 45 steps)", times, baselines
                )
            )
            print()
        else:
            print("(Keras skipped: not installed)\n")
    print(f"target: labledger adds at most {100 * TARGET_OVERHEAD:.0f}% to the loop's wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
