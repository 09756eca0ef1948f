"""Stable, readable descriptions of scikit-learn param values: no memory address ever enters a param.

Two identical runs must record identical params, in any process. ``repr``
shows addresses for many values a search holds (``<function f_classif at
0x7f…>``, ``RandomState(MT19937) at 0x7F…``, ``<…rv_continuous_frozen object
at 0x…>``); :func:`plain` describes them instead:

- a frozen SciPy distribution by name and arguments: ``scipy.stats.uniform(loc=0, scale=1)``;
- a NumPy ``RandomState`` by its seed when it is known — the generator was
  seeded with an integer and not yet drawn from when :func:`remembered_seeds`
  looked at it — else ``numpy.random.RandomState``; a ``Generator`` by the
  entropy it was seeded with (``numpy.random.default_rng(42)``);
- functions, classes and methods by qualified name, ``functools.partial`` by its parts;
- an estimator by class and the params that differ from their defaults;
- anything else by ``repr`` without addresses.

This module imports neither scikit-learn nor SciPy.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from labledger.lineage.pipeline import stable_repr

__all__ = ["estimator_params", "plain", "qualname", "remembered_seeds"]

_PRIMITIVES = (str, int, float, bool, type(None))
_MAX_DEPTH = 12
#: RandomState descriptions taken before a fit drew from the generators (id → text).
_seeds: contextvars.ContextVar[Mapping[int, str]] = contextvars.ContextVar("labledger_sklearn_seeds")


def qualname(obj: Any) -> str:
    """``module.QualName`` of a class, or of an object's class."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-compatible, process-independent stand-in for a param value.

    >>> plain(np.random.RandomState(3)) in ("numpy.random.RandomState(3)", "numpy.random.RandomState")
    True
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _PRIMITIVES):
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)
        return value
    if depth > _MAX_DEPTH:
        return stable_repr(value)[:200]
    if isinstance(value, list | tuple):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, set | frozenset):  # sorted: set order depends on PYTHONHASHSEED
        return sorted((plain(v, depth + 1) for v in value), key=repr)
    if isinstance(value, np.ndarray):
        return plain(value.tolist(), depth + 1)
    return _describe(value, depth)


def _describe(value: Any, depth: int) -> str:
    if isinstance(value, np.random.RandomState):
        return _seeds.get({}).get(id(value)) or _random_state(value)
    if isinstance(value, np.random.Generator):
        return _generator(value)
    if _frozen_distribution(value):
        return _distribution(value, depth)
    if isinstance(value, functools.partial):
        args = [_shown(a, depth) for a in value.args]
        args += [f"{k}={_shown(v, depth)}" for k, v in value.keywords.items()]
        return f"functools.partial({', '.join([_callable(value.func), *args])})"
    if hasattr(value, "get_params") and not isinstance(value, type):
        return _estimator(value, depth)
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return _callable(value)
    return stable_repr(value)


def _shown(value: Any, depth: int, described: Any = None) -> str:
    """How a value appears inside a description: strings quoted, described objects as they read."""
    if described is None:
        described = plain(value, depth + 1)
    if isinstance(described, str) and not isinstance(value, str):
        return described
    return repr(described)


def _callable(fn: Any) -> str:
    target = getattr(fn, "__func__", fn)  # a bound method: its function
    owner = getattr(fn, "__self__", None)
    module = getattr(target, "__module__", None) or getattr(type(target), "__module__", "builtins")
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    if owner is not None and not isinstance(owner, type) and "." not in name:
        name = f"{type(owner).__qualname__}.{name}"
    return f"{module}.{name}"


def _random_state(state: np.random.RandomState) -> str:
    seed = random_state_seed(state)
    return "numpy.random.RandomState" if seed is None else f"numpy.random.RandomState({seed})"


def random_state_seed(state: np.random.RandomState) -> int | None:
    """The integer a ``RandomState`` was seeded with, when nothing was drawn from it since; else ``None``."""
    try:
        raw: Any = state.get_state(legacy=True)
        name, keys, pos, has_gauss, _ = raw
    except (TypeError, ValueError):
        return None
    if name != "MT19937" or pos != 624 or has_gauss:
        return None
    seed = int(keys[0])
    fresh: Any = np.random.RandomState(seed).get_state(legacy=True)
    return seed if np.array_equal(fresh[1], keys) else None


def _generator(generator: np.random.Generator) -> str:
    bit_generator = generator.bit_generator
    entropy = getattr(getattr(bit_generator, "seed_seq", None), "entropy", None)
    if isinstance(entropy, int) and entropy < 2**63:  # small ints: a seed the user gave
        return f"numpy.random.default_rng({entropy})"
    return f"numpy.random.Generator({type(bit_generator).__name__})"


def _frozen_distribution(value: Any) -> bool:
    return (
        type(value).__module__.startswith("scipy.stats")
        and isinstance(getattr(getattr(value, "dist", None), "name", None), str)
        and isinstance(getattr(value, "args", None), tuple)
        and isinstance(getattr(value, "kwds", None), Mapping)
    )


def _distribution(frozen: Any, depth: int) -> str:
    dist = frozen.dist
    shapes = [s.strip() for s in (dist.shapes or "").split(",") if s.strip()]
    discrete = type(frozen).__name__.startswith("rv_discrete") or hasattr(dist, "pmf")
    names = [*shapes, "loc"] if discrete else [*shapes, "loc", "scale"]
    args = [f"{names[i] if i < len(names) else i}={_shown(a, depth)}" for i, a in enumerate(frozen.args)]
    args += [f"{k}={_shown(v, depth)}" for k, v in frozen.kwds.items()]
    return f"scipy.stats.{dist.name}({', '.join(args)})"


def _estimator(estimator: Any, depth: int) -> str:
    """``Class(param=value, ...)`` with the params that differ from the class's defaults."""
    try:
        params = estimator.get_params(deep=False)
        signature = inspect.signature(type(estimator).__init__).parameters
    except Exception:
        return stable_repr(estimator)
    shown = []
    for key, value in params.items():
        described = plain(value, depth + 1)
        default = getattr(signature.get(key), "default", inspect.Parameter.empty)
        if default is not inspect.Parameter.empty and (
            value is default or described == plain(default, depth + 1)
        ):
            continue
        shown.append(f"{key}={_shown(value, depth, described)}")
    return f"{type(estimator).__qualname__}({', '.join(shown)})"


def estimator_params(estimator: Any) -> dict[str, Any]:
    """``{param: value}`` of an estimator and its nested estimators (sub-estimators by class)."""
    out: dict[str, Any] = {}
    for key, value in estimator.get_params(deep=True).items():
        if hasattr(value, "get_params") and not isinstance(value, type):
            out[key] = qualname(value)
        elif key in ("steps", "transformers", "transformer_list"):
            out[key] = [str(step[0]) for step in value]
        else:
            out[key] = plain(value)
    return out


def _random_states(value: Any, depth: int = 0) -> Iterator[np.random.RandomState]:
    """The ``RandomState`` objects inside params, spaces and splitters (nested estimators included)."""
    if depth > 6 or isinstance(value, _PRIMITIVES):
        return
    if isinstance(value, np.random.RandomState):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _random_states(v, depth + 1)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _random_states(v, depth + 1)
    elif hasattr(value, "get_params") and not isinstance(value, type):
        try:
            params = value.get_params(deep=False)
        except Exception:
            return
        yield from _random_states(params, depth + 1)
    elif hasattr(value, "random_state"):  # a splitter
        yield from _random_states(value.random_state, depth + 1)


@contextmanager
def remembered_seeds(objects: Iterable[Any]) -> Iterator[None]:
    """Describe the ``RandomState`` objects found in ``objects`` now, before a fit draws from them;
    :func:`plain` uses these descriptions until the block ends."""
    known = dict(_seeds.get({}))
    for state in _random_states(list(objects)):
        known.setdefault(id(state), _random_state(state))
    token = _seeds.set(known)
    try:
        yield
    finally:
        _seeds.reset(token)
