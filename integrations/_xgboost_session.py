"""One XGBoost training (``xgb.train``, ``xgb.cv`` or a wrapper's ``fit``) as ``LedgerCallback`` records it.

xgboost's ``TrainingCallback`` has no hook for an exception, and its
``CallbackContainer`` stops calling callbacks at the first one that asks to stop.
So, for the duration of one call, a :class:`Session` wraps methods of that
call's own ``CallbackContainer`` — an internal object the call creates and
drops, never seen by the user — and, under ``xgb.cv``, of its packed folds:

- ``after_iteration``: once every callback has run, each evaluated iteration is
  logged, the one at which an earlier callback stopped training included;
- ``after_training``: once every callback has run (``EarlyStopping(save_best=True)``
  included), the model the call returns is stored and an own run ends ``finished``;
- an exception raised inside a wrapped method (a custom metric, any callback,
  a fold's update under ``xgb.cv``) ends an own run ``failed`` (``killed`` for
  Ctrl-C) with its traceback at once, and propagates unchanged.

An exception raised elsewhere (the booster's own update in ``xgb.train``: a
custom objective, labels the objective refuses) passes no wrapped method. The
run is then ended when the call's frame is released (right after the exception
is handled), when the callback starts another training, or at exit: ``failed``,
with the traceback when that exception is the one being handled or the
program's last (``sys.last_value``), else with a note saying so.

Without a container (a loop that calls the callback itself) the callback's own
``after_iteration`` and ``after_training`` do the same work.
"""

from __future__ import annotations

import atexit
import sys
import types
import weakref
from dataclasses import dataclass
from typing import Any

import xgboost as xgb

import labledger as ll
from labledger.integrations import _xgboost_record as record
from labledger.integrations._xgboost_call import Found, describe_error, passed_through, wrap_method
from labledger.integrations._xgboost_predictions import log_eval_predictions
from labledger.integrations.base import FitCurves, RunBinding, final_status, report_failure, safe

INTEGRATION = "xgboost"


@dataclass
class Settings:
    """What the callback was asked to record."""

    checkpoint_every: int | None = None
    log_model: bool = True
    log_importance: bool = True
    log_datasets: bool = True
    log_predictions: bool = False


class Session:
    """One training's run (or, inside a tracked scikit-learn search, the fit's captured curves)."""

    def __init__(self, settings: Settings, binding: RunBinding | None, capture: FitCurves | None) -> None:
        self.settings = settings
        self.binding = binding
        self.capture = capture
        self.run: ll.Run | None = None
        self.kind: str | None = None
        self.wrapped = False
        self.done = False
        self.history: dict[str, dict[str, list[Any]]] | None = None
        self.logged = 0  # evaluated iterations logged
        self.offset: int | None = None  # epoch of the first evaluated iteration
        self.checkpointed = -1
        self.fold_scores: dict[int, dict[tuple[str, str], list[float]]] = {}
        self._frame_id: int | None = None
        self._frame_code: types.CodeType | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._found: Found | None = None
        self._started = False
        self._fold_rows: list[tuple[int, int]] | None = None  # xgb.cv: (train, test) rows per fold
        self._evals: list[Any] = []  # with log_predictions: xgb.train's (DMatrix, name) pairs

    # -- beginning -----------------------------------------------------------------

    def begin(self, model: Any, found: Found) -> None:
        """Wrap the call's methods; the run starts when the first iteration does.

        (Another callback's ``before_training`` may still refuse the training: then no
        run is started.) Without a container to wrap, the run starts now.
        """
        self.kind = found.kind
        if self.settings.log_predictions and found.kind == "train" and self.capture is None:
            self._evals = list(found.locals.get("evals") or [])
        if found.kind == "cv":
            self._fold_rows = record.fold_rows(model)
        if found.frame is not None:
            self._frame_id, self._frame_code = id(found.frame), found.frame.f_code
        self._wrap(model, found.container)
        found.forget_call()
        self._found = found
        if not self.wrapped:
            self.start()

    def start(self) -> None:
        """Resolve the run (the given one, the active one, or its own) and record what training was given."""
        if self._started:
            return
        self._started = True
        found, self._found = self._found, None
        if self.capture is not None or self.binding is None:
            return
        with safe(INTEGRATION, "the training (its run could not be started)"):
            self.run = self.binding.get()
        if self.run is None:
            return
        _track(self)
        if found is not None:
            self._record_start(found)

    def _record_start(self, found: Found) -> None:
        run = self.run
        assert run is not None
        if found.estimator is not None:
            with safe(INTEGRATION, "the estimator's params"):
                run.log_params(record.wrapper_params(found.estimator, found.fit_locals))
            if self.settings.log_datasets:
                with safe(INTEGRATION, "dataset fingerprints"):
                    record.log_wrapper_datasets(run, found.fit_locals)
        elif found.kind is not None:
            with safe(INTEGRATION, "the training params"):
                run.log_params(record.train_params(found.locals, found.kind))
            if found.kind == "cv":
                with safe(INTEGRATION, "the cross-validation design"):
                    run.log_params(record.cv_params(found.locals, self._fold_rows))
            if self.settings.log_datasets:
                with safe(INTEGRATION, "dataset fingerprints"):
                    record.log_dmatrix_datasets(run, found.locals)

    def _wrap(self, model: Any, container: Any) -> None:
        if container is None:
            return
        try:
            wrap_method(container, "before_iteration", self.fail, before=self.start)
            wrap_method(container, "after_iteration", self.fail, self._after_container_iteration)
            wrap_method(container, "after_training", self.fail, self._after_container_training)
            if hasattr(model, "cvfolds"):  # xgb.cv's packed folds: their updates and per-fold scores
                wrap_method(model, "update", self.fail)
                wrap_method(model, "eval", self.fail, self._after_fold_eval)
        except (AttributeError, TypeError) as error:
            # an unexpected container: the callback's own hooks serve instead
            report_failure(INTEGRATION, "the training loop's callbacks (xgboost's CallbackContainer)", error)
            return
        self.wrapped = True
        self._finalizer = weakref.finalize(container, self.abandon)
        self._finalizer.atexit = False

    def _after_container_iteration(
        self, container: Any, result: Any, model: Any, epoch: int, *_: Any
    ) -> None:
        self.iteration(model, epoch, container.history)

    def _after_container_training(self, container: Any, result: Any, *_: Any) -> None:
        self.finish(result)

    def _after_fold_eval(self, packed: Any, result: Any, iteration: int, *_: Any) -> None:
        try:
            self.fold_scores[int(iteration)] = record.parse_fold_scores(list(result))
        except (TypeError, ValueError) as error:
            report_failure(INTEGRATION, "per-fold scores", error)

    # -- iterations ------------------------------------------------------------------

    def iteration(self, model: Any, epoch: int, history: Any) -> None:
        """Log every evaluated iteration not logged yet; a checkpoint when one is due."""
        if self.done:
            return
        self.history = history
        evaluated = _evaluated(history)
        if evaluated and self.offset is None:
            self.offset = epoch - (evaluated - 1)
        self._catch_up(evaluated)
        every = self.settings.checkpoint_every
        run = self.run
        due = every and (epoch + 1) % every == 0 and epoch > self.checkpointed
        if due and run is not None and isinstance(model, xgb.Booster):
            self.checkpointed = epoch
            with safe(INTEGRATION, "a checkpoint"):
                record.log_checkpoint(run, model, epoch)

    def _catch_up(self, evaluated: int | None = None) -> None:
        history = self.history
        if not history:
            return
        if evaluated is None:
            evaluated = _evaluated(history)
        offset = self.offset or 0
        while self.logged < evaluated:
            j = self.logged
            self.logged += 1
            metrics: dict[str, float] = {}
            for data, per_metric in history.items():
                for metric, values in per_metric.items():
                    value = values[j]
                    if isinstance(value, tuple):  # xgb.cv: (mean, std) over folds
                        metrics[f"{data}/{metric}"] = float(value[0])
                        metrics[f"{data}/{metric}/std"] = float(value[1])
                    else:
                        metrics[f"{data}/{metric}"] = float(value)
            for (data, metric), values in self.fold_scores.get(j + offset, {}).items():
                for k, value in enumerate(values):
                    metrics[f"fold{k}/{data}/{metric}"] = value
            if self.capture is not None:
                self.capture.log_metrics(metrics, step=j + offset)
            elif self.run is not None and metrics:
                with safe(INTEGRATION, "per-iteration metrics"):
                    self.run.log_metrics(metrics, j + offset)

    # -- the end -----------------------------------------------------------------------

    def finish(self, model: Any) -> None:
        """Training returned ``model`` after every callback: record the outcome, end an own run."""
        if self.done:
            return
        self.start()  # no iteration at all (num_boost_round=0)
        self._catch_up()
        found = record.best(model)
        if self.capture is not None:
            self.capture.summary.update(found)
            self._close("finished", None)
            return
        run = self.run
        if run is not None:
            if found:
                with safe(INTEGRATION, "the best iteration"):
                    run.log_metrics(found)
            if hasattr(model, "cvfolds"):
                with safe(INTEGRATION, "per-fold results"):
                    self._log_folds(run, model)
                with safe(INTEGRATION, "the booster configuration"):
                    record.log_config(run, model.cvfolds[0].bst)
            elif isinstance(model, xgb.Booster):
                if self.settings.log_model:
                    with safe(INTEGRATION, "the model"):
                        record.log_booster(run, model)
                if self.settings.log_importance:
                    with safe(INTEGRATION, "feature importances"):
                        record.log_importance(run, model)
                with safe(INTEGRATION, "the booster configuration"):
                    record.log_config(run, model)
                if self._evals:
                    with safe(INTEGRATION, "the predictions on the eval sets"):
                        log_eval_predictions(run, model, self._evals)
        self._close("finished", None)

    def _log_folds(self, run: ll.Run, packed: Any) -> None:
        """Every metric's per-fold values at the best iteration (the last one without early stopping)."""
        if not self.fold_scores:
            return
        best = packed.attr("best_iteration")
        iteration = int(best) if best is not None else max(self.fold_scores)
        record.log_cv_folds(run, self.fold_scores.get(iteration) or self.fold_scores[max(self.fold_scores)])

    def fail(self, error: BaseException, outer: types.FrameType | None) -> None:
        """An exception left the training: end an own run ``failed`` (``killed``) with its traceback."""
        if self.done:
            return
        with safe(INTEGRATION, "per-iteration metrics"):
            self._catch_up()
        self._close(final_status(error), describe_error(error, outer))

    def abandon(self) -> None:
        """The training ended without reaching its end and without a wrapped method seeing why."""
        if self.done:
            return
        if not self._started:  # refused before its first iteration: no run was started
            self._close("failed", None)
            return
        error = passed_through(self._frame_id, self._frame_code)
        if error is not None:
            self.fail(error, None)
            return
        with safe(INTEGRATION, "per-iteration metrics"):
            self._catch_up()
        self._close(
            "failed",
            f"xgboost {self.kind or 'training'} stopped after {self.logged} evaluated iterations without "
            "finishing: an exception left it where the callbacks do not see (the booster's update, e.g. a "
            "custom objective). Its traceback is in the program's output; labledger did not see it.",
        )

    def _close(self, status: str, error: str | None) -> None:
        self.done = True
        self._evals = []
        _untrack(self)
        if self._finalizer is not None:
            self._finalizer.detach()
        if self.binding is not None and self.run is not None:
            self.binding.end(status=status, detail=error)


def _evaluated(history: Any) -> int:
    """How many iterations every metric of ``history`` has (xgboost's ``evals_log``)."""
    lengths = [len(values) for per_metric in (history or {}).values() for values in per_metric.values()]
    return min(lengths) if lengths else 0


# -- runs left open: ended at exit, before labledger's own exit handler ends them "finished" -------

_open: dict[int, Session] = {}
_exit_handler: list[bool] = []


def _track(session: Session) -> None:
    _open[id(session)] = session
    if not _exit_handler:  # registered after labledger's own (atexit runs the last registered first)
        _exit_handler.append(True)
        atexit.register(_end_open_sessions)


def _untrack(session: Session) -> None:
    _open.pop(id(session), None)


def _end_open_sessions() -> None:
    for session in list(_open.values()):
        try:
            session.abandon()
        except Exception as error:  # pragma: no cover - exit must go on
            print(f"labledger: could not end an XGBoost run at exit: {error}", file=sys.stderr)
