"""Feature-pipeline versions: a structural fingerprint of an estimator.

The structure of a scikit-learn ``Pipeline``, ``ColumnTransformer`` or any
estimator is its class (with the version of the library that defines it) and
its constructor parameters, recursively — never its fitted state. Two runs
that use the same pipeline get the same version, fitted or not, in any process
(set-valued parameters are sorted, whatever ``PYTHONHASHSEED``). Nothing that
changes from process to process enters it: functions are described by their
qualified name, frozen SciPy distributions by name and arguments, a NumPy
``RandomState`` or ``Generator`` by its class (its state changes as it is used),
arrays by content, and other objects by class and attributes, never by a
memory address.

>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from sklearn.svm import SVC
>>> pipeline_version(make_pipeline(StandardScaler(), SVC(C=1.0)))[:12]  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import sys
from typing import Any

__all__ = ["describe", "pipeline_version", "qualified_name", "stable_repr", "text"]

_MAX_DEPTH = 20
_MAX_ATTRIBUTES = 50
_ADDRESS = re.compile(r"\s+at 0x[0-9a-fA-F]+")


def stable_repr(value: Any) -> str:
    """``repr(value)`` without memory addresses (``<function f at 0x7f…>`` → ``<function f>``).

    >>> stable_repr(lambda: 0).startswith("<function <lambda>>")
    True
    """
    try:
        return _ADDRESS.sub("", repr(value))
    except Exception:  # a broken __repr__ must not stop logging
        return f"<{qualified_name(value)}>"


def text(estimator: Any) -> str | None:
    """The estimator as it prints (scikit-learn's repr) without memory addresses; ``None`` if it cannot."""
    try:
        return _ADDRESS.sub("", str(estimator))
    except Exception:
        return None


def qualified_name(obj: Any) -> str:
    """``module.Class`` of an object (or of a class / function itself)."""
    target = obj if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__")) else type(obj)
    module = getattr(target, "__module__", None) or "builtins"
    return f"{module}.{getattr(target, '__qualname__', type(target).__name__)}"


def _library_version(cls: type) -> str | None:
    top = (cls.__module__ or "").split(".")[0]
    mod = sys.modules.get(top)
    version = getattr(mod, "__version__", None)
    return str(version) if version is not None else None


def _numpy_object(value: Any, depth: int) -> Any:
    """A NumPy scalar, array, random generator or other NumPy object."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _canonical(value.item(), depth + 1)
    bit_generator = getattr(value, "bit_generator", None) or getattr(value, "_bit_generator", None)
    if bit_generator is not None:  # RandomState, Generator: their state changes as they are used
        name = type(value).__name__
        return {"class": f"numpy.random.{name}", "bit_generator": type(bit_generator).__name__}
    from labledger.lineage.fingerprint import fingerprint

    try:
        return {"array": fingerprint(value).digest}
    except TypeError:
        return {"class": qualified_name(value), "repr": stable_repr(value)}


def _frozen_distribution(value: Any) -> bool:
    """A frozen SciPy distribution such as ``scipy.stats.uniform(0, 1)``."""
    return (
        type(value).__module__.startswith("scipy.stats")
        and isinstance(getattr(getattr(value, "dist", None), "name", None), str)
        and isinstance(getattr(value, "args", None), tuple)
        and isinstance(getattr(value, "kwds", None), dict)
    )


def _other(value: Any, depth: int) -> Any:
    """An object of no known kind: by its repr, or by class and public attributes when the repr
    shows a memory address."""
    shown = stable_repr(value)
    attributes = getattr(value, "__dict__", None)
    try:
        plain = repr(value) == shown
    except Exception:
        plain = False
    if plain or not isinstance(attributes, dict) or len(attributes) > _MAX_ATTRIBUTES:
        return {"class": qualified_name(value), "repr": shown}
    public = {k: v for k, v in attributes.items() if isinstance(k, str) and not k.startswith("_")}
    return {"class": qualified_name(value), "attributes": _canonical(public, depth + 1)}


def _canonical(value: Any, depth: int = 0) -> Any:
    """A JSON-compatible, deterministic description of a parameter value."""
    if depth > _MAX_DEPTH:
        return {"repr": stable_repr(value)[:200]}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if hasattr(value, "get_params") and not isinstance(value, type):
        return describe(value, depth + 1)
    if isinstance(value, list | tuple):
        return [_canonical(v, depth + 1) for v in value]
    if isinstance(value, set | frozenset):  # sorted: iteration order depends on PYTHONHASHSEED
        items = [_canonical(v, depth + 1) for v in value]
        return {type(value).__name__: sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=str))}
    if isinstance(value, dict):
        return {str(k): _canonical(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return {"callable": qualified_name(value)}
    if isinstance(value, functools.partial):
        return {
            "callable": "functools.partial",
            "func": _canonical(value.func, depth + 1),
            "args": _canonical(list(value.args), depth + 1),
            "keywords": _canonical(dict(value.keywords), depth + 1),
        }
    if type(value).__module__.split(".")[0] == "numpy":
        return _numpy_object(value, depth)
    if _frozen_distribution(value):
        return {
            "distribution": f"scipy.stats.{value.dist.name}",
            "args": _canonical(list(value.args), depth + 1),
            "kwds": _canonical(value.kwds, depth + 1),
        }
    if hasattr(value, "get_config"):  # e.g. Keras objects
        return {"class": qualified_name(value), "config": _canonical(value.get_config(), depth + 1)}
    from labledger.lineage.fingerprint import _mro_handler

    if _mro_handler(value) is not None:  # a DataFrame, a tensor, ...: by content
        from labledger.lineage.fingerprint import fingerprint

        return {"data": fingerprint(value).digest}
    return _other(value, depth)


def describe(estimator: Any, depth: int = 0) -> dict[str, Any]:
    """The structure of an estimator: class, library version and parameters, recursively."""
    cls = type(estimator)
    out: dict[str, Any] = {"class": qualified_name(estimator), "version": _library_version(cls)}
    if hasattr(estimator, "get_params"):
        params = estimator.get_params(deep=False)
        out["params"] = {k: _canonical(v, depth + 1) for k, v in sorted(params.items())}
    elif hasattr(estimator, "get_config"):
        out["config"] = _canonical(estimator.get_config(), depth + 1)
    else:
        out["repr"] = stable_repr(estimator)
    return out


def pipeline_version(estimator: Any) -> str:
    """The hex SHA-256 of :func:`describe` — equal for structurally equal pipelines."""
    text = json.dumps(describe(estimator), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
