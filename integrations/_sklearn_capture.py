"""The fits of a tracked scikit-learn search, indexed by candidate and split.

A tracked search (or ``cross_validate``) installs a :class:`SearchCapture` on the
current thread (:func:`capturing`); scikit-learn's ``_fit_and_score`` asks it for the
:class:`~labledger.integrations.base.FitCurves` of each ``(candidate, split)`` fit and
makes them the current fit (:func:`labledger.integrations.base.capturing_fit`), where a
training-loop integration records its per-iteration metrics. After the search, each
candidate's child run receives the curves of its folds.

This module imports neither scikit-learn nor any other framework.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from labledger.integrations.base import FitCurves, capturing_fit

__all__ = ["SearchCapture", "capturing", "current_capture"]

_local = threading.local()


class SearchCapture:
    """The fits of one search, indexed by global candidate number and split."""

    def __init__(self) -> None:
        self.fits: dict[tuple[int, int], FitCurves] = {}
        self._offset = 0
        self._batch_size = 0
        self._sequential = 0

    def begin_fit(self, candidate_progress: Any, split_progress: Any) -> FitCurves:
        """The curves of a new fit; ``*_progress`` are scikit-learn's ``(index, total)`` pairs or ``None``."""
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
        return fit

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
    """Make ``capture`` the current thread's innermost search capture (no fit is current until
    one of its fits begins)."""
    stack = _stack()
    stack.append(capture)
    try:
        with capturing_fit(None):
            yield capture
    finally:
        stack.remove(capture)


def current_capture() -> SearchCapture | None:
    stack = _stack()
    return stack[-1] if stack else None
