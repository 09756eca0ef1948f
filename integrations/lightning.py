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

import os
import sys
from collections.abc import Mapping
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
from labledger.integrations._lightning_recorder import _Recorder
from labledger.integrations._training import status_of

__all__ = ["LedgerCallback", "LedgerLogger"]

#: Per-batch callback hooks; :class:`LedgerCallback` records nothing in them.
_BATCH_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


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
        self._recorder.record_step(metrics, step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._recorder.sync_checkpoints(checkpoint_callback)

    def save(self) -> None:
        pass  # points are written in the background; Lightning calls this after every log_metrics

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
        # Lightning calls each callback's per-batch hooks thousands of times an epoch, unless the
        # attribute is not callable: the ones this callback (or a subclass) leaves alone are turned off.
        for hook in _BATCH_HOOKS:
            if getattr(type(self), hook, None) is getattr(pl.Callback, hook, None):
                setattr(self, hook, None)

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
