"""What the scikit-learn autolog patches share: its settings, the "inside a tracked fit" state,
starting and ending runs, and turning tracking failures into one warning.

A fit, prediction or metric call made while a tracked search, ``cross_validate``
or plain fit is running — in any thread of the process: joblib's threading
backend fits candidates in other threads — belongs to that call and is never
recorded on its own (:func:`busy`).
"""

from __future__ import annotations

import inspect
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
from labledger.errors import LabledgerError
from labledger.hooks.manager import warn_once
from labledger.tracking.lifecycle import outcome

__all__ = [
    "ORIGIN",
    "Config",
    "busy",
    "current",
    "end",
    "preserving_randomness",
    "report",
    "start",
]

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
    start_run_kwargs: dict[str, Any] = field(default_factory=dict)
    pid: int = 0


config: Config | None = None
_takes_origin = "origin" in inspect.signature(ll.start_run).parameters
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
    """A run for a tracked call: a child of the active run, else a new run in the autolog experiment."""
    kwargs = (
        {"origin": ORIGIN, **settings.start_run_kwargs} if _takes_origin else dict(settings.start_run_kwargs)
    )
    try:
        active = ll.active_run()
        if active is not None:
            kwargs.pop("store", None)
            return ll.start_run(active.experiment, parent=active, **kwargs)
        return ll.start_run(settings.experiment, **kwargs)
    except (LabledgerError, OSError) as error:
        report(what, error)
        return None


def end(run: ll.Run, error: BaseException | None) -> None:
    try:
        run.end(*outcome(error))
    except (LabledgerError, OSError) as failure:
        report("end the run", failure)


def report(what: str, error: BaseException) -> None:
    """Warn once per kind of failure; tracking never breaks the user's fit."""
    warn_once(
        ("sklearn", what),
        f"labledger could not record {what} ({type(error).__name__}: {error}); training went on",
    )


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
