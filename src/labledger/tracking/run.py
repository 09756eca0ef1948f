"""``Run``: what a user logs to. Runs are made by :func:`labledger.start_run`."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from labledger.errors import (
    FoldsConflictError,
    InvalidValueError,
    LabledgerError,
    ParamConflictError,
    RunFinishedError,
)
from labledger.store.sqlite import dumps
from labledger.tracking import cv_design
from labledger.tracking import lifecycle as _lifecycle
from labledger.tracking import validate as _validate
from labledger.tracking.delivery import Outbox
from labledger.tracking.ids import new_run_id
from labledger.tracking.run_assets import AssetsMixin
from labledger.tracking.run_delivery import (
    _DETACHED,
    _ENDED,
    _ENDING,
    _OPEN,
    DeliveryMixin,
)
from labledger.tracking.run_lineage import LineageMixin
from labledger.tracking.run_metrics import MetricsMixin
from labledger.tracking.run_predictions import PredictionsMixin

if TYPE_CHECKING:
    from labledger.store import Store

__all__ = ["NoActiveRunError", "Run"]

_now = time.time


class NoActiveRunError(LabledgerError):
    """A module-level logging function was called with no run active."""

    def __init__(self, action: str) -> None:
        super().__init__(
            f"cannot {action}: no active run. Start one with `with ll.start_run('experiment'):` "
            "or log to a Run object directly."
        )


class Run(MetricsMixin, DeliveryMixin, AssetsMixin, LineageMixin, PredictionsMixin):
    """One execution of an experiment: params, metrics, artifacts, tags and notes.

    Create runs with :func:`labledger.start_run`. A run is a context manager:
    leaving the block ends it ``finished``, ``failed`` (an exception, whose
    traceback is stored) or ``killed`` (KeyboardInterrupt or SIGTERM).

    >>> import labledger as ll
    >>> with ll.start_run("digits-svm", store="/tmp/ledger") as run:  # doctest: +SKIP
    ...     run.log_params({"C": 1.0})
    ...     run.log_metric("val/acc", 0.93, step=1)
    """

    def __init__(
        self,
        *,
        store: Store,
        experiment: str,
        experiment_id: int,
        name: str,
        parent_id: str | None,
        hypothesis: str | None,
        kind: str,
    ) -> None:
        self.id = new_run_id()
        self.store = store
        self.experiment = experiment
        self.experiment_id = experiment_id
        self.name = name
        self.parent_id = parent_id
        self.hypothesis = hypothesis
        self.kind = kind
        self.start_time = _now()
        self.end_time: float | None = None
        self.status = "running"
        self.error: str | None = None
        from labledger.lineage.capture import os_user, redact_argv, script_path

        self.author: str | None = os_user()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.source = {
            "argv": redact_argv(sys.argv),
            "script": str(script) if (script := script_path()) else None,
            "cwd": os.getcwd(),
            "executable": sys.executable,
        }
        self.environment: dict[str, Any] = {}
        self.plugin_errors: list[LabledgerError] = []
        self._state = _OPEN
        self._lock = threading.Lock()
        # key -> [step, epoch, timestamp, value, step, ...]: one extend per point, which neither a
        # signal nor another thread can split (the columns of a point never get out of step).
        # A key's list lives as long as the run; the writer removes the points it takes from its
        # front (see DeliveryMixin._take_points), so logging needs no lock.
        self._buf: dict[str, list[Any]] = {}
        self._seq = 0
        self._outbox = Outbox(self)
        self._last_step: dict[str, int] = {}  # the step of each key's last point taken by the writer
        self._metric_keys: set[str] = set()
        self._params: dict[str, str] = {}
        self._folds: dict[tuple[str, str], list[float]] = {}
        self._assets: list[tuple[str, dict[str, Any]]] = []
        self._datasets: list[dict[str, Any]] = []
        self._pipelines: list[dict[str, Any]] = []
        self._notes = 0
        self.lineage: dict[str, Any] = {}
        self.reproduction_of: str | None = None
        self._check_completeness = False
        self._background_reported = False

    def __repr__(self) -> str:
        return f"<Run {self.experiment}/{self.name} {self.id[:12]} {self.status}>"

    # -- context manager -------------------------------------------------

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end(*_lifecycle.outcome(exc))

    # -- params ----------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Log one param. Params are immutable: a different value for a key raises.

        >>> run.log_param("kernel", "rbf")  # doctest: +SKIP
        """
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log several params; nested dicts are flattened with ``/``.

        Re-logging an identical value is a no-op; a different value raises
        :class:`labledger.errors.ParamConflictError` and nothing of the call is stored.

        >>> run.log_params({"C": 1.0, "optimizer": {"name": "adam", "lr": 1e-3}})  # doctest: +SKIP
        """
        self._check_open("log params")
        flat = _validate.flatten_params(params)
        encoded = {k: dumps(v) for k, v in flat.items()}
        new: dict[str, Any] = {}
        with self._lock:
            for k, text in encoded.items():
                old = self._params.get(k)
                if old is None:
                    new[k] = flat[k]
                elif old != text:
                    raise ParamConflictError(self.id, k, _loads(old), flat[k])
            for k in new:
                self._params[k] = encoded[k]
        if new:
            self._notify("labledger_params_logged", params=new)

    @property
    def params(self) -> dict[str, Any]:
        """The params logged so far (a copy)."""
        return {k: _loads(v) for k, v in self._params.items()}

    # -- cross-validation folds ------------------------------------------

    def log_folds(
        self,
        key: str,
        values: Any,
        split: str = "test",
        *,
        cv: Any = None,
        X: Any = None,
        y: Any = None,
        groups: Any = None,
    ) -> dict[str, float | None]:
        """Log one cross-validated metric's per-fold values; returns mean, std, min and max.

        ``std`` is the population standard deviation (ddof=0), as scikit-learn's
        ``cv_results_`` reports it. NaN (a failed fold) is kept and makes the
        statistics NaN. Fold results are immutable like params. ``cv`` (a splitter, split on
        ``X``, ``y``, ``groups``; or the ``(train, test)`` index pairs) logs the fold design
        as ``cv/*`` params (:mod:`labledger.tracking.cv_design`) and must count one fold per value.

        >>> run.log_folds("accuracy", [0.91, 0.93, 0.92, 0.90, 0.94], cv=KFold(5), X=X)  # doctest: +SKIP
        {'mean': 0.92, 'std': 0.0141..., 'min': 0.9, 'max': 0.94}
        """
        self._check_open("log folds")
        _validate.check_key(key, "fold key")
        _validate.check_key(split, "fold split")
        vals = _validate.fold_values(key, values)
        if cv is not None:
            self.log_params(cv_design.folds_design(key, len(vals), cv, X=X, y=y, groups=groups))
        with self._lock:
            old = self._folds.get((key, split))
            if old is not None:
                if cv_design.same_folds(old, vals):
                    return cv_design.fold_stats(vals)
                raise FoldsConflictError(self.id, key, split, old, vals)
            self._folds[(key, split)] = vals
        stats = cv_design.fold_stats(vals)
        self._notify("labledger_folds_logged", key=key, split=split, values=vals, stats=stats)
        return stats

    # -- tags and notes --------------------------------------------------

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags (string values). Tags stay mutable after the run ends; changes are timestamped.

        >>> run.set_tags({"team": "vision", "stage": "baseline"})  # doctest: +SKIP
        """
        if self._state is _DETACHED:
            self._raise_closed("set tags")
        clean: dict[str, str] = {}
        for k, v in tags.items():
            _validate.check_key(k, "tag key")
            clean[k] = _validate.text_value(k, v, "tag value")
        if clean:
            self._notify("labledger_tags_set", tags=clean)

    def set_tag(self, key: str, value: str) -> None:
        """Set one tag."""
        self.set_tags({key: value})

    def note(self, text: str) -> None:
        """Add a timestamped note (observations, conclusions) to the run.

        >>> run.note("val acc plateaus after epoch 6")  # doctest: +SKIP

        Notes are the one record an ended run still takes (what an error analysis found
        afterwards); ``labledger note RUN "text"`` adds one from the command line.
        """
        if not isinstance(text, str) or not text.strip():
            raise InvalidValueError("note", text, "a note is a non-empty str")
        _validate.text_value("note", text, "note")
        if self.ended:
            self.store.add_note(self.id, text, _now(), self.author)
        else:
            self._notify("labledger_note_added", text=text, timestamp=_now())
        self._notes += 1

    # -- end ---------------------------------------------------------------

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """End the run: flush every buffered point, then record the final status.

        Ending an ended run does nothing. ``status`` is ``finished``, ``failed`` or ``killed``.
        Under the ``strict`` completeness policy, finishing a top-level run without a
        dataset version records it as ``failed`` and raises
        :class:`labledger.lineage.completeness.CompletenessError`.
        """
        if status not in ("finished", "failed", "killed"):
            raise InvalidValueError("status", status, "choose finished, failed or killed")
        if self._state is not _OPEN:
            return
        refusal: LabledgerError | None = None
        if self.parent_id is None:
            self._finish_lineage()
            if self._check_completeness and status == "finished":
                refusal = self._completeness_at_end()
                if refusal is not None:
                    status, error = "failed", str(refusal)
        with self._lock:
            if self._state is not _OPEN:
                return
            self._state = _ENDING
        try:
            self._take_points()
        finally:
            self.end_time = _now()
            self.status = status
            self.error = error
            self._state = _ENDED
            _lifecycle.deactivate(self)
            self._notify("labledger_run_ended", status=status, error=error)
        if refusal is not None:
            raise refusal

    @property
    def ended(self) -> bool:
        return self._state is not _OPEN

    # -- internals -----------------------------------------------------------

    def _check_open(self, action: str) -> None:
        if self._state is not _OPEN:
            self._raise_closed(action)

    def _raise_closed(self, action: str) -> NoReturn:
        if self._state is _DETACHED:
            raise LabledgerError(
                f"cannot {action}: run {self.id} belongs to process {self.pid}; this forked "
                "process may not write it. Start a run in this process instead."
            )
        if self._state is _ENDING:
            raise RunFinishedError(self.id, "ending", action)
        raise RunFinishedError(self.id, self.status, action)


def _loads(text: str) -> Any:
    import json

    return json.loads(text)
