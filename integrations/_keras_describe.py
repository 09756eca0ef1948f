"""What the Keras callback records as params: model, compile, optimizer, fit arguments, other callbacks.

Everything here reads Keras objects and returns plain, JSON-compatible values
(numbers stay numbers, flags stay booleans); nothing here writes to a run.
"""

from __future__ import annotations

import contextlib
import math
import sys
import types
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import keras

from labledger.integrations.base import plain, qualified_name

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
#: Settings recorded as ``callbacks/<class>/<setting>`` for these Keras callbacks (and their subclasses).
CALLBACK_SETTINGS: tuple[tuple[type, tuple[str, ...]], ...] = (
    (
        keras.callbacks.EarlyStopping,
        ("monitor", "mode", "min_delta", "patience", "baseline", "restore_best_weights", "start_from_epoch"),
    ),
    (
        keras.callbacks.ReduceLROnPlateau,
        ("monitor", "mode", "factor", "min_delta", "patience", "cooldown", "min_lr"),
    ),
    (
        keras.callbacks.ModelCheckpoint,
        ("filepath", "monitor", "mode", "save_best_only", "save_weights_only", "save_freq"),
    ),
)
#: Callbacks Keras adds to every ``fit`` itself: not recorded.
_BUILT_IN = (keras.callbacks.History, keras.callbacks.ProgbarLogger)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Keras' own NumPy 2 deprecation notice when it reads a variable for us."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="__array__ implementation doesn't accept a copy", category=DeprecationWarning
        )
        yield


def _call(obj: Any, method: str) -> Any:
    try:
        with quiet():
            return getattr(obj, method)()
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        return None


def describe(value: Any) -> Any:
    """A compile argument (loss, metrics) as a plain value: names stay, objects give class and config."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    config = _call(value, "get_config")
    if isinstance(config, dict) and not isinstance(value, type):
        return {"class": qualified_name(value), **{str(k): plain(v) for k, v in config.items()}}
    return plain(value)


def model_summary(model: Any) -> dict[str, Any]:
    """``model/*``: class, layer count, parameter counts and ``get_config()``."""
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


def model_params(model: Any) -> dict[str, Any]:
    """The params describing a compiled model: ``model``, ``compile`` and ``optimizer``."""
    params: dict[str, Any] = {"model": model_summary(model)}
    compile_config = getattr(getattr(model, "_compile_config", None), "config", None)
    if compile_config:
        params["compile"] = {k: describe(v) for k, v in compile_config.items() if k != "optimizer"}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        with quiet():
            config = optimizer.get_config()
        params["optimizer"] = {
            "class": qualified_name(optimizer),
            **{str(k): plain(v) for k, v in config.items()},
        }
    return params


def learning_rate(model: Any) -> float | None:
    """The optimizer's learning rate now (a schedule's current value), or ``None``."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        with quiet():
            return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return None


def fit_call(model: Any) -> tuple[dict[str, Any], Any, Any]:
    """The arguments ``fit`` was called with, its training inputs and its model.

    Read from ``fit``'s frame (Keras does not pass them on to callbacks): ``model``
    is the callback's model, or ``None`` to accept any Keras model's ``fit``.
    Returns ``({}, None, None)`` outside ``fit`` (a custom training loop).
    """
    frame: types.FrameType | None = sys._getframe(1)
    for _ in range(16):
        if frame is None:
            break
        if frame.f_code.co_name == "fit":
            found = frame.f_locals
            owner = found.get("self")
            if owner is model or (model is None and isinstance(owner, keras.Model)):
                return _fit_arguments(found), found.get("x"), owner
        frame = frame.f_back
    return {}, None, None


def _fit_arguments(found: dict[str, Any]) -> dict[str, Any]:
    arguments = {k: plain(found[k]) for k in FIT_ARGUMENTS if k in found}
    x = found.get("x")
    if arguments.get("batch_size") is None and hasattr(x, "shape"):
        arguments["batch_size"] = 32  # what Keras uses for arrays when none is given
    arguments["validation_data"] = found.get("validation_data") is not None and not found.get(
        "validation_split"
    )
    if "class_weight" in found:
        weights = found["class_weight"]
        arguments["class_weight"] = plain(dict(weights)) if weights else None
    if "sample_weight" in found:
        arguments["sample_weight"] = found["sample_weight"] is not None
    return arguments


def callback_params(callbacks: Iterable[Any], skip: type) -> dict[str, Any]:
    """``callbacks/*``: every other callback's class, and the settings of the ones that steer training.

    ``callbacks/classes`` lists the callbacks (Keras' own ``History`` and progress
    bar, and instances of ``skip``, left out); ``callbacks/EarlyStopping/patience``,
    ``callbacks/ReduceLROnPlateau/factor``, ``callbacks/ModelCheckpoint/save_best_only``
    … keep each setting's type. A second callback of one class is ``<class>_2``.
    """
    classes: list[str] = []
    settings: dict[str, Any] = {}
    for callback in callbacks:
        if isinstance(callback, (*_BUILT_IN, skip)):
            continue
        classes.append(qualified_name(callback))
        for kind, names in CALLBACK_SETTINGS:
            if isinstance(callback, kind):
                values = {n: _setting(callback, n) for n in names if hasattr(callback, n)}
                name = type(callback).__name__
                key, n = name, 1
                while key in settings:
                    n += 1
                    key = f"{name}_{n}"
                settings[key] = values
                break
    return {"classes": classes, **settings}


def _setting(callback: Any, name: str) -> Any:
    value = getattr(callback, name)
    if name == "min_delta" and isinstance(value, int | float):
        return abs(value)  # Keras flips its sign once it knows the direction
    return plain(value)
