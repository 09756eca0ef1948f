"""What the scikit-learn autolog patches share: its settings, the "inside a tracked fit" state,
and starting and ending runs.

A fit, prediction or metric call made while a tracked search, ``cross_validate``
or plain fit is running — in any thread of the process: joblib's threading
backend fits candidates in other threads — belongs to that call and is never
recorded on its own (:func:`busy`).
"""

from __future__ import annotations

import os
import random
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import labledger as ll
from labledger.integrations.base import error_text, final_status, safe

__all__ = [
    "INTEGRATION",
    "ORIGIN",
    "Config",
    "busy",
    "current",
    "end",
    "preserving_randomness",
    "start",
]

INTEGRATION = "sklearn"
#: What the user called to get an autolog run (named in completeness warnings).
ORIGIN = "labledger.integrations.sklearn.autolog"


@dataclass
class Config:
    experiment: str | None = None
    max_candidate_runs: int | None = None
    log_models: bool = True
    log_datasets: bool = True
    log_plain_fits: bool = True
    log_post_training_metrics: bool = True
    log_predictions: bool = False
    start_run_kwargs: dict[str, Any] = field(default_factory=dict)
    pid: int = 0


config: Config | None = None
#: How many tracked calls (searches, ``cross_validate``, plain fits, evaluations) are running in
#: this process; read without the lock on the hot path of every fit, prediction and score.
busy_calls = 0
_busy_lock = threading.Lock()


def current() -> Config | None:
    """The autolog settings when this call may be tracked (enabled, and not in a worker process)."""
    settings = config
    if settings is None or settings.pid != os.getpid():
        return None
    return settings


@contextmanager
def busy() -> Iterator[None]:
    """Mark a tracked call running for the duration of the block."""
    global busy_calls
    with _busy_lock:
        busy_calls += 1
    try:
        yield
    finally:
        with _busy_lock:
            busy_calls -= 1


def start(settings: Config, what: str) -> ll.Run | None:
    """A run for a tracked call (``what``: ``"the search"``): a child of the active run, else a new run
    in the autolog experiment; ``None`` when it cannot be started (reported)."""
    kwargs = {"origin": ORIGIN, **settings.start_run_kwargs}
    with safe(INTEGRATION, f"{what} (its run could not be started)"):
        active = ll.active_run()
        if active is not None:
            kwargs.pop("store", None)
            return ll.start_run(active.experiment, parent=active, **kwargs)
        return ll.start_run(settings.experiment, **kwargs)
    return None


def end(run: ll.Run, error: BaseException | None) -> None:
    """End an autolog run: :func:`~labledger.integrations.base.final_status` of ``error``, its traceback."""
    with safe(INTEGRATION, "the end of the run"):
        run.end(final_status(error), error=error_text(error))


@contextmanager
def preserving_randomness() -> Iterator[None]:
    """Work labledger adds to the user's (a training score, held-out predictions) leaves no
    trace: the global ``random`` and NumPy generators are put back, its warnings are not shown.

    ``warnings.catch_warnings`` is process-wide: a warning another thread raises meanwhile is
    not shown either.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
