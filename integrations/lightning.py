"""PyTorch Lightning: log a ``Trainer`` to labledger with a logger or a callback.

>>> import lightning as L
>>> from lightning.pytorch.callbacks import ModelCheckpoint
>>> from labledger.integrations.lightning import LedgerLogger, LedgerCallback
>>> trainer = L.Trainer(max_epochs=20, logger=LedgerLogger("mnist-mlp"),  # doctest: +SKIP
...                     callbacks=[ModelCheckpoint(monitor="val_loss", save_top_k=2)])
>>> trainer = L.Trainer(max_epochs=20, callbacks=[LedgerCallback("mnist-mlp")])  # doctest: +SKIP

Both record the same run: the hyperparameters (``save_hyperparameters()`` and
the datamodule's), the trainer's configuration, the ``EarlyStopping`` and
``ModelCheckpoint`` settings, a LightningCLI config, the model's class and
parameter counts, the seed set by ``seed_everything``, every metric a Lightning
logger receives (same keys, steps and values), the checkpoints ``ModelCheckpoint``
keeps, where a resumed fit came from, how the run ended and, with
``predictions=(x_val, y_val)``, the trained model's predictions on those examples. Works with
``lightning`` and ``pytorch_lightning``; only global rank 0 writes. With
spawn-based strategies (``ddp_spawn``) the rank-0 worker's records reach the
main process's run when it next uses the logger (``logger.run``, the next
``trainer`` call, the end of the run, or exit).
"""

from __future__ import annotations

import functools
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
from labledger import settings
from labledger.errors import InvalidValueError
from labledger.integrations._lightning_frames import asking_trainer
from labledger.integrations._lightning_lifecycle import INTEGRATION, watch
from labledger.integrations._lightning_predictions import after_fit
from labledger.integrations._lightning_recorder import _Recorder
from labledger.integrations._lightning_tap import Tap
from labledger.integrations.base import RunBinding, check_data, check_version, final_status

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


def _check_internals() -> None:
    """Warn once when the installed Lightning is not one whose internals this integration was checked with.

    Checked with Lightning 2.1.0 to 2.6.6 (``lightning`` and ``pytorch_lightning``). Lightning
    offers no public way to these, so the integration reads them where they are:

    - a logger's ``log_graph`` gets the module, whose ``_trainer`` is the trainer call under way;
    - ``asking_trainer``: the frames (``sys._getframe``) of Lightning's own code asking ``save_dir``;
    - ``LedgerCallback`` taps ``trainer._logger_connector.log_metrics`` (without a logger),
      ``ModelCheckpoint._save_checkpoint`` and reads ``_last_checkpoint_saved``,
      ``fit_loop.epoch_loop._batches_that_stepped``, a module's ``_log_hyperparams`` and the
      callbacks' ``_check_on_train_epoch_end`` / ``_save_on_train_epoch_end``.
    """
    check_version(INTEGRATION, "lightning", getattr(pl, "__version__", None), oldest="2.1.0", latest="2.6")


def _binding(run: ll.Run | None, origin: str, given: dict[str, Any]) -> RunBinding:
    _check_internals()
    return RunBinding(run, integration=INTEGRATION, origin=origin, **given)


def _mode(log_checkpoints: Any) -> bool | str:
    if log_checkpoints in (True, False, "all"):
        return log_checkpoints
    raise InvalidValueError(
        "log_checkpoints",
        log_checkpoints,
        "choose True (what ModelCheckpoint keeps, stored when a fit ends), 'all' (every file, "
        "stored when written) or False",
    )


class LedgerLogger(pl.loggers.Logger):
    """A Lightning logger that records the trainer into a labledger run.

    :param experiment: experiment of the run it starts (default ``$LABLEDGER_EXPERIMENT`` or ``default``).
    :param run: log to this run instead (never ended by the logger).
    :param save_dir: root folder of checkpoints and LightningCLI's ``config.yaml`` (default: the trainer's
        ``default_root_dir``, the working directory unless set); checkpoints go to
        ``save_dir/<experiment>/<run name>/checkpoints``.
    :param name: the run's name (Lightning shows it as ``logger.version``).
    :param hypothesis: what the run should show.
    :param tags: the run's first tags.
    :param log_checkpoints: ``True`` stores what ``ModelCheckpoint`` keeps (top-k and ``last``) when
        a fit ends or fails; ``"all"`` stores every checkpoint file when it is written; ``False`` none.
    :param predictions: ``(x_val, y_val)`` or ``(x_val, y_val, features_df)`` (arrays or
        tensors): when a fit ends, the trained module's outputs on ``x_val`` (its ``forward``, in
        eval mode, without gradients) are stored with ``run.log_predictions`` for error
        analysis. Outputs of two or more columns are class scores (``y_pred`` their argmax, the
        probabilities their softmax unless rows already sum to 1); one column in ``[0, 1]`` with
        a truth of 0s and 1s is a binary classifier's probability (``y_pred`` = ``> 0.5``);
        anything else a regression.
    :param predictions_split: the split those predictions are stored under.
    :param start_run_kwargs: more :func:`labledger.start_run` arguments (``store``, ``seed``, …) for
        the run it starts when no run is given and none is active.

    The run it starts stays open across ``fit``, ``validate`` and ``test`` and ends
    on :meth:`end`, when a fit fails (``failed``; Ctrl-C ``killed``), when the logger
    is garbage-collected, when another Lightning logger or callback starts a run
    while this one is idle, or at exit.

    >>> import lightning as L
    >>> from labledger.integrations.lightning import LedgerLogger
    >>> logger = LedgerLogger("mnist-mlp", hypothesis="dropout helps", tags={"team": "vision"})
    >>> trainer = L.Trainer(max_epochs=5, logger=logger)  # doctest: +SKIP
    """

    def __init__(
        self,
        experiment: str | None = None,
        *,
        run: ll.Run | None = None,
        save_dir: str | os.PathLike[str] | None = None,
        name: str | None = None,
        hypothesis: str | None = None,
        tags: dict[str, str] | None = None,
        log_checkpoints: bool | str = True,
        predictions: tuple[Any, ...] | None = None,
        predictions_split: str = "validation",
        **start_run_kwargs: Any,
    ) -> None:
        super().__init__()
        self._predictions = check_data(predictions)
        self.predictions_split = predictions_split
        given = {"experiment": experiment, "name": name, "hypothesis": hypothesis, "tags": tags}
        binding = _binding(
            run, "labledger.integrations.lightning.LedgerLogger", {**start_run_kwargs, **given}
        )
        self._recorder = _Recorder(binding, _mode(log_checkpoints))
        self._save_dir = os.fspath(save_dir) if save_dir is not None else None
        watch(self, self._recorder)

    @property
    def run(self) -> Any:
        """The labledger run; in a spawned rank-0 worker, a stand-in with the run's logging methods;
        ``None`` on other ranks."""
        return self._recorder.run()

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The labledger run, as Lightning loggers name their backend object (a no-op object off rank 0)."""
        return self.run

    @property
    def name(self) -> str:
        """The experiment's name."""
        resolved = self._recorder.binding.resolved
        if resolved is not None:
            return resolved.experiment
        if self._recorder.run_ref is not None:
            return self._recorder.run_ref[1]
        return str(self._recorder.binding.start_run_kwargs.get("experiment") or settings.experiment())

    @property
    def version(self) -> str | None:
        """The run's name (unique within its experiment)."""
        if self._recorder.run_ref is not None and self._recorder.spool is not None:
            return self._recorder.run_ref[2]
        run = self.run
        return run.name if run is not None else None

    @property
    def save_dir(self) -> str:
        """Where checkpoints (under ``<experiment>/<run>/checkpoints``) and LightningCLI's config go."""
        if self._save_dir is not None:
            return self._save_dir
        trainer = self._recorder.trainer() if self._recorder.trainer is not None else None
        trainer = trainer or asking_trainer(self, pl)
        return os.fspath(trainer.default_root_dir) if trainer is not None else os.getcwd()

    @property
    def log_dir(self) -> str:
        """This run's folder: ``save_dir/<experiment>/<run name>``."""
        return os.path.join(self.save_dir, self.name, str(self.version))

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self._recorder.record_hparams(params)

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        # Lightning calls this at the start of every trainer call, right after log_hyperparams, with the
        # LightningModule: the trainer call, its configuration and the model summary are recorded here.
        trainer = getattr(model, "_trainer", None)
        if trainer is not None:
            self._recorder.begin(trainer, model)
            self._recorder.record_resume(trainer)
            if trainer.loggers and trainer.loggers[0] is self:  # LightningCLI writes its config to save_dir
                self._recorder.record_cli(trainer, self.save_dir, self.log_dir)
            else:
                self._recorder.record_cli(trainer)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self._recorder.record_step(metrics, step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._recorder.checkpoint_saved(checkpoint_callback)

    def save(self) -> None:
        pass  # points are written in the background; Lightning calls this after every log_metrics

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if status == "failed":
            error = sys.exc_info()[1]
            self._recorder.finish(error, status="killed" if final_status(error) == "killed" else "failed")
        else:  # "success" after each trainer call: later validate/test calls log to the same run
            after_fit(self._recorder, self._predictions, self.predictions_split)
            self._recorder.finish()

    def end(self, status: str = "finished") -> None:
        """End the run now if this logger started it (otherwise flush it)."""
        self._recorder.end(status=status)


class LedgerCallback(pl.Callback):
    """Record a Lightning training into labledger while keeping your own logger.

    :param experiment: experiment of the run it starts (default ``$LABLEDGER_EXPERIMENT`` or ``default``).
    :param run: log to this run instead (never ended by the callback).
    :param name: the run's name.
    :param hypothesis: what the run should show.
    :param tags: the run's first tags.
    :param log_checkpoints: as for :class:`LedgerLogger`.
    :param predictions: as for :class:`LedgerLogger` (stored in ``on_fit_end``).
    :param predictions_split: the split those predictions are stored under.
    :param start_run_kwargs: more :func:`labledger.start_run` arguments for the run it starts when no
        run is given and none is active.

    Records what :class:`LedgerLogger` records: every metric the trainer's first
    logger receives (``LearningRateMonitor``'s included), with the same keys, steps
    and values, or with ``logger=False`` what Lightning would give a logger. Its
    run begins and ends by the same rules.

    >>> import lightning as L
    >>> from labledger.integrations.lightning import LedgerCallback
    >>> trainer = L.Trainer(max_epochs=5, callbacks=[LedgerCallback("mnist-mlp")])  # doctest: +SKIP
    """

    def __init__(
        self,
        experiment: str | None = None,
        *,
        run: ll.Run | None = None,
        name: str | None = None,
        hypothesis: str | None = None,
        tags: dict[str, str] | None = None,
        log_checkpoints: bool | str = True,
        predictions: tuple[Any, ...] | None = None,
        predictions_split: str = "validation",
        **start_run_kwargs: Any,
    ) -> None:
        self._predictions = check_data(predictions)
        self.predictions_split = predictions_split
        given = {"experiment": experiment, "name": name, "hypothesis": hypothesis, "tags": tags}
        binding = _binding(
            run, "labledger.integrations.lightning.LedgerCallback", {**start_run_kwargs, **given}
        )
        self._recorder = _Recorder(binding, _mode(log_checkpoints))
        self._taps: list[Tap] = []
        # Lightning calls each callback's per-batch hooks thousands of times an epoch, unless the
        # attribute is not callable: the ones this callback (or a subclass) leaves alone are turned off.
        for hook in _BATCH_HOOKS:
            if getattr(type(self), hook, None) is getattr(pl.Callback, hook, None):
                setattr(self, hook, None)
        watch(self, self._recorder)

    @property
    def run(self) -> Any:
        """The labledger run; in a spawned rank-0 worker, a stand-in with the run's logging methods;
        ``None`` on other ranks."""
        return self._recorder.run()

    def end(self, status: str = "finished") -> None:
        """End the run now if this callback started it (otherwise flush it)."""
        self._recorder.end(status=status)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_taps": []}

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        self._recorder.begin(trainer, pl_module)
        self._recorder.record_cli(trainer)
        hparams: dict[str, Any] = {}
        datamodule = getattr(trainer, "datamodule", None)
        for owner in (pl_module, datamodule):
            if owner is not None and getattr(owner, "_log_hyperparams", True):
                hparams.update(getattr(owner, "hparams_initial", None) or {})
        self._recorder.record_hparams(hparams)
        self._recorder.flush_hparams()
        self._tap(trainer)

    def _tap(self, trainer: Any) -> None:
        self._untap()
        if trainer.loggers:  # every metric goes to every logger: the first one's calls are the record
            self._taps.append(Tap(trainer.loggers[0], "log_metrics", self._logged))
        else:
            sink = functools.partial(self._logged_without_logger, trainer)
            self._taps.append(Tap(trainer._logger_connector, "log_metrics", sink))
        for callback in trainer.checkpoint_callbacks:
            if callable(getattr(callback, "_save_checkpoint", None)):
                sink = functools.partial(self._checkpoint_written, callback)
                self._taps.append(Tap(callback, "_save_checkpoint", sink))

    def _untap(self) -> None:
        while self._taps:
            self._taps.pop().remove()

    def _logged(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self._recorder.record_metrics(metrics, step)

    def _logged_without_logger(
        self, trainer: Any, metrics: Mapping[str, Any], step: int | None = None
    ) -> None:
        """What Lightning's logger connector would hand a logger (it gives nothing when there is none)."""
        if not metrics:
            return
        values = dict(metrics)
        if step is None:
            given = values.pop("step", None)
            if given is not None:
                step = int(given)
            else:
                values.setdefault("epoch", trainer.current_epoch)
                loop = getattr(trainer.fit_loop, "epoch_loop", None)
                step = getattr(loop, "_batches_that_stepped", trainer.global_step)
        self._recorder.record_metrics(values, step)

    def _checkpoint_written(self, callback: Any, *args: Any, **kwargs: Any) -> None:
        """``callback._save_checkpoint(trainer, filepath)`` has returned."""
        trainer = args[0] if args else kwargs.get("trainer")
        path = args[1] if len(args) > 1 else kwargs.get("filepath")
        if getattr(trainer, "is_global_zero", True):
            self._recorder.checkpoint_saved(callback, path if isinstance(path, str) else None)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:  # the checkpoint to resume from is known now
            self._recorder.record_resume(trainer)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            self._recorder.record_datasets(trainer, "train")

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            self._recorder.record_datasets(trainer, "validation")

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            self._recorder.record_datasets(trainer, "test")

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            after_fit(self._recorder, self._predictions, self.predictions_split, pl_module)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._untap()
        if trainer.is_global_zero:
            self._recorder.finish()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._untap()
        if trainer.is_global_zero:
            self._recorder.finish(exception, status=final_status(exception))
