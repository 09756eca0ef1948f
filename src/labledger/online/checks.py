"""Argument checks shared by the online experiment's entry points: names, counts, run references."""

from __future__ import annotations

import math
import numbers
import os
from typing import TYPE_CHECKING, Any

from labledger.errors import InvalidValueError, LabledgerError

if TYPE_CHECKING:
    from labledger.store import Store

__all__ = ["OnlineInputError", "count", "run_id", "variant_name"]


class OnlineInputError(LabledgerError, ValueError):
    """An argument of an online statistic is out of range or inconsistent; ``argument`` names it."""

    def __init__(self, argument: str, value: Any, expected: str) -> None:
        self.argument = argument
        self.value = value
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(f"{argument} must be {expected}, got {shown}")


def variant_name(name: Any, what: str = "variant") -> str:
    from labledger.tracking import validate

    if not isinstance(name, str) or not name or "/" in name or name != name.strip():
        raise InvalidValueError(what, name, "a non-empty name without '/' or surrounding spaces")
    return validate.check_key(name, what)


def run_id(value: Any, variant: str, store: str | os.PathLike[str] | Store | None) -> str:
    from labledger.query.runs import resolve_run
    from labledger.tracking.run import Run

    if isinstance(value, Run):
        return value.id
    if not isinstance(value, str):
        raise InvalidValueError(f"variants[{variant!r}]", value, "a Run, a run id or experiment/name")
    return resolve_run(value, store).id


def count(where: str, value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or value < 0
        or value != math.floor(value)
    ):
        raise InvalidValueError(where, value, "a whole number ≥ 0")
    return int(float(value))
