"""Parsers of the ``LABLEDGER_*`` values (see :mod:`labledger.settings`): each takes the raw text
and returns the value, or raises ``ValueError`` for text it does not accept."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = [
    "FALSE",
    "TRUE",
    "byte_count",
    "choice",
    "flag",
    "path",
    "plugin_names",
    "run_id",
    "run_ref",
    "seconds",
    "token",
]

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(raw)
        return value

    return parse


def flag(raw: str) -> bool:
    low = raw.lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise ValueError(raw)


def byte_count(raw: str) -> int:
    if len(raw) > 15 or not raw.isdigit():
        raise ValueError(raw)
    value = int(raw)
    if value > 1 << 40:
        raise ValueError(raw)
    return value


def path(raw: str) -> str:
    if "\x00" in raw:
        raise ValueError(raw)
    return raw


def plugin_names(raw: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    if any(not n.isprintable() for n in names):
        raise ValueError(raw)
    return names


def choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(raw)
        return raw.lower()

    return parse


def token(raw: str) -> str:
    if not raw.isprintable() or " " in raw:
        raise ValueError(raw)
    return raw


def run_ref(raw: str) -> str:
    if not raw.strip() or len(raw) > 300 or any(ord(c) < 32 for c in raw):
        raise ValueError(raw)
    return raw.strip()


def run_id(raw: str) -> str:
    if len(raw) > 64 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in raw):
        raise ValueError(raw)
    return raw
