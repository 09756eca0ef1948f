"""scikit-learn param values: an estimator's params, and seeded generators described by their seeds.

Values are described by :func:`labledger.integrations.base.plain` (no memory address
ever enters a param: two identical runs record identical params, in any process). One
refinement is scikit-learn's: a NumPy ``RandomState`` is drawn from by the fit, after
which its seed can no longer be read. :func:`remembered_seeds` describes the generators
a search, splitter or estimator holds before the fit draws from them, and
:func:`param_value` uses those descriptions until the block ends.

This module imports neither scikit-learn nor SciPy.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from labledger.integrations.base import Plain, plain, qualified_name

__all__ = ["estimator_params", "param_value", "remembered_seeds"]

_PRIMITIVES = (str, int, float, bool, type(None))
#: RandomState descriptions taken before a fit drew from the generators (id → text).
_seeds: contextvars.ContextVar[Mapping[int, str]] = contextvars.ContextVar("labledger_sklearn_seeds")


def _remembered(value: object) -> str | None:
    if isinstance(value, np.random.RandomState):
        return _seeds.get({}).get(id(value))
    return None


def param_value(value: object) -> Plain:
    """``plain(value)``, with the seeds :func:`remembered_seeds` read before the fit.

    >>> param_value(np.random.RandomState(3))
    'numpy.random.RandomState(3)'
    """
    return plain(value, describe=_remembered)


def estimator_params(estimator: Any) -> dict[str, Any]:
    """``{param: value}`` of an estimator and its nested estimators (sub-estimators by class)."""
    out: dict[str, Any] = {}
    for key, value in estimator.get_params(deep=True).items():
        if hasattr(value, "get_params") and not isinstance(value, type):
            out[key] = qualified_name(value)
        elif key in ("steps", "transformers", "transformer_list"):
            out[key] = [str(step[0]) for step in value]
        else:
            out[key] = param_value(value)
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
        except Exception:  # not scikit-learn's get_params after all: no generators to find
            return
        yield from _random_states(params, depth + 1)
    elif hasattr(value, "random_state"):  # a splitter
        yield from _random_states(value.random_state, depth + 1)


@contextmanager
def remembered_seeds(objects: Iterable[Any]) -> Iterator[None]:
    """Describe the ``RandomState`` objects found in ``objects`` now, before a fit draws from them;
    :func:`param_value` uses these descriptions until the block ends."""
    known = dict(_seeds.get({}))
    for state in _random_states(list(objects)):
        if id(state) not in known:
            known[id(state)] = str(plain(state))
    token = _seeds.set(known)
    try:
        yield
    finally:
        _seeds.reset(token)
