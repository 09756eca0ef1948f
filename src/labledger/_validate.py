"""Checks and conversions for everything a user logs."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from labledger.errors import InvalidExperimentNameError, InvalidKeyError, InvalidValueError

MAX_KEY_LENGTH = 250
STEP_LIMIT = 1 << 62
DEFAULT_EXPERIMENT_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
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


def json_value(key: str, value: Any) -> Any:
    """A JSON-compatible copy of a param value (tuples become lists, NumPy scalars Python)."""
    if isinstance(value, str):
        return text_value(key, value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, list | tuple):
        return [json_value(f"{key}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not _encodable(k):
                raise InvalidValueError(key, value, f"dict keys must be valid str, found {k!r}")
            out[k] = json_value(f"{key}/{k}", v)
        return out
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__.startswith("numpy"):
        try:
            return json_value(key, item())
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
    """Flatten nested dicts with ``/`` and validate every key and value."""
    if not isinstance(params, Mapping):
        raise InvalidValueError(prefix or "params", params, "log_params takes a dict")
    out: dict[str, Any] = {}
    for k, v in params.items():
        if not isinstance(k, str):
            raise InvalidKeyError(k, f"must be a str, not {type(k).__name__}", "param key")
        full = check_key(f"{prefix}{k}" if prefix else k, "param key")
        if isinstance(v, Mapping) and v:
            out.update(flatten_params(v, full + "/"))
        else:
            out[full] = json_value(full, v)
    return out


def experiment_pattern() -> str:
    return os.environ.get("LABLEDGER_EXPERIMENT_PATTERN") or DEFAULT_EXPERIMENT_PATTERN


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
