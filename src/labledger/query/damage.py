"""Reading damaged rows without a traceback: a marker in place of what cannot be read, and a warning.

A stored value that cannot be decoded (invalid JSON in a param, a run's
source, environment or lineage, an artifact's metadata, a dataset summary...)
reads as :data:`DAMAGED`-like :class:`DamagedValue` (a param's value) or as an
empty dict (a whole JSON field), and a :class:`DamagedRecordWarning` names the
run and the field once per process. Everything else of the run stays readable.
"""

from __future__ import annotations

import json
import threading
import warnings
from typing import Any

from labledger.hooks.reporting import LabledgerWarning

__all__ = ["DamagedRecordWarning", "DamagedValue", "loads", "report"]

_reported: set[tuple[str, str]] = set()
_lock = threading.Lock()


class DamagedRecordWarning(LabledgerWarning):
    """A stored field of a run cannot be read; it reads as a marker (or empty) instead.

    ``run_id``, ``field`` and ``problem`` say which and why.
    """

    def __init__(self, run_id: str, field: str, problem: str) -> None:
        self.run_id = run_id
        self.field = field
        self.problem = problem
        super().__init__(
            f"run {run_id}: {field} is damaged ({problem}); the rest of the run is readable. "
            "`labledger fsck` lists all damage; restore the store from a backup to recover it."
        )


class DamagedValue:
    """Stands in for a stored value that cannot be read; shown as ``<damaged>``.

    >>> view.params["lr"]  # doctest: +SKIP
    <damaged: invalid JSON (Expecting value: line 1 column 1 (char 0))>
    """

    __slots__ = ("field", "problem", "raw", "run_id")

    def __init__(self, run_id: str, field: str, raw: Any, problem: str) -> None:
        self.run_id = run_id
        self.field = field
        self.raw = raw
        self.problem = problem

    def __repr__(self) -> str:
        return f"<damaged: {self.problem}>"

    def __str__(self) -> str:
        return "<damaged>"


def report(run_id: str, field: str, problem: str) -> None:
    """Warn once per process that ``field`` of run ``run_id`` cannot be read."""
    with _lock:
        if (run_id, field) in _reported:
            return
        _reported.add((run_id, field))
    warnings.warn(DamagedRecordWarning(run_id, field, problem), stacklevel=3)


def loads(text: Any, run_id: str, field: str, default: Any = None) -> Any:
    """``json.loads(text)``; when it cannot be read, ``default`` (a :class:`DamagedValue` when
    ``None``) and a warning naming the run and the field."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as e:
        problem = f"invalid JSON: {e}".replace("\n", " ")
        report(run_id, field, problem)
        return DamagedValue(run_id, field, text, problem) if default is None else default


def forget() -> None:
    """Report every damaged field again (for tests)."""
    with _lock:
        _reported.clear()
