"""Keras 3: record ``model.fit`` into labledger with one callback (any backend).

>>> from labledger.integrations.keras import LedgerCallback
>>> model.fit(x, y, epochs=10, validation_split=0.2,  # doctest: +SKIP
...           callbacks=[LedgerCallback("digits-cnn", checkpoint_monitor="val_loss")])

Records the model (class, ``get_config()``, layer and parameter counts), the
optimizer's config (learning-rate schedules included), the loss and metrics
given to ``compile``, the fit arguments, the training data's fingerprint,
every epoch's logs (step = epoch) and the learning rate in effect, optionally
every N batches, each new best checkpoint by ``checkpoint_monitor`` and the
final model (``.keras`` files), and early stopping (stopped and best epoch).
"""

from __future__ import annotations

import contextlib
import math
import sys
import tempfile
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras

import labledger as ll
from labledger.errors import InvalidValueError
from labledger.integrations._training import RunBinding, describe, numbers, plain, qualified_name, status_of

__all__ = ["LedgerCallback"]

#: Arguments of ``Model.fit`` recorded as ``fit/*`` params when they can be read.
FIT_ARGUMENTS = (
    "batch_size",
    "epochs",
    "validation_split",
    "shuffle",
    "initial_epoch",
    "steps_per_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)
_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "iou")


class LedgerCallback(keras.callbacks.Callback):
    """Record a Keras ``fit`` into a labledger run.

    :param experiment: experiment name for the run it starts (same as ``experiment=``).
    :param run: log to this run instead (never ended by the callback).
    :param checkpoint_monitor: store a ``.keras`` checkpoint each time this epoch log
        (e.g. ``"val_loss"``) improves; ``None`` stores no checkpoints. ``best_epoch``
        is recorded by this metric, else by ``val_loss`` (or ``loss``).
    :param checkpoint_mode: ``"min"``, ``"max"`` or ``"auto"`` (``max`` for accuracy-like names).
    :param log_every_n_batches: also log batch logs (``batch/<name>``) every N batches.
    :param log_model: store the final model as a ``model`` artifact at the end of ``fit``.
    :param log_data: record the training data's fingerprint as the dataset ``train``.
    :param start_run_kwargs: passed to :func:`labledger.start_run` (``name``, ``tags``,
        ``hypothesis``, …) when no run is given and none is active.

    A run the callback starts ends with ``fit``. An exception that escapes ``fit``
    ends it ``failed`` (``killed`` for Ctrl-C) inside ``with LedgerCallback(...) as cb:``
    at once, otherwise when the program exits.

    >>> cb = LedgerCallback("digits-mlp", checkpoint_monitor="val_accuracy", log_every_n_batches=10)
    >>> history = model.fit(x, y, epochs=5, validation_split=0.2, callbacks=[cb])  # doctest: +SKIP
    >>> cb.run.id  # doctest: +SKIP
    """

    def __init__(
        self,
        experiment: str | None = None,
        *,
        run: ll.Run | None = None,
        checkpoint_monitor: str | None = None,
        checkpoint_mode: str = "auto",
        log_every_n_batches: int | None = None,
        log_model: bool = True,
        log_data: bool = True,
        **start_run_kwargs: Any,
    ) -> None:
        super().__init__()
        if experiment is not None:
            start_run_kwargs = {"experiment": experiment, **start_run_kwargs}
        if checkpoint_mode not in ("auto", "min", "max"):
            raise InvalidValueError("checkpoint_mode", checkpoint_mode, "choose auto, min or max")
        if log_every_n_batches is not None and (
            not isinstance(log_every_n_batches, int) or log_every_n_batches < 1
        ):
            raise InvalidValueError("log_every_n_batches", log_every_n_batches, "give a positive int or None")
        self.binding = RunBinding(run, start_run_kwargs)
        self.checkpoint_monitor = checkpoint_monitor
        self.checkpoint_mode = checkpoint_mode
        self.log_every_n_batches = log_every_n_batches
        self.log_model = log_model
        self.log_data = log_data
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._in_fit = False
        self._epoch = 0
        self._batches = 0
        self._lr: float | None = None
        self._best: tuple[int, float] | None = None  # (epoch, score): checkpoint_monitor, else val_loss/loss
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
            self.binding.end(status_of(exc), describe(exc))
        self._cleanup()

    # -- fit ----------------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        previous = self.binding.resolved
        if self.binding.owned and previous is not None and previous.ended:  # a new fit, a new run
            self.binding = RunBinding(None, self.binding.start_run_kwargs)
            self._best_checkpoint = None
        self._in_fit = True
        self._batches = 0
        self._best = None
        self._folder = tempfile.TemporaryDirectory(prefix="labledger-keras-")
        model = self.model
        params: dict[str, Any] = {"model": _model_summary(model)}
        compile_config = getattr(getattr(model, "_compile_config", None), "config", None)
        if compile_config:
            params["compile"] = {k: _describe(v) for k, v in compile_config.items() if k != "optimizer"}
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            with _quiet():
                config = optimizer.get_config()
            params["optimizer"] = {"class": qualified_name(optimizer), **plain(config)}
        arguments, data = _fit_arguments(model)
        params["fit"] = {**{k: plain(v) for k, v in self.params.items() if k != "verbose"}, **arguments}
        self.binding.call(lambda run: run.log_params(params))
        if self.log_data and data is not None:
            self.binding.call(lambda run: _log_data(run, data))

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._lr = _learning_rate(self.model)

    def _log_batch(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches += 1
        n = self.log_every_n_batches
        if n is not None and self._batches % n == 0 and logs:
            values = {f"batch/{k}": v for k, v in numbers(logs).items()}
            self.binding.call(lambda run: run.log_metrics(values, step=self._batches, epoch=self._epoch))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = numbers(logs or {})
        if self._lr is not None and "learning_rate" not in values:
            values["learning_rate"] = self._lr
        if values:
            self.binding.call(lambda run: run.log_metrics(values, step=epoch, epoch=epoch))
        monitor = self.checkpoint_monitor or ("val_loss" if "val_loss" in values else "loss")
        score = values.get(monitor)
        if score is not None and self._improved(monitor, score):
            self._best = (epoch, score)
            if self.checkpoint_monitor is not None:
                self.binding.call(lambda run: self._save_checkpoint(run, epoch, score))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._in_fit = False
        summary: dict[str, float] = {}
        if self._best is not None:
            summary["best_epoch"] = self._best[0]
        epochs = self.params.get("epochs")
        if getattr(self.model, "stop_training", False) and epochs and self._epoch + 1 < epochs:
            summary["stopped_epoch"] = self._epoch
        if summary:
            self.binding.call(lambda run: run.log_metrics(summary, step=self._epoch, epoch=self._epoch))
        if self.log_model:
            self.binding.call(self._save_model)
        self.binding.end("finished")
        self._cleanup()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._in_fit or not logs:  # validation inside fit arrives in the epoch logs
            return
        run = self.binding.resolved
        if run is None or not run.ended:
            values = {f"test_{k}": v for k, v in numbers(logs).items()}
            self.binding.call(lambda run: run.log_metrics(values, step=self._epoch))

    # -- helpers ------------------------------------------------------------

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
        assert self._folder is not None
        name = f"epoch={epoch}-{self.checkpoint_monitor}={score:.4f}.keras"
        path = Path(self._folder.name) / name
        with _quiet():
            self.model.save(path)
        metadata = {
            "epoch": epoch,
            "step": epoch,
            "monitor": self.checkpoint_monitor,
            "score": score,
            "class": qualified_name(self.model),
            "format": "keras",
        }
        run.log_artifact(path, kind="checkpoint", name=name, metadata=metadata)
        path.unlink()
        tags = {f"checkpoint/{name}": "best", "checkpoint/best": name}
        if self._best_checkpoint is not None:
            tags[f"checkpoint/{self._best_checkpoint}"] = "superseded"
        self._best_checkpoint = name
        run.set_tags(tags)

    def _save_model(self, run: ll.Run) -> None:
        assert self._folder is not None
        path = Path(self._folder.name) / "model.keras"
        with _quiet():
            self.model.save(path)
        run.log_model(self.model, name="model.keras", path=path, metadata={"format": "keras"})

    def _cleanup(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Keras' own NumPy 2 deprecation notice when it reads a variable for us."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="__array__ implementation doesn't accept a copy", category=DeprecationWarning
        )
        yield


def _call(obj: Any, method: str) -> Any:
    try:
        with _quiet():
            return getattr(obj, method)()
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        return None


def _describe(value: Any) -> Any:
    """A compile argument (loss, metrics) as a plain value: names stay, objects give class and config."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in value.items()}
    config = _call(value, "get_config")
    if isinstance(config, dict) and not isinstance(value, type):
        return {"class": qualified_name(value), **plain(config)}
    return plain(value)


def _model_summary(model: Any) -> dict[str, Any]:
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    total = model.count_params() if model.built else trainable
    summary: dict[str, Any] = {
        "class": qualified_name(model),
        "layers": len(model.layers),
        "params": {"total": int(total), "trainable": int(trainable), "non_trainable": int(total - trainable)},
    }
    config = _call(model, "get_config")
    if config:
        summary["config"] = plain(config)
    return summary


def _learning_rate(model: Any) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        with _quiet():
            return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return None


def _fit_arguments(model: Any) -> tuple[dict[str, Any], Any]:
    """The arguments ``fit`` was called with, read from its frame (Keras does not pass them on)."""
    frame: types.FrameType | None = sys._getframe(1)
    for _ in range(16):
        if frame is None:
            break
        if frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model:
            found = frame.f_locals
            arguments = {k: plain(found[k]) for k in FIT_ARGUMENTS if k in found}
            x = found.get("x")
            if arguments.get("batch_size") is None and hasattr(x, "shape"):
                arguments["batch_size"] = 32  # what Keras uses for arrays when none is given
            given = found.get("validation_data") is not None and not found.get("validation_split")
            arguments["validation_data"] = given
            return arguments, x
        frame = frame.f_back
    return {}, None


def _log_data(run: ll.Run, data: Any) -> None:
    with contextlib.suppress(InvalidValueError):  # a generator or a type no plugin fingerprints
        run.log_dataset("train", data, role="train")
