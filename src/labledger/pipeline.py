"""Feature-pipeline versions: a structural fingerprint of an estimator.

The structure of a scikit-learn ``Pipeline``, ``ColumnTransformer`` or any
estimator is its class (with the version of the library that defines it) and
its constructor parameters, recursively — never its fitted state. Two runs
that use the same pipeline get the same version, fitted or not, in any process
(set-valued parameters are sorted, whatever ``PYTHONHASHSEED``).

>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from sklearn.svm import SVC
>>> pipeline_version(make_pipeline(StandardScaler(), SVC(C=1.0)))[:12]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from typing import Any

__all__ = ["describe", "pipeline_version", "qualified_name"]

_MAX_DEPTH = 20


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


def _canonical(value: Any, depth: int = 0) -> Any:
    """A JSON-compatible, deterministic description of a parameter value."""
    if depth > _MAX_DEPTH:
        return {"repr": repr(value)[:200]}
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
    if type(value).__module__.split(".")[0] == "numpy":
        from labledger.fingerprint import fingerprint

        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            return _canonical(value.item(), depth + 1)
        return {"array": fingerprint(value).digest}
    if hasattr(value, "get_config"):  # e.g. Keras objects
        return {"class": qualified_name(value), "config": _canonical(value.get_config(), depth + 1)}
    return {"class": qualified_name(value), "repr": repr(value)}


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
        out["repr"] = repr(estimator)
    return out


def pipeline_version(estimator: Any) -> str:
    """The hex SHA-256 of :func:`describe` — equal for structurally equal pipelines."""
    text = json.dumps(describe(estimator), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
