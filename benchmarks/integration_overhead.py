"""What logging costs in a small real training loop: Lightning and Keras, labledger beside the peers.

The same training runs once per setup, in interleaved rounds (so drift of the
machine hits every setup alike), each round in a new shuffled order. A setup's
overhead is the median, over the rounds, of its wall time divided by its
baseline's wall time in the same round, with a 95 % bootstrap interval for that
median. "no logger, again" runs the baseline a second time: its overhead shows
the noise of the measurement.

- Lightning: an MLP on 8,192 random regression samples (batch 64, 128 steps per
  epoch, 8 epochs, validation every epoch, ``log_every_n_steps=10``, no
  checkpointing so every logger does the same work): no logger, an empty
  ``Logger`` and an empty ``Callback`` (what Lightning itself spends on any
  logger or callback), ``CSVLogger``, ``MLFlowLogger`` (SQLite backend store),
  ``LedgerLogger``, ``LedgerCallback``; then with
  ``ModelCheckpoint(save_top_k=2)``: no logger vs ``LedgerLogger`` (which also
  stores every kept checkpoint). Then the same loop 4 times longer (32 epochs,
  ``--long-epochs``) with no logger, ``CSVLogger`` and ``LedgerLogger``: what
  is fixed per run and what grows with the steps.
- Keras (``KERAS_BACKEND=torch``): an MLP on the bundled digits data (batch 32,
  20 epochs, ``validation_split=0.2``): no callback, ``keras.callbacks.CSVLogger``,
  ``LedgerCallback()`` (also stores the final model and the data's fingerprint);
  then ``LedgerCallback(checkpoint_monitor="val_loss")`` (saves and stores every
  new best ``.keras`` checkpoint) against Keras' own
  ``ModelCheckpoint(save_best_only=True)``, which saves the same files.
  Every Keras setup also holds a silent callback with a batch-end hook, as
  ``fit(verbose=1)``'s progress bar does: Keras then calls every callback in
  the training thread. Without one, Keras hands batch hooks to a thread pool,
  which on 2 cores costs about 9 % and makes timings scatter; a callback with a
  batch hook (``ModelCheckpoint``) would then look cheaper than none.

"own ms" is the time spent inside the logger's or callback's own methods
(timed through a subclass), plus, for labledger, the CPU time of its
background threads (Linux): the work the tracker itself adds, free of the
machine's noise. It misses indirect costs (caches, the interpreter lock);
the wall-time overhead includes them.

Each tracker keeps its logs in one folder or store from run to run, as a user's
do (the warm-up round creates them); the "new store" rows time labledger's
first run, which also creates the store. Before each timed run the garbage collector
runs and freezes what exists (``gc.freeze``), so a full collection of the
benchmark's own objects never lands inside one setup's timing. torch runs one
intra-op thread (``--threads``). A peer that is not installed is skipped.

    python benchmarks/integration_overhead.py [--repeat 25] [--only lightning,keras]
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("LABLEDGER_COMPLETENESS", "off")  # no end-of-run report printed in the timings
# MLflow's usage reporting is not logging: its background thread would only disturb the timings
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

TARGET_OVERHEAD = 0.02
SETTLE_SECONDS = 0.1


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def fresh(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"labledger-bench-{prefix}-"))


# -- what the trackers themselves spend -------------------------------------------------------


class OwnTime:
    """Wall time inside instrumented methods (outermost calls only, per thread)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = threading.local()

    def timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth.n = depth
                if depth == 0:
                    self.seconds += time.perf_counter() - start

        return wrapper


OWN = OwnTime()


def instrumented(cls: type, base: type) -> type:
    """A subclass of ``cls`` whose methods and properties add their time to :data:`OWN`.

    What ``cls`` and its parents define, apart from the framework's ``base``
    class and its own parents, is wrapped (overrides only), so a framework's
    "is this hook overridden" checks see the same answers as before.
    """
    namespace: dict[str, Any] = {}
    for klass in reversed([k for k in cls.__mro__ if k not in base.__mro__]):
        for name, value in vars(klass).items():
            if name.startswith("__"):
                continue
            if isinstance(value, property):
                namespace[name] = property(
                    OWN.timed(value.fget) if value.fget else None,
                    OWN.timed(value.fset) if value.fset else None,
                )
            elif callable(value) and not isinstance(value, staticmethod | classmethod | type):
                namespace[name] = OWN.timed(value)
    return type(cls.__name__, (cls,), namespace)


def labledger_thread_seconds() -> float:
    """CPU seconds used so far by labledger's background threads (0 where /proc is missing)."""
    total = 0
    for thread in threading.enumerate():
        if not thread.name.startswith("labledger-"):
            continue
        try:
            with open(f"/proc/self/task/{thread.native_id}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


@dataclass
class Setup:
    """One way of running the training; ``run`` returns its wall seconds."""

    run: Callable[[], float]
    baseline: str | None = None  # the setup this one is compared with (default: the first)
    own: bool = False  # report the tracker's own time


@dataclass
class Result:
    wall: list[float] = field(default_factory=list)
    own: list[float] = field(default_factory=list)


def measure(setup: Setup) -> tuple[float, float]:
    """One timed run: ``(wall seconds, own seconds)``; the garbage collector is settled first."""
    gc.collect()
    gc.freeze()
    try:
        OWN.seconds = 0.0
        threads_before = labledger_thread_seconds()
        wall = setup.run()
        return wall, OWN.seconds + labledger_thread_seconds() - threads_before
    finally:
        gc.unfreeze()


def interleaved(setups: dict[str, Setup], repeat: int, seed: int = 0) -> dict[str, Result]:
    """Run every setup once per round, after one warm-up round; each round in a new shuffled order.

    The shuffle keeps a heavy setup's aftermath from always landing on the same
    neighbour; a short pause before each run lets the previous one's threads settle.
    """
    results = {name: Result() for name in setups}
    for setup in setups.values():  # warm-up: imports, first-call costs
        measure(setup)
    order = list(setups)
    rng = random.Random(seed)
    for _ in range(repeat):
        rng.shuffle(order)
        for name in order:
            time.sleep(SETTLE_SECONDS)
            wall, own = measure(setups[name])
            results[name].wall.append(wall)
            results[name].own.append(own)
    return results


# -- Lightning ------------------------------------------------------------------------------


def lightning_setups(epochs: int = 8, peers: bool = True) -> dict[str, Setup]:
    """The Lightning setups; ``peers=False`` keeps no logger, ``CSVLogger`` and ``LedgerLogger`` only."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, Logger
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

    class EmptyLogger(Logger):
        """Records nothing: what Lightning's own logging path costs any logger."""

        @property
        def name(self) -> str:
            return "empty"

        @property
        def version(self) -> str:
            return "0"

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            pass

        def log_metrics(self, metrics: Any, step: int | None = None) -> None:
            pass

    class EmptyCallback(Callback):
        """Does nothing: what Lightning's calls of a callback's hooks cost any callback."""

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(9216, 32, generator=generator)
    y = x[:, :4].sum(dim=1, keepdim=True)
    train = DataLoader(TensorDataset(x[:8192], y[:8192]), batch_size=64)
    val = DataLoader(TensorDataset(x[8192:], y[8192:]), batch_size=256)

    def fit(
        make_logger: Callable[[Path], Any] | None,
        callbacks: Callable[[Path], list[Any]] | None = None,
        checkpoint: bool = False,
    ) -> Callable[[], float]:
        def run() -> float:
            folder = fresh("lightning")
            torch.manual_seed(0)
            start = time.perf_counter()
            logger = make_logger(folder) if make_logger else False
            extra = callbacks(folder) if callbacks else []
            if checkpoint:
                extra.append(ModelCheckpoint(dirpath=folder / "ckpt", monitor="val_loss", save_top_k=2))
            trainer = L.Trainer(
                max_epochs=epochs,
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
            return time.perf_counter() - start

        return run

    csv_logger = instrumented(CSVLogger, Logger)
    ledger_logger = instrumented(LedgerLogger, Logger)
    ledger_callback = instrumented(LedgerCallback, Callback)
    kept = fresh("lightning-kept")  # where the trackers keep their logs from run to run
    setups = {
        "no logger": Setup(fit(None)),
        "no logger, again (noise floor)": Setup(fit(None)),
        "CSVLogger": Setup(fit(lambda d: csv_logger(kept / "csv")), own=True),
    }
    if peers:
        setups["an empty Logger"] = Setup(fit(lambda d: EmptyLogger()))
        setups["an empty Callback"] = Setup(fit(None, lambda d: [EmptyCallback()]))
    if not peers:
        setups["LedgerLogger"] = Setup(fit(lambda d: ledger_logger("bench", store=kept / "store")), own=True)
        return setups
    if installed("mlflow"):
        from lightning.pytorch.loggers import MLFlowLogger

        mlflow_logger = instrumented(MLFlowLogger, Logger)
        uri = f"sqlite:///{kept}/mlflow.db"
        setups["MLFlowLogger"] = Setup(
            fit(lambda d: mlflow_logger(experiment_name="bench", tracking_uri=uri)), own=True
        )
    store = kept / "store"
    setups["LedgerLogger"] = Setup(fit(lambda d: ledger_logger("bench", store=store)), own=True)
    # the first run of all: the store is created in the timing
    setups["LedgerLogger, new store"] = Setup(
        fit(lambda d: ledger_logger("bench", store=d / "store")), own=True
    )
    setups["LedgerCallback"] = Setup(fit(None, lambda d: [ledger_callback("bench", store=store)]), own=True)
    setups["no logger + ModelCheckpoint"] = Setup(fit(None, checkpoint=True))
    setups["LedgerLogger + ModelCheckpoint"] = Setup(
        fit(lambda d: ledger_logger("bench", store=store), None, True),
        baseline="no logger + ModelCheckpoint",
        own=True,
    )
    return setups


# -- Keras ----------------------------------------------------------------------------------


def keras_setups() -> dict[str, Setup]:
    import keras
    from sklearn.datasets import load_digits

    from labledger.integrations.keras import LedgerCallback

    class BatchHook(keras.callbacks.Callback):
        """Silent; its batch-end hook makes Keras call callbacks in the training thread, as verbose=1 does."""

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            pass

    features, labels = load_digits(return_X_y=True)
    features = (features / 16.0).astype("float32")

    def fit(make_callbacks: Callable[[Path], list[Any]]) -> Callable[[], float]:
        def run() -> float:
            folder = fresh("keras")
            keras.utils.set_random_seed(0)
            start = time.perf_counter()
            callbacks = [BatchHook(), *make_callbacks(folder)]
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
            return time.perf_counter() - start

        return run

    base = keras.callbacks.Callback
    csv_logger = instrumented(keras.callbacks.CSVLogger, base)
    model_checkpoint = instrumented(keras.callbacks.ModelCheckpoint, base)
    ledger = instrumented(LedgerCallback, base)
    kept = fresh("keras-kept")  # where the trackers keep their logs from run to run
    store = kept / "store"
    return {
        "no callback": Setup(fit(lambda d: [])),
        "no callback, again (noise floor)": Setup(fit(lambda d: [])),
        "keras CSVLogger": Setup(fit(lambda d: [csv_logger(str(d / "log.csv"))]), own=True),
        "LedgerCallback": Setup(fit(lambda d: [ledger("bench", store=store)]), own=True),
        "LedgerCallback, new store": Setup(fit(lambda d: [ledger("bench", store=d / "store")]), own=True),
        "keras ModelCheckpoint(save_best_only)": Setup(
            fit(lambda d: [model_checkpoint(str(d / "best.keras"), "val_loss", save_best_only=True)]),
            own=True,
        ),
        "LedgerCallback + checkpoints": Setup(
            fit(lambda d: [ledger("bench", store=store, checkpoint_monitor="val_loss")]),
            baseline="keras ModelCheckpoint(save_best_only)",
            own=True,
        ),
    }


# -- report ---------------------------------------------------------------------------------


def median_interval(values: list[float], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 95 % bootstrap interval for the median of ``values`` (resampled with a fixed seed)."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


def table(title: str, setups: dict[str, Setup], results: dict[str, Result]) -> str:
    lines = [
        title,
        "| setup | baseline | wall s (median) | wall overhead (paired median) | 95 % interval "
        "| own ms (median) | own % of baseline |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    first = next(iter(setups))
    for name, setup in setups.items():
        base_name = setup.baseline or first
        wall, base = results[name].wall, results[base_name].wall
        ratios = [w / b - 1 for w, b in zip(wall, base, strict=True)]
        low, high = median_interval(ratios)
        overhead = statistics.median(ratios)
        own = statistics.median(results[name].own) if setup.own else None
        own_text = f"{1000 * own:.1f}" if own is not None else "—"
        share = f"{100 * own / statistics.median(base):.2f}%" if own is not None else "—"
        lines.append(
            f"| {name} | {base_name} | {statistics.median(wall):.3f} | {100 * overhead:+.1f}% "
            f"| {100 * low:+.1f}% … {100 * high:+.1f}% | {own_text} | {share} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=25, help="measured rounds per setup (after a warm-up)")
    parser.add_argument("--only", default="lightning,keras", help="comma-separated: lightning, keras")
    parser.add_argument(
        "--long-epochs", type=int, default=32, help="also time the Lightning loop this long (0: skip)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: steadier timings)")
    args = parser.parse_args(argv)
    if installed("torch"):
        import torch

        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    import logging

    for name in ("lightning", "lightning.pytorch", "mlflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    wanted = set(args.only.split(","))
    print(
        f"# integration overhead — Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{args.repeat} rounds after a warm-up, torch threads {args.threads}\n"
    )
    if "lightning" in wanted:
        if installed("lightning"):
            setups = lightning_setups()
            print(
                table("## PyTorch Lightning (8 epochs × 128 steps)", setups, interleaved(setups, args.repeat))
            )
            if not installed("mlflow"):
                print("(MLFlowLogger skipped: mlflow is not installed)")
            print()
            if args.long_epochs:
                setups = lightning_setups(args.long_epochs, peers=False)
                title = f"## PyTorch Lightning, a longer loop ({args.long_epochs} epochs × 128 steps)"
                print(table(title, setups, interleaved(setups, args.repeat)))
                print()
        else:
            print("(Lightning skipped: not installed)\n")
    if "keras" in wanted:
        if installed("keras"):
            setups = keras_setups()
            title = f"## Keras, {os.environ['KERAS_BACKEND']} backend (20 epochs × 45 steps)"
            print(table(title, setups, interleaved(setups, args.repeat)))
            print()
        else:
            print("(Keras skipped: not installed)\n")
    print(f"target: labledger adds at most {100 * TARGET_OVERHEAD:.0f}% to the loop's wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
