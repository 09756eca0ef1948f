"""In-memory capture of training curves from fits that run inside a tracked scikit-learn search.

A tracked search (or ``cross_validate``) installs a :class:`SearchCapture` on
the current thread; while one of its ``(candidate, split)`` fits runs, a
framework callback such as :class:`labledger.integrations.xgboost.LedgerCallback`
finds the fit's :class:`FitCurves` with :func:`current_fit` and records its
per-iteration metrics there instead of in a run. After the search, each
candidate's child run receives the curves of its folds.

This module imports neither scikit-learn nor any other framework.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FitCurves", "SearchCapture", "current_capture", "current_fit"]

_local = threading.local()


@dataclass
class FitCurves:
    """What one fit of one candidate on one split reported, per iteration."""

    candidate: int
    split: int
    points: dict[str, dict[int, float]] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.points.setdefault(key, {})[step] = float(value)


class SearchCapture:
    """The fits of one search, indexed by global candidate number and split."""

    def __init__(self) -> None:
        self.fits: dict[tuple[int, int], FitCurves] = {}
        self._offset = 0
        self._batch_size = 0
        self._sequential = 0
        self._active: FitCurves | None = None

    def begin_fit(self, candidate_progress: Any, split_progress: Any) -> FitCurves:
        """Start recording a fit; ``*_progress`` are scikit-learn's ``(index, total)`` pairs or ``None``."""
        if candidate_progress is None or split_progress is None:  # cross_validate: one candidate
            key = (0, self._sequential)
            self._sequential += 1
        else:
            cand, n_cand = int(candidate_progress[0]), int(candidate_progress[1])
            split = int(split_progress[0])
            if cand == 0 and split == 0 and self.fits:  # a new evaluate_candidates batch (halving)
                self._offset += self._batch_size
            self._batch_size = n_cand
            key = (self._offset + cand, split)
        fit = self.fits[key] = FitCurves(candidate=key[0], split=key[1])
        self._active = fit
        return fit

    def end_fit(self) -> None:
        self._active = None

    def for_candidate(self, candidate: int) -> list[FitCurves]:
        """The captured fits of one candidate, by split."""
        return sorted((f for (c, _), f in self.fits.items() if c == candidate), key=lambda f: f.split)


def _stack() -> list[SearchCapture]:
    stack: list[SearchCapture] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


@contextmanager
def capturing(capture: SearchCapture) -> Iterator[SearchCapture]:
    """Make ``capture`` the current thread's innermost search capture."""
    stack = _stack()
    stack.append(capture)
    try:
        yield capture
    finally:
        stack.remove(capture)


def current_capture() -> SearchCapture | None:
    stack = _stack()
    return stack[-1] if stack else None


def current_fit() -> FitCurves | None:
    """The fit being captured on this thread right now, else ``None``."""
    capture = current_capture()
    return capture._active if capture is not None else None
