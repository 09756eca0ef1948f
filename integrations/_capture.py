"""Curves of a fit that runs inside a tracked cross-validation, recorded into its candidate's run.

Part of :mod:`labledger.integrations.base`. A tracked scikit-learn search fits each
candidate on each split; a training-loop integration running inside one of those fits
(an XGBoost or LightGBM callback) records its per-iteration metrics into the fit's
:class:`FitCurves` — found with :func:`current_fit` — instead of starting a run, and
the candidate's child run receives the curves of its folds. Nothing here imports a framework.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["FitCurves", "capturing_fit", "current_fit"]

_local = threading.local()


@dataclass
class FitCurves:
    """What one fit of one candidate on one split reported, per iteration.

    ``points[key][step]`` are the per-iteration metrics; ``summary`` holds one value per
    key for the whole fit (the best iteration and its score).

    >>> fit = FitCurves(candidate=0, split=1)
    >>> fit.log_metrics({"valid/loss": 0.5}, step=3)
    >>> fit.points
    {'valid/loss': {3: 0.5}}
    """

    candidate: int
    split: int
    points: dict[str, dict[int, float]] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Record one iteration's metrics, as :meth:`labledger.Run.log_metrics` would.

        >>> fit = current_fit()                              # doctest: +SKIP
        >>> if fit is not None:  # doctest: +SKIP
        ...     fit.log_metrics({"valid/logloss": 0.31}, step=iteration)
        """
        for key, value in metrics.items():
            self.points.setdefault(key, {})[step] = float(value)


def _stack() -> list[FitCurves | None]:
    stack: list[FitCurves | None] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


@contextmanager
def capturing_fit(fit: FitCurves | None) -> Iterator[FitCurves | None]:
    """Make ``fit`` the fit this thread's training loops record into, for the block (``None``:
    none, even inside an outer one). A cross-validating integration wraps each fit with it.

    >>> with capturing_fit(FitCurves(candidate=3, split=0)) as fit:   # doctest: +SKIP
    ...     estimator.fit(X_train, y_train)
    """
    stack = _stack()
    stack.append(fit)
    try:
        yield fit
    finally:
        stack.pop()


def current_fit() -> FitCurves | None:
    """The fit a training loop on this thread records its curves into, else ``None`` (record a run).

    >>> fit = current_fit()   # inside a tracked scikit-learn search: the candidate's fit  # doctest: +SKIP
    """
    stack = _stack()
    return stack[-1] if stack else None
