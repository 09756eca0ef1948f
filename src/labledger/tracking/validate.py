"""Checks and conversions for everything a user logs."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Set
from typing import Any

from labledger import settings
from labledger.errors import (
    InvalidExperimentNameError,
    InvalidKeyError,
    InvalidValueError,
    ParamSpellingConflictError,
)

MAX_KEY_LENGTH = 250
STEP_LIMIT = 1 << 62
#: Params, metadata and summaries nest at most this deep (dicts and lists together).
MAX_DEPTH = 100
DEFAULT_EXPERIMENT_PATTERN = settings.DEFAULT_EXPERIMENT_PATTERN
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_key(key: Any, what: str = "key") -> str:
    """Return ``key`` if it is a usable key, else raise :class:`InvalidKeyError`."""
    if not isinstance(key, str):
        raise InvalidKeyError(key, f"must be a str, not {type(key).__name__}", what)
    if not key:
        raise InvalidKeyError(key, "must not be empty", what)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            key[:40] + "...", f"is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}", what
        )
    m = _CONTROL.search(key)
    if m:
        raise InvalidKeyError(key, f"contains the control character {m.group()!r} at {m.start()}", what)
    if key != key.strip():
        raise InvalidKeyError(key, "must not start or end with white space", what)
    if not _encodable(key):
        raise InvalidKeyError(key, "contains an unpaired surrogate (not valid UTF-8 text)", what)
    return key


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_value(key: str, value: Any, what: str = "value") -> str:
    """``value`` if it is a str that can be stored (valid UTF-8), else raise naming ``key``."""
    if not isinstance(value, str):
        raise InvalidValueError(key, value, f"a {what} is a str; convert with str(value)")
    if not _encodable(value):
        raise InvalidValueError(key, value, "contains an unpaired surrogate (not valid UTF-8 text)")
    return value


def metric_value(key: str, value: Any) -> float:
    """Convert a metric value to float (ints, NumPy scalars, one-element tensors)."""
    if isinstance(value, bool | str | bytes):
        raise InvalidValueError(
            key, value, "a metric must be a number; log flags and text with log_param or set_tags"
        )
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise InvalidValueError(key, value, "the integer is too large for a float64") from None
    n: int | None = None
    numel = getattr(value, "numel", None)
    if callable(numel):  # torch tensors
        n = int(numel())
    elif isinstance(getattr(value, "size", None), int):  # NumPy arrays and scalars
        n = value.size
    if n is not None:
        if n != 1:
            raise InvalidValueError(key, value, f"an array of {n} elements is not one number")
        value = value.item()
        if isinstance(value, bool):
            raise InvalidValueError(key, value, "a metric must be a number, not a bool")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidValueError(key, value, f"not convertible to a number ({e})") from None


def step_value(key: str, step: Any, what: str = "step") -> int:
    """Validate a step (or epoch) number."""
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise InvalidValueError(key, step, f"the {what} must be an integer")
    s = int(step.__index__())
    if not -STEP_LIMIT <= s < STEP_LIMIT:
        raise InvalidValueError(key, step, f"the {what} must lie within ±2**62")
    if what == "epoch" and s < 0:
        raise InvalidValueError(key, step, "the epoch must not be negative")
    return s


def fold_values(key: str, values: Any) -> list[float]:
    """Per-fold scores as floats: a list, tuple, 1-d array or tensor, one number per fold.

    Sets (no order), iterators and generators (consumed once), strings, dicts and
    arrays that are not 1-d raise :class:`InvalidValueError` naming ``key``.

    >>> fold_values("accuracy", (0.9, 0.95))
    [0.9, 0.95]
    """
    problem = None
    if isinstance(values, str | bytes | Mapping):
        problem = f"a {type(values).__name__} is not a sequence of fold values"
    elif isinstance(values, Set):
        problem = "a set has no order; give the fold values as a list, fold 0 first"
    elif isinstance(values, Iterator):
        problem = "an iterator or generator can be read once only; pass list(values)"
    elif (ndim := getattr(values, "ndim", 1)) == 0:
        problem = "a 0-d array is one number; give one value per fold (a list or a 1-d array)"
    elif ndim != 1:
        problem = f"a {ndim}-d array is not a sequence of fold values; give a 1-d array, one value per fold"
    elif not hasattr(values, "__iter__"):
        problem = "folds are a sequence of numbers, one per fold"
    if problem is not None:
        raise InvalidValueError(key, values, problem)
    try:
        items = list(values)
    except Exception as e:
        problem = f"cannot read the fold values ({type(e).__name__}: {e})"
        raise InvalidValueError(key, values, problem) from None
    if not items:
        raise InvalidValueError(key, values, "give at least one fold value")
    return [metric_value(f"{key}[{i}]", v) for i, v in enumerate(items)]


def json_value(key: str, value: Any) -> Any:
    """A JSON-compatible copy of a param value (tuples become lists, NumPy scalars Python).

    Containers nest at most :data:`MAX_DEPTH` levels and must not contain themselves.
    """
    return _json(key, value, key, 0, set())


def _container_check(root: str, at: str, value: Any, depth: int, active: set[int]) -> None:
    if depth >= MAX_DEPTH:
        raise InvalidValueError(
            root,
            value,
            f"nested more than {MAX_DEPTH} levels deep; flatten it, or log it as an artifact",
        )
    if id(value) in active:
        shown = at if len(at) <= 60 else at[:57] + "..."
        raise InvalidValueError(root, value, f"it contains itself (at {shown}); give a copy without the loop")


def _json(key: str, value: Any, root: str, depth: int, active: set[int]) -> Any:
    if isinstance(value, str):
        return text_value(key, value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, list | tuple | Mapping):
        _container_check(root, key, value, depth, active)
        active.add(id(value))
        try:
            if not isinstance(value, Mapping):
                return [_json(f"{key}[{i}]", v, root, depth + 1, active) for i, v in enumerate(value)]
            out = {}
            for k, v in value.items():
                if not isinstance(k, str) or not _encodable(k):
                    raise InvalidValueError(key, value, f"dict keys must be valid str, found {k!r}")
                out[k] = _json(f"{key}/{k}", v, root, depth + 1, active)
            return out
        finally:
            active.discard(id(value))
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__.startswith("numpy"):
        try:
            return _json(key, item(), root, depth, active)
        except (TypeError, ValueError):
            pass
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise InvalidValueError(
        key,
        value,
        "params hold int, float, bool, str, None, lists and dicts; convert it (e.g. str(value)) "
        "or log the object as an artifact",
    )


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts with ``/`` and validate every key and value.

    Two spellings of one key in the same call (``{"opt/lr": 0.1, "opt": {"lr": 0.5}}``)
    raise :class:`~labledger.errors.ParamSpellingConflictError` unless their values are equal.
    """
    if not isinstance(params, Mapping):
        raise InvalidValueError(prefix or "params", params, "log_params takes a dict")
    out: dict[str, Any] = {}
    _flatten(params, prefix, "", out, {}, 0, set())
    return out


def _flatten(
    params: Mapping[Any, Any],
    prefix: str,
    spelled: str,
    out: dict[str, Any],
    spellings: dict[str, str],
    depth: int,
    active: set[int],
) -> None:
    if prefix:
        root = prefix.split("/", 1)[0]
        _container_check(root, prefix.rstrip("/"), params, depth, active)
    active.add(id(params))
    try:
        for k, v in params.items():
            if not isinstance(k, str):
                raise InvalidKeyError(k, f"must be a str, not {type(k).__name__}", "param key")
            full = check_key(f"{prefix}{k}" if prefix else k, "param key")
            spelling = f"{spelled}[{k!r}]"
            if isinstance(v, Mapping) and v:
                _flatten(v, full + "/", spelling, out, spellings, depth + 1, active)
                continue
            value = _json(full, v, full, depth, active)
            if full in out:
                if _same_json(out[full], value):
                    continue
                raise ParamSpellingConflictError(full, (spellings[full], spelling), out[full], value)
            out[full] = value
            spellings[full] = spelling
    finally:
        active.discard(id(params))


def _same_json(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def experiment_pattern() -> str:
    return settings.experiment_pattern()


def check_experiment_name(name: Any) -> str:
    """Return ``name`` if it follows the naming convention, else raise with a suggestion."""
    pattern = experiment_pattern()
    if not isinstance(name, str):
        raise InvalidExperimentNameError(repr(name), pattern, None)
    if re.fullmatch(pattern, name):
        return name
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned).lstrip("._-")[:100].rstrip("-")
    suggestion = cleaned if cleaned and re.fullmatch(pattern, cleaned) else None
    raise InvalidExperimentNameError(name, pattern, suggestion)
