"""PyTorch Lightning: log a ``Trainer`` to labledger with a logger or a callback.

>>> import lightning as L
>>> from lightning.pytorch.callbacks import ModelCheckpoint
>>> from labledger.integrations.lightning import LedgerLogger, LedgerCallback
>>> trainer = L.Trainer(max_epochs=20, logger=LedgerLogger("mnist-mlp"),  # doctest: +SKIP
...                     callbacks=[ModelCheckpoint(monitor="val_loss", save_top_k=2)])
>>> trainer = L.Trainer(max_epochs=20, callbacks=[LedgerCallback("mnist-mlp")])  # doctest: +SKIP

Both record the same run: the hyperparameters (``save_hyperparameters()`` and
the datamodule's), the trainer's configuration, the model's class and parameter
counts, the seed set by ``seed_everything``, the metrics with step and epoch,
every checkpoint a ``ModelCheckpoint`` keeps (tagged ``removed`` once it drops
out), and how the run ended. Works with ``lightning`` and ``pytorch_lightning``;
only global rank 0 writes. With spawn-based strategies (``ddp_spawn``) the
rank-0 worker's records reach the main process's run when it next uses the
logger (``logger.run``, the next ``trainer`` call, the end of the run, or exit).
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import lightning.pytorch as pl
    from lightning.pytorch.loggers.logger import rank_zero_experiment
    from lightning.pytorch.utilities.rank_zero import rank_zero_only
except ImportError:  # the standalone distribution
    import pytorch_lightning as pl  # type: ignore[no-redef]
    from pytorch_lightning.loggers.logger import rank_zero_experiment
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

import labledger as ll
from labledger.integrations._training import (
    RunBinding,
    Spool,
    describe,
    numbers,
    plain,
    qualified_name,
    status_of,
)

__all__ = ["LedgerCallback", "LedgerLogger"]

_live_runs: weakref.WeakValueDictionary[str, ll.Run] = weakref.WeakValueDictionary()


_LOADERS = {"train": "train_dataloader", "validation": "val_dataloaders", "test": "test_dataloaders"}


def _global_rank() -> int:
    return int(getattr(rank_zero_only, "rank", 0) or 0)


class _Recorder:
    """Translates Lightning events into calls on one run; shared by the logger and the callback."""

    def __init__(self, run: ll.Run | None, start_run_kwargs: Mapping[str, Any]) -> None:
        self.binding = RunBinding(run, start_run_kwargs)
        self.spool: Spool | None = None  # set in a spawned worker
        self.run_ref: tuple[str, str, str] | None = None  # (id, experiment, name) seen by a worker
        self.pending_spools: list[str] = []  # main process: worker folders still to replay
        self.checkpoints: dict[str, tuple[str, float]] = {}  # path -> (artifact name, mtime)
        self.names: set[str] = set()
        self.tags: dict[str, str] = {}
        self.trainer: weakref.ReferenceType[Any] | None = None
        self.datasets_seen: set[int] = set()
        self.exit_replay = False  # main process: an exit hook replays what workers left

    # -- where records go ---------------------------------------------------

    def _sink(self) -> Any:
        if _global_rank() != 0:
            return None
        if self.spool is not None:
            return self.spool
        self.replay()
        return self.binding.get()

    def _do(self, method: str, *args: Any, **kwargs: Any) -> None:
        try:
            sink = self._sink()
            if sink is not None:
                getattr(sink, method)(*args, **kwargs)
        except (ll.errors.LabledgerError, OSError) as e:
            self.binding.warn(e)

    def replay(self) -> None:
        """Main process: bring in what spawned workers recorded."""
        while self.pending_spools:
            folder = self.pending_spools.pop(0)
            try:
                Spool.replay(folder, self.binding.get())
            except (ll.errors.LabledgerError, OSError) as e:
                self.binding.warn(e)

    def run(self) -> ll.Run | None:
        if _global_rank() != 0 or self.spool is not None:
            return None
        self.replay()
        return self.binding.call(lambda run: run)

    # -- pickling for spawned workers -----------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["trainer"] = None
        if self.spool is None and _global_rank() == 0:
            run = self.binding.call(lambda run: run)  # resolved here, every worker shares it
            if run is not None:
                _live_runs[run.id] = run
                folder = tempfile.mkdtemp(prefix="labledger-spool-")
                self.pending_spools.append(folder)
                if not self.exit_replay:
                    self.exit_replay = True
                    _register_exit_replay(self)
                state["run_ref"] = (run.id, run.experiment, run.name)
                state["spool"] = folder
        state["pending_spools"] = []
        state["datasets_seen"] = set()
        state["binding"] = RunBinding(None, self.binding.start_run_kwargs)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        folder = state.pop("spool", None)
        self.__dict__.update(state)
        self.spool = None
        ref = self.run_ref
        if ref is not None and ref[0] in _live_runs:  # a copy inside the main process
            self.binding = RunBinding(_live_runs[ref[0]], {})
        elif folder is not None:
            self.spool = Spool(folder)

    # -- what gets recorded -------------------------------------------------

    def record_setup(self, trainer: Any, module: Any) -> None:
        """The trainer's configuration, the seed and the model summary."""
        self.trainer = weakref.ref(trainer)
        strategy = getattr(trainer, "strategy", None)
        params: dict[str, Any] = {
            "trainer": {
                "max_epochs": trainer.max_epochs,
                "max_steps": trainer.max_steps,
                "precision": plain(getattr(trainer, "precision", None)),
                "accumulate_grad_batches": trainer.accumulate_grad_batches,
                "gradient_clip_val": plain(trainer.gradient_clip_val),
                "gradient_clip_algorithm": plain(trainer.gradient_clip_algorithm),
                "strategy": type(strategy).__name__ if strategy is not None else None,
                "accelerator": type(trainer.accelerator).__name__,
                "devices": trainer.num_devices,
                "num_nodes": trainer.num_nodes,
                "world_size": trainer.world_size,
            }
        }
        seed = os.environ.get("PL_GLOBAL_SEED")
        if seed is not None:
            params["seed"] = int(seed) if seed.lstrip("-").isdigit() else seed
        if module is not None:
            weights = list(module.parameters())
            params["model"] = {
                "class": qualified_name(module),
                "params": {
                    "total": sum(p.numel() for p in weights),
                    "trainable": sum(p.numel() for p in weights if p.requires_grad),
                },
            }
        self._do("log_params", params)

    def record_datasets(self, trainer: Any, role: str | None = None) -> None:
        """Fingerprint the dataset of the running stage (when a plugin can fingerprint it)."""
        if role is None:
            role = "train" if trainer.training else "test" if trainer.testing else "validation"
        if trainer.sanity_checking or role not in _LOADERS:
            return
        dataset = getattr(getattr(trainer, _LOADERS[role], None), "dataset", None)
        if dataset is None or id(dataset) in self.datasets_seen:
            return
        self.datasets_seen.add(id(dataset))
        found = ll.plugins.call_first("labledger_fingerprint_dataset", data=dataset)
        if isinstance(found, ll.Fingerprint):
            self._do("log_dataset", role, role=role, fingerprint=found.digest, **found.summary)

    def record_hparams(self, hparams: Any) -> None:
        if hparams is None:
            return
        if not isinstance(hparams, Mapping):
            hparams = vars(hparams)  # argparse.Namespace and AttributeDict-likes
        clean = {k: v for k, v in plain(dict(hparams)).items() if k != "_class_path"}
        if clean:
            self._do("log_params", clean)

    def record_metrics(self, metrics: Mapping[str, Any], step: int | None, epoch: int | None = None) -> None:
        values = numbers(metrics)
        if "epoch" in values:
            epoch = int(values.pop("epoch"))
        if values:
            self._do("log_metrics", values, step=step, epoch=epoch)

    def sync_checkpoints(self, callback: Any, epoch: int | None = None, step: int | None = None) -> None:
        """Store the checkpoints ``callback`` keeps that are new; tag those it dropped ``removed``."""
        trainer = self.trainer() if self.trainer is not None else None
        if epoch is None and trainer is not None:
            epoch, step = trainer.current_epoch, trainer.global_step
        kept = self._kept(callback)
        updates: dict[str, str] = {}
        for path, (role, score, rank) in kept.items():
            try:
                mtime = os.path.getmtime(path)
            except OSError:
                continue
            logged = self.checkpoints.get(path)
            if logged is not None and logged[1] == mtime:
                continue
            if logged is not None:  # the file was overwritten: its previous content is gone
                self._tag(updates, logged[0], "removed")
            name = self._unique_name(Path(path), step)
            metadata = {
                "epoch": epoch,
                "step": step,
                "monitor": getattr(callback, "monitor", None),
                "mode": getattr(callback, "mode", None),
                "score": score,
                "rank": rank,
                "kept_as": role,
                "global_rank": _global_rank(),
                "filename": Path(path).name,
            }
            self._do("log_artifact", path, kind="checkpoint", name=name, metadata=metadata)
            self.checkpoints[path] = (name, mtime)
        for path, (name, _) in list(self.checkpoints.items()):
            if path in kept:
                role, _score, rank = kept[path]
                self._tag(updates, name, f"kept, rank {rank}" if rank is not None else f"kept ({role})")
            else:
                self._tag(updates, name, "removed")
                del self.checkpoints[path]
        best = getattr(callback, "best_model_path", "")
        if best in self.checkpoints:
            self._tag(updates, "best", self.checkpoints[best][0])
        if updates:
            self._do("set_tags", updates)

    @staticmethod
    def _kept(callback: Any) -> dict[str, tuple[str, float | None, int | None]]:
        scores = {p: numbers({"s": s}).get("s") for p, s in getattr(callback, "best_k_models", {}).items()}
        order = sorted(scores, key=lambda p: scores[p] if scores[p] is not None else float("inf"))
        if getattr(callback, "mode", "min") == "max":
            order.reverse()
        kept: dict[str, tuple[str, float | None, int | None]] = {
            p: ("top_k", scores[p], i + 1) for i, p in enumerate(order)
        }
        best = getattr(callback, "best_model_path", "")
        if best and best not in kept:
            kept[best] = ("best", numbers({"s": getattr(callback, "best_model_score", None)}).get("s"), 1)
        last = getattr(callback, "last_model_path", "")
        if last and last not in kept:
            kept[last] = ("last", numbers({"s": getattr(callback, "current_score", None)}).get("s"), None)
        return kept

    def _unique_name(self, path: Path, step: int | None) -> str:
        name = path.name
        if name in self.names:
            name = f"{path.stem}-step={step}{path.suffix}"
        base, n = name, 2
        while name in self.names:
            name, n = f"{Path(base).stem}-{n}{path.suffix}", n + 1
        self.names.add(name)
        return name

    def _tag(self, updates: dict[str, str], name: str, value: str) -> None:
        key = f"checkpoint/{name}"
        if self.tags.get(key) != value:
            self.tags[key] = updates[key] = value

    def flush(self) -> None:
        if self.spool is None and _global_rank() == 0:
            self.replay()
            self.binding.flush()

    def end(self, error: BaseException | None = None, status: str | None = None) -> None:
        """Flush everything; end the run if this integration started it."""
        if self.spool is not None or _global_rank() != 0:
            return
        self.replay()
        self.binding.end(status or status_of(error), describe(error))


def _register_exit_replay(recorder: _Recorder) -> None:
    ref = weakref.ref(recorder)

    def _replay_at_exit() -> None:  # runs before labledger ends open runs (atexit is LIFO)
        alive = ref()
        if alive is not None:
            alive.replay()

    atexit.register(_replay_at_exit)


def _resolve_args(experiment: str | None, start_run_kwargs: dict[str, Any]) -> dict[str, Any]:
    if experiment is not None:
        start_run_kwargs = {"experiment": experiment, **start_run_kwargs}
    return start_run_kwargs


class LedgerLogger(pl.loggers.Logger):
    """A Lightning logger that records the trainer into a labledger run.

    :param experiment: experiment name for the run it starts (same as ``experiment=``).
    :param run: log to this run instead (never ended by the logger).
    :param save_dir: root folder for checkpoints (default: the trainer's ``default_root_dir``);
        checkpoints go to ``save_dir/<experiment>/<run name>/checkpoints``.
    :param start_run_kwargs: passed to :func:`labledger.start_run` (``name``, ``tags``, ``hypothesis``, …)
        when no run is given and none is active.

    The run it starts stays open across ``fit``, ``validate`` and ``test`` of the
    trainer and ends with the program (or :meth:`end`); a failure ends it
    ``failed`` and Ctrl-C ``killed``.

    >>> import lightning as L
    >>> from labledger.integrations.lightning import LedgerLogger
    >>> trainer = L.Trainer(max_epochs=5, logger=LedgerLogger("mnist-mlp"))  # doctest: +SKIP
    """

    def __init__(
        self,
        experiment: str | None = None,
        *,
        run: ll.Run | None = None,
        save_dir: str | os.PathLike[str] | None = None,
        **start_run_kwargs: Any,
    ) -> None:
        super().__init__()
        self._recorder = _Recorder(run, _resolve_args(experiment, start_run_kwargs))
        self._save_dir = os.fspath(save_dir) if save_dir is not None else None

    @property
    def run(self) -> ll.Run | None:
        """The labledger run (``None`` on ranks other than 0)."""
        return self._recorder.run()

    @property
    @rank_zero_experiment
    def experiment(self) -> ll.Run | None:
        """The labledger run, as Lightning loggers name their backend object (a no-op object off rank 0)."""
        return self.run

    @property
    def name(self) -> str:
        resolved = self._recorder.binding.resolved
        if resolved is not None:
            return resolved.experiment
        if self._recorder.run_ref is not None:
            return self._recorder.run_ref[1]
        return str(self._recorder.binding.start_run_kwargs.get("experiment") or "default")

    @property
    def version(self) -> str | None:
        """The run's name (unique within its experiment)."""
        if self._recorder.run_ref is not None and self._recorder.spool is not None:
            return self._recorder.run_ref[2]
        run = self.run
        return run.name if run is not None else None

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    @property
    def log_dir(self) -> str | None:
        if self._save_dir is None:
            return None
        return os.path.join(self._save_dir, self.name, str(self.version))

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self._recorder.record_hparams(params)

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        # Lightning calls this right after log_hyperparams with the LightningModule: the trainer's
        # configuration and the model summary are recorded here.
        trainer = getattr(model, "_trainer", None)
        if trainer is not None:
            self._recorder.record_setup(trainer, model)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        trainer = self._recorder.trainer() if self._recorder.trainer is not None else None
        if trainer is not None:
            self._recorder.record_datasets(trainer)
        self._recorder.record_metrics(metrics, step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._recorder.sync_checkpoints(checkpoint_callback)

    @rank_zero_only
    def save(self) -> None:
        pass

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if status == "failed":
            error = sys.exc_info()[1]
            self._recorder.end(error, status="killed" if status_of(error) == "killed" else "failed")
        else:  # "success" after each trainer call: later validate/test calls log to the same run
            self._recorder.flush()

    def end(self, status: str = "finished") -> None:
        """End the run now if this logger started it (otherwise flush it)."""
        self._recorder.end(status=status)


class LedgerCallback(pl.Callback):
    """Record a Lightning training into labledger while keeping your own logger.

    :param experiment: experiment name for the run it starts (same as ``experiment=``).
    :param run: log to this run instead (never ended by the callback).
    :param start_run_kwargs: passed to :func:`labledger.start_run` when no run is given and none is active.

    Records the hyperparameters and trainer configuration at fit start, the
    model summary and seed, ``trainer.callback_metrics`` after every training
    epoch and every validation (kept apart), test and validate results, every
    checkpoint the ``ModelCheckpoint`` callbacks keep, and a failure
    (``on_exception``) as a ``failed`` run.

    >>> import lightning as L
    >>> from labledger.integrations.lightning import LedgerCallback
    >>> trainer = L.Trainer(max_epochs=5, callbacks=[LedgerCallback("mnist-mlp")])  # doctest: +SKIP
    """

    def __init__(self, experiment: str | None = None, *, run: ll.Run | None = None, **start_run_kwargs: Any):
        self._recorder = _Recorder(run, _resolve_args(experiment, start_run_kwargs))
        self._saved_at: tuple[int, int] | None = None

    @property
    def run(self) -> ll.Run | None:
        """The labledger run (``None`` on ranks other than 0)."""
        return self._recorder.run()

    def end(self, status: str = "finished") -> None:
        """End the run now if this callback started it (otherwise flush it)."""
        self._recorder.end(status=status)

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        self._recorder.record_setup(trainer, pl_module)
        self._recorder.record_hparams(getattr(pl_module, "hparams_initial", None))
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None:
            self._recorder.record_hparams(getattr(datamodule, "hparams_initial", None))

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            self._recorder.record_datasets(trainer, "train")

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._log_loop_metrics(trainer)
        self._sync(trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._log_loop_metrics(trainer)
            if trainer.is_global_zero:
                self._recorder.record_datasets(trainer, "validation")

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._log_loop_metrics(trainer)
        if trainer.is_global_zero:
            self._recorder.record_datasets(trainer, "test")

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        self._saved_at = (checkpoint.get("epoch", trainer.current_epoch), trainer.global_step)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._sync(trainer)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._sync(trainer)
        if trainer.is_global_zero:
            self._recorder.flush()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if trainer.is_global_zero:
            self._recorder.end(exception)

    def _log_loop_metrics(self, trainer: Any) -> None:
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        results = getattr(trainer, "_results", None)  # the running loop's own metrics
        if results is not None:
            names: set[str] = set()
            for result in results.values():
                names.update((result.meta.name, result.meta.forked_name(False)))
            metrics = {k: v for k, v in metrics.items() if k in names}
        self._recorder.record_metrics(metrics, step=trainer.global_step, epoch=trainer.current_epoch)

    def _sync(self, trainer: Any) -> None:
        if not trainer.is_global_zero:
            return
        epoch, step = self._saved_at or (trainer.current_epoch, trainer.global_step)
        for callback in trainer.checkpoint_callbacks:
            self._recorder.sync_checkpoints(callback, epoch=epoch, step=step)
