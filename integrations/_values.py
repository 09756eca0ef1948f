"""Framework objects as plain values: params that are JSON-compatible, readable and never hold an address.

Part of :mod:`labledger.integrations.base`. Nothing here imports a framework: NumPy
objects are recognised only when NumPy is already loaded.
"""

from __future__ import annotations

import enum
import functools
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

__all__ = ["Plain", "plain", "qualified_name", "scalars"]

#: A JSON-compatible value, as :func:`plain` returns it (floats may be NaN or infinite).
Plain: TypeAlias = "bool | int | float | str | list[Plain] | dict[str, Plain] | None"
#: ``describe(obj)``: a description of ``obj``, or ``None`` to let :func:`plain` describe it.
Describe: TypeAlias = Callable[[object], "Plain"]

_EXACT = (type(None), bool, int, float, str)
_MAX_DEPTH = 12
#: Arrays and tensors up to this many elements become lists; larger ones a short description.
_MAX_ELEMENTS = 1000
_ADDRESS = re.compile(r"\s+at 0x[0-9a-fA-F]+")


def qualified_name(obj: object) -> str:
    """``module.QualName`` of a class, function or method; of the object's class otherwise.

    A bound method reads ``module.Class.method``; ``__mp_main__`` (a spawned worker's main
    module) reads ``__main__``.

    >>> qualified_name(collections.OrderedDict())  # doctest: +SKIP
    'collections.OrderedDict'
    >>> qualified_name(json.dumps)  # doctest: +SKIP
    'json.dumps'
    """
    target = getattr(obj, "__func__", obj)  # a bound method: its function
    if not (isinstance(target, type) or (callable(target) and hasattr(target, "__qualname__"))):
        target = type(obj)
    module = getattr(target, "__module__", None) or getattr(type(target), "__module__", None) or "builtins"
    if module == "__mp_main__":
        module = "__main__"
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    owner = getattr(obj, "__self__", None)
    if owner is not None and not isinstance(owner, type) and "." not in name and not inspect.ismodule(owner):
        name = f"{type(owner).__qualname__}.{name}"
    return f"{module}.{name}"


def plain(value: object, *, describe: Describe | None = None) -> Plain:
    """A JSON-compatible stand-in for ``value``, the same in every process: what a param can hold.

    Numbers, strings, booleans and ``None`` stay (a NaN stays a float NaN); NumPy scalars and
    one-element arrays or tensors become numbers, other arrays lists; mappings, sequences and
    sets (sorted) are converted item by item; an enum gives its value; a path its text. Objects
    are described: a class, function or method by :func:`qualified_name`; a NumPy
    ``RandomState`` by its seed while nothing was drawn from it (``numpy.random.RandomState(0)``),
    a ``Generator`` by the seed it was made with; a frozen SciPy distribution by name and
    arguments (``scipy.stats.uniform(loc=0, scale=1)``); ``functools.partial`` by its parts;
    an object with ``get_params()`` (a scikit-learn estimator) by its class and the params
    that differ from their defaults; anything else by its text without memory addresses
    (its class name when that is all the text says).

    :param describe: asked first about every object that is not a plain value, at any depth;
        it returns a description, or ``None`` to let ``plain`` describe the object.

    >>> plain({"lr": np.float32(0.5), "betas": (0.9, 0.999), "loss": nn.MSELoss})  # doctest: +SKIP
    {'lr': 0.5, 'betas': [0.9, 0.999], 'loss': 'torch.nn.modules.loss.MSELoss'}
    >>> plain(float("nan"))
    nan
    """
    return _plain(value, describe, 0)


def _plain(value: object, describe: Describe | None, depth: int) -> Plain:
    if type(value) in _EXACT:
        return value  # type: ignore[return-value]
    if depth > _MAX_DEPTH:
        return _text(value)[:200]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, describe, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, describe, depth + 1) for v in value]
    if isinstance(value, set | frozenset):  # sorted: set order depends on PYTHONHASHSEED
        return sorted((_plain(v, describe, depth + 1) for v in value), key=repr)
    if describe is not None:
        described = describe(value)
        if described is not None:
            return described
    if isinstance(value, enum.Enum):
        inner = value.value
        return _plain(inner, describe, depth + 1) if isinstance(inner, int | float | str) else value.name
    if isinstance(value, bool | int | float | str):  # subclasses: NumPy's float64, str enums
        return next(kind(value) for kind in (bool, int, float, str) if isinstance(value, kind))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    size = _element_count(value)
    if size == 1:  # NumPy scalars, one-element arrays and tensors
        try:
            return _plain(value.item(), describe, depth + 1)  # type: ignore[attr-defined]
        except (TypeError, ValueError, RuntimeError):
            pass
    elif size is not None and size <= _MAX_ELEMENTS and callable(getattr(value, "tolist", None)):
        return _plain(value.tolist(), describe, depth + 1)  # type: ignore[attr-defined]
    return _describe(value, describe, depth)


def _element_count(value: object) -> int | None:
    numel = getattr(value, "numel", None)
    if callable(numel):
        try:
            return int(numel())
        except (TypeError, ValueError, RuntimeError):
            return None
    size = getattr(value, "size", None)
    return size if isinstance(size, int) and hasattr(value, "item") else None


def _describe(value: object, describe: Describe | None, depth: int) -> str:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.random.RandomState):
        return _random_state_text(value)
    if np is not None and isinstance(value, np.random.Generator):
        return _generator(value)
    if _frozen_distribution(value):
        return _distribution(value, describe, depth)
    if isinstance(value, functools.partial):
        args = [_shown(a, describe, depth) for a in value.args]
        args += [f"{k}={_shown(v, describe, depth)}" for k, v in value.keywords.items()]
        return f"functools.partial({', '.join([qualified_name(value.func), *args])})"
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return qualified_name(value)
    if callable(getattr(value, "get_params", None)):
        return _estimator(value, describe, depth)
    text = _text(value)
    defaults = (f"<{qualified_name(value)} object>", f"<{type(value).__qualname__} object>")
    return qualified_name(value) if text in defaults else text  # a default repr says no more


def _text(value: object) -> str:
    try:
        return _ADDRESS.sub("", str(value))
    except Exception:  # a broken __str__ must not stop recording
        return qualified_name(value)


def _shown(value: object, describe: Describe | None, depth: int, described: Plain = None) -> str:
    """How a value reads inside a description: strings quoted, described objects as they read."""
    if described is None:
        described = _plain(value, describe, depth + 1)
    if isinstance(described, str) and not isinstance(value, str):
        return described
    return repr(described)


def _random_state_text(state: Any) -> str:
    """``numpy.random.RandomState(<seed>)`` while nothing was drawn from it, else without the seed."""
    seed = _random_state_seed(state)
    return "numpy.random.RandomState" if seed is None else f"numpy.random.RandomState({seed})"


def _random_state_seed(state: Any) -> int | None:
    """The integer a ``RandomState`` was seeded with, when nothing was drawn from it since."""
    import numpy as np

    try:
        name, keys, pos, has_gauss, _ = state.get_state(legacy=True)
    except (TypeError, ValueError):
        return None
    if name != "MT19937" or pos != 624 or has_gauss:
        return None
    seed = int(keys[0])
    fresh: Any = np.random.RandomState(seed).get_state(legacy=True)
    return seed if np.array_equal(fresh[1], keys) else None


def _generator(generator: Any) -> str:
    bit_generator = generator.bit_generator
    entropy = getattr(getattr(bit_generator, "seed_seq", None), "entropy", None)
    if isinstance(entropy, int) and entropy < 2**63:  # small ints: a seed the user gave
        return f"numpy.random.default_rng({entropy})"
    return f"numpy.random.Generator({type(bit_generator).__name__})"


def _frozen_distribution(value: object) -> bool:
    return (
        type(value).__module__.startswith("scipy.stats")
        and isinstance(getattr(getattr(value, "dist", None), "name", None), str)
        and isinstance(getattr(value, "args", None), tuple)
        and isinstance(getattr(value, "kwds", None), Mapping)
    )


def _distribution(frozen: Any, describe: Describe | None, depth: int) -> str:
    dist = frozen.dist
    shapes = [s.strip() for s in (dist.shapes or "").split(",") if s.strip()]
    discrete = type(frozen).__name__.startswith("rv_discrete") or hasattr(dist, "pmf")
    names = [*shapes, "loc"] if discrete else [*shapes, "loc", "scale"]
    args = [
        f"{names[i] if i < len(names) else i}={_shown(a, describe, depth)}" for i, a in enumerate(frozen.args)
    ]
    args += [f"{k}={_shown(v, describe, depth)}" for k, v in frozen.kwds.items()]
    return f"scipy.stats.{dist.name}({', '.join(args)})"


def _estimator(estimator: Any, describe: Describe | None, depth: int) -> str:
    """``Class(param=value, ...)`` with the params that differ from the class's defaults."""
    try:
        params = estimator.get_params(deep=False)
        signature = inspect.signature(type(estimator).__init__).parameters
    except Exception:  # not scikit-learn's convention after all
        return _text(estimator)
    shown = []
    for key, value in params.items():
        described = _plain(value, describe, depth + 1)
        default = getattr(signature.get(key), "default", inspect.Parameter.empty)
        if default is not inspect.Parameter.empty and (
            value is default or described == _plain(default, describe, depth + 1)
        ):
            continue
        shown.append(f"{key}={_shown(value, describe, depth, described)}")
    return f"{type(estimator).__qualname__}({', '.join(shown)})"


def scalars(metrics: Mapping[str, object]) -> dict[str, float]:
    """The entries of ``metrics`` that are one number each, as floats: Python and NumPy numbers,
    one-element arrays and tensors. Strings, booleans, ``None`` and larger arrays are left out.

    >>> scalars({"loss": torch.tensor(0.25), "acc": np.float64(0.9), "note": "x"})  # doctest: +SKIP
    {'loss': 0.25, 'acc': 0.9}
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if type(value) is float:  # what Lightning and Keras hand over: the hot path
            out[key if type(key) is str else str(key)] = value
            continue
        if isinstance(value, bool | str | bytes) or value is None:
            continue
        if _element_count(value) not in (None, 1):
            continue
        try:
            item = value.item() if hasattr(value, "item") else value
            out[str(key)] = float(item)  # type: ignore[arg-type]
        except (TypeError, ValueError, RuntimeError, OverflowError):
            continue
    return out
