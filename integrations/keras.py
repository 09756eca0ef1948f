"""Keras 3: record ``model.fit`` into labledger with one callback (any backend).

>>> from labledger.integrations.keras import LedgerCallback
>>> model.fit(x, y, epochs=10, validation_split=0.2,  # doctest: +SKIP
...           callbacks=[LedgerCallback("digits-cnn", checkpoint_monitor="val_loss")])

Records the model (class, ``get_config()``, layer and parameter counts), the
optimizer's config (learning-rate schedules included), the loss and metrics
given to ``compile``, the fit arguments (``class_weight`` and whether sample
weights were given included), the other callbacks and the settings of
``EarlyStopping``, ``ReduceLROnPlateau`` and ``ModelCheckpoint``, the training
data's fingerprint, every epoch's logs (step = epoch) and the learning rate in
effect, optionally every N batches, each new best checkpoint by
``checkpoint_monitor`` and the final model (``.keras`` files), and early
stopping (stopped and best epoch), and, with ``predictions=(x_val, y_val)``,
the trained model's predictions on those examples. ``name=``, ``hypothesis=``
and ``tags=`` describe the run the callback starts.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

import labledger as ll
from labledger.errors import InvalidValueError
from labledger.integrations import _keras_order as order
from labledger.integrations._keras_describe import (
    callback_params,
    fit_call,
    learning_rate,
    model_params,
    quiet,
)
from labledger.integrations.base import (
    RunBinding,
    check_data,
    check_version,
    from_outputs,
    plain,
    qualified_name,
    scalars,
    unchanged_randomness,
)

__all__ = ["LedgerCallback"]

_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "iou")
_ORIGIN = "labledger.integrations.keras.LedgerCallback"
INTEGRATION = "keras"


def _check_internals() -> None:
    """Warn once when the installed Keras is not one whose internals this integration was checked with.

    Checked with Keras 3.0.0 to 3.15.1. Keras hands a callback neither ``fit``'s arguments nor
    the list calling it, so the integration finds them on the stack (``sys._getframe``):
    ``fit``'s frame for its arguments and data (``_keras_describe.fit_call``), the
    ``CallbackList`` calling ``on_train_begin`` (``_keras_order.calling_list``), whose
    ``on_epoch_end``/``on_train_end`` it wraps on that one list; and it reads
    ``model._compile_config`` for the loss and metrics given to ``compile``.
    """
    check_version(INTEGRATION, "keras", getattr(keras, "__version__", None), oldest="3.0.0", latest="3.15")


class LedgerCallback(keras.callbacks.Callback):
    """Record a Keras ``fit`` into a labledger run.

    :param experiment: experiment name for the run it starts (same as ``experiment=``).
    :param run: log to this run instead (never ended by the callback).
    :param name: the name of the run it starts (default: a generated one).
    :param hypothesis: what the run it starts should show.
    :param tags: tags of the run it starts.
    :param checkpoint_monitor: store a ``.keras`` checkpoint each time this epoch log
        (e.g. ``"val_loss"``) improves; ``None`` stores no checkpoints. ``best_epoch``
        is recorded by this metric, else by ``val_loss`` (or ``loss``). With an
        ``EarlyStopping`` watching the same metric (or any, without ``checkpoint_monitor``),
        its judgement decides instead: ``best_epoch`` is its ``best_epoch``.
    :param checkpoint_mode: ``"min"``, ``"max"`` or ``"auto"`` (``max`` for accuracy-like names).
    :param log_every_n_batches: also log batch logs (``batch/<name>``) every N batches.
    :param log_model: store the final model as a ``model`` artifact at the end of ``fit``, once
        every callback's ``on_train_end`` has run (after ``EarlyStopping`` restored the best weights).
    :param log_data: record the training data's fingerprint as the dataset ``train``.
    :param predictions: ``(x_val, y_val)`` or ``(x_val, y_val, features_df)``: at the end of ``fit``
        (after ``EarlyStopping`` restored the best weights), ``model.predict(x_val)`` is stored
        with ``run.log_predictions`` for error analysis, ``features_df`` as the columns to slice
        by. Outputs of two or more columns are class scores (``y_pred`` their argmax, the
        probabilities their softmax unless rows already sum to 1); one column in ``[0, 1]``
        with a truth of 0s and 1s is a binary classifier's probability (``y_pred`` = ``> 0.5``);
        anything else a regression. ``y_val`` may be class indices or one-hot rows.
    :param predictions_split: the split those predictions are stored under.
    :param start_run_kwargs: passed to :func:`labledger.start_run` (``seed``, ``parent``, …)
        when no run is given and none is active.

    A run the callback starts ends with ``fit``; the next ``fit`` with the same callback
    starts a new one. An exception that escapes ``fit`` ends it ``failed`` (``killed``
    for Ctrl-C) inside ``with LedgerCallback(...) as cb:`` at once, otherwise when the
    program exits or the callback's next ``fit`` starts. Several fits into one given (or
    active) run continue its step count; the second one's params, dataset and artifacts
    are recorded under ``fit_2/`` and so on.

    >>> cb = LedgerCallback("digits-mlp", hypothesis="dropout helps", checkpoint_monitor="val_accuracy")
    >>> history = model.fit(x, y, epochs=5, validation_split=0.2, callbacks=[cb])  # doctest: +SKIP
    >>> cb.run.id  # doctest: +SKIP
    """

    def __init__(
        self,
        experiment: str | None = None,
        *,
        run: ll.Run | None = None,
        name: str | None = None,
        hypothesis: str | None = None,
        tags: Mapping[str, str] | None = None,
        checkpoint_monitor: str | None = None,
        checkpoint_mode: str = "auto",
        log_every_n_batches: int | None = None,
        log_model: bool = True,
        log_data: bool = True,
        predictions: tuple[Any, ...] | None = None,
        predictions_split: str = "validation",
        **start_run_kwargs: Any,
    ) -> None:
        super().__init__()
        _check_internals()
        self._predictions = check_data(predictions)
        given = {"experiment": experiment, "name": name, "hypothesis": hypothesis, "tags": tags}
        self.binding = RunBinding(run, integration=INTEGRATION, origin=_ORIGIN, **given, **start_run_kwargs)
        if checkpoint_mode not in ("auto", "min", "max"):
            raise InvalidValueError("checkpoint_mode", checkpoint_mode, "choose auto, min or max")
        if log_every_n_batches is not None and (
            not isinstance(log_every_n_batches, int) or log_every_n_batches < 1
        ):
            raise InvalidValueError("log_every_n_batches", log_every_n_batches, "give a positive int or None")
        self._given = run
        self.checkpoint_monitor = checkpoint_monitor
        self.checkpoint_mode = checkpoint_mode
        self.log_every_n_batches = log_every_n_batches
        self.log_model = log_model
        self.log_data = log_data
        self.predictions_split = predictions_split
        self._in_fit = False
        self._fit_model: Any = None  # the model being trained (found in fit when none was set)
        self._owner: Any = None  # the CallbackList calling this callback, when there is one
        self._stopper: Any = None  # the EarlyStopping whose best epoch this callback follows
        self._progress: order.Progress | None = None
        self._prefix = ""  # "fit_2/" for the second fit recorded into one run, ...
        self._offset: int | None = None  # step = epoch + offset
        self._epoch = 0
        self._step = 0
        self._batches = 0
        self._lr: float | None = None
        self._scores: dict[str, float] = {}
        self._monitor: str | None = None  # what best_epoch follows without checkpoint_monitor
        self._best: tuple[int, float] | None = None  # (epoch, score)
        self._best_checkpoint: str | None = None
        if log_every_n_batches is not None:
            # only then: a batch hook makes Keras hand over every batch's logs synchronously
            self.on_train_batch_end = self._log_batch

    @property
    def run(self) -> ll.Run | None:
        """The labledger run once ``fit`` has started."""
        return self.binding.resolved

    def __enter__(self) -> LedgerCallback:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: types.TracebackType | None) -> None:
        if exc is not None:
            self._in_fit = False
            self.binding.end(exc)
        self._cleanup()

    # -- fit ----------------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        previous = self.binding.resolved
        if previous is not None and previous is not self._given and (self.binding.owned or previous.ended):
            if not previous.ended:  # the previous fit never reached its end: an exception stopped it
                self.binding.end(
                    status="failed", detail="fit was interrupted by an exception before on_train_end"
                )
            self.binding = self.binding.renewed()  # a new fit, a new run
        self._cleanup()
        self._in_fit = True
        self._best = None
        self._best_checkpoint = None
        self._offset = None
        self._scores = {}
        self._progress, self._prefix = None, ""  # set once the run is known
        arguments, data, fit_model = fit_call(self.model)
        validated = arguments.get("validation_split") or arguments.get("validation_data")
        self._monitor = self.checkpoint_monitor or ("val_loss" if validated else None)
        self._fit_model = self.model if self.model is not None else fit_model
        self._owner = order.calling_list(self)
        self._stopper = order.early_stopping(self._owner, self.checkpoint_monitor)
        if self._owner is not None:
            order.attach(self._owner, self, self._after_epoch, self._finish)
        params: dict[str, Any] = model_params(self._fit_model) if self._fit_model is not None else {}
        params["fit"] = {
            **{k: plain(v) for k, v in self._keras_params().items() if k != "verbose"},
            **arguments,
        }
        if self._owner is not None:
            params["callbacks"] = callback_params(self._owner.callbacks, skip=LedgerCallback)
        self.binding.call(lambda run: self._begin(run, params, data), "the fit's params and data")

    def _begin(self, run: ll.Run, params: dict[str, Any], data: Any) -> None:
        self._progress = progress = order.progress(run)
        progress.fits += 1
        self._prefix = "" if progress.fits == 1 else f"fit_{progress.fits}/"
        self._batches = progress.batches
        run.log_params({self._prefix.rstrip("/"): params} if self._prefix else params)
        if self.log_data and data is not None:
            with contextlib.suppress(InvalidValueError):  # a generator or a type no plugin fingerprints
                run.log_dataset(f"{self._prefix}train", data, role="train")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._lr = learning_rate(self._fit_model)

    def _log_batch(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches += 1
        n = self.log_every_n_batches
        if n is not None and self._batches % n == 0 and logs:
            values = {f"batch/{k}": v for k, v in scalars(logs).items()}
            self.binding.call(
                lambda run: run.log_metrics(values, step=self._batches, epoch=self._epoch), "batch metrics"
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = scalars(logs or {})
        if self._lr is not None and "learning_rate" not in values:
            values["learning_rate"] = self._lr
        self._epoch = epoch
        if self._offset is None:  # the first epoch of this fit: continue after what the run holds
            self._offset = max(0, self._progress.next_step - epoch) if self._progress is not None else 0
        step = self._step = epoch + self._offset
        if self._progress is not None:
            self._progress.next_step = step + 1
        if values:
            self.binding.call(
                lambda run: run.log_metrics(values, step=step, epoch=epoch), "the epoch's metrics"
            )
        self._scores = values
        if self._owner is None:  # no list to wait for: judge the epoch now
            self._after_epoch(epoch)

    def _after_epoch(self, epoch: int) -> None:
        """Once every callback has seen the epoch: a new best epoch, and its checkpoint."""
        if not self._in_fit:
            return
        stopper = self._stopper
        if stopper is not None:  # EarlyStopping's own judgement, whatever the order of the callbacks
            best = getattr(stopper, "best", None)  # None (±inf in older Keras) until it judges an epoch
            if best is None or getattr(stopper, "best_epoch", None) != epoch or not math.isfinite(best):
                return
            score = float(best)
        else:
            # one metric for the whole fit: with validation_freq > 1, epochs without val_loss are skipped
            monitor = self._monitor or ("val_loss" if "val_loss" in self._scores else "loss")
            found = self._scores.get(monitor)
            if found is None or not self._improved(monitor, found):
                return
            score = found
        self._best = (epoch, score)
        if self.checkpoint_monitor is not None and self._fit_model is not None:
            self.binding.call(lambda run: self._save_checkpoint(run, epoch, score), "a checkpoint")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._owner is None:  # else once every callback's on_train_end has run
            self._finish()

    def _finish(self) -> None:
        if not self._in_fit:
            return
        self._in_fit = False
        self._owner = None
        summary: dict[str, float] = {}
        if self._best is not None:
            summary["best_epoch"] = self._best[0]
        stopped = self._stopped_epoch()
        if stopped is not None:
            summary["stopped_epoch"] = stopped
        if summary:
            self.binding.call(
                lambda run: run.log_metrics(summary, step=self._step, epoch=self._epoch), "the best epoch"
            )
        if self._progress is not None:
            self._progress.batches = self._batches
        if self._predictions is not None and self._fit_model is not None:
            self.binding.call(self._log_predictions, "the predictions")
        if self.log_model and self._fit_model is not None:
            self.binding.call(self._save_model, "the model")
        self.binding.end()
        self._cleanup()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._in_fit or not logs:  # validation inside fit arrives in the epoch logs
            return
        run = self.binding.resolved
        if run is not None and run.ended:  # the callback's own run ended with its fit
            return
        values = {f"test_{k}": v for k, v in scalars(logs).items()}
        model = self.model

        def log(run: ll.Run) -> None:
            progress = order.progress(run)
            if self.binding.owned and progress.fits == 0 and model is not None:
                run.log_params(model_params(model))
            step = progress.test_step = max(progress.next_step - 1, progress.test_step + 1, 0)
            run.log_metrics(values, step=step)

        self.binding.call(log, "the evaluation's metrics")
        if run is None and self.binding.owned:  # an evaluate of its own: one run, ended with it
            self.binding.end()

    # -- helpers ------------------------------------------------------------

    def _keras_params(self) -> dict[str, Any]:
        """What Keras set with ``set_params`` (epochs, steps, ...): nothing for a ``CallbackList`` given to
        ``fit`` or a custom loop (and no attribute at all before Keras 3.5)."""
        return getattr(self, "params", None) or {}

    def _stopped_epoch(self) -> int | None:
        if self._stopper is not None and self._stopper.stopped_epoch > 0:
            return int(self._stopper.stopped_epoch)
        epochs = self._keras_params().get("epochs")
        if epochs and getattr(self._fit_model, "stop_training", False) and self._epoch + 1 < epochs:
            return self._epoch
        return None

    def _improved(self, monitor: str, score: float) -> bool:
        if math.isnan(score):
            return False
        if self._best is None:
            return True
        mode = self.checkpoint_mode
        if mode == "auto":
            mode = "max" if any(s in monitor for s in _MAXIMIZED) else "min"
        return score > self._best[1] if mode == "max" else score < self._best[1]

    def _save_checkpoint(self, run: ll.Run, epoch: int, score: float) -> None:
        monitor = self.checkpoint_monitor
        name = f"{self._prefix}epoch={epoch}-{monitor}={score:.4f}.keras"
        metadata = {
            "epoch": epoch,
            "step": self._step,
            "monitor": monitor,
            "score": score,
            "class": qualified_name(self._fit_model),
            "format": "keras",
        }
        with tempfile.TemporaryDirectory(prefix="labledger-keras-") as folder:
            path = Path(folder) / Path(name).name
            with quiet():
                self._fit_model.save(path)
            run.log_artifact(path, kind="checkpoint", name=name, metadata=metadata)
        tags = {f"checkpoint/{name}": "best", f"{self._prefix}checkpoint/best": name}
        if self._best_checkpoint is not None:
            tags[f"checkpoint/{self._best_checkpoint}"] = "superseded"
        self._best_checkpoint = name
        run.set_tags(tags)

    def _log_predictions(self, run: ll.Run) -> None:
        assert self._predictions is not None
        x, y, features = self._predictions
        with unchanged_randomness(), quiet():
            outputs = self._fit_model.predict(x, verbose=0)
        name = f"predictions-{self._prefix.rstrip('/')}" if self._prefix else "predictions"
        from_outputs(outputs, y).log(run, split=self.predictions_split, name=name, features=features)

    def _save_model(self, run: ll.Run) -> None:
        with tempfile.TemporaryDirectory(prefix="labledger-keras-") as folder:
            path = Path(folder) / "model.keras"
            with quiet():
                self._fit_model.save(path)
            run.log_model(
                self._fit_model, name=f"{self._prefix}model.keras", path=path, metadata={"format": "keras"}
            )

    def _cleanup(self) -> None:
        if self._owner is not None:
            order.detach(self._owner, self)
            self._owner = None
