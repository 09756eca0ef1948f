"""XGBoost: a ``TrainingCallback`` that records a boosting run.

>>> import labledger as ll
>>> from labledger.integrations.xgboost import LedgerCallback
>>> booster = xgb.train(params, dtrain, 500, evals=[(dtrain, "train"), (dvalid, "valid")],  # doctest: +SKIP
...                     early_stopping_rounds=20,
...                     callbacks=[LedgerCallback(experiment="churn-xgb", hypothesis="depth 4 is enough")])
>>> clf = xgb.XGBClassifier(n_estimators=300, callbacks=[LedgerCallback()])    # doctest: +SKIP

Recorded: the params as given (``xgb/max_depth``…; a wrapper's ``get_params()``),
``xgb.train``'s and ``xgb.cv``'s own arguments, the booster's full
configuration (``xgboost_config.json``), every evaluated iteration's metrics
(``valid/logloss`` at step = iteration), the best iteration and score with early
stopping, checkpoints every ``checkpoint_every`` iterations, the model the call
returns (``model.ubj``), feature importances (a table and a PNG plot) and
dataset fingerprints. Under ``xgb.cv``: the mean and std over folds per
iteration, each fold's curve, and every metric's per-fold values at the best
iteration. Inside a tracked scikit-learn search, each candidate's child run
gets its folds' curves instead.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping
from typing import Any

import xgboost as xgb
from xgboost.callback import TrainingCallback

import labledger as ll
from labledger.errors import InvalidValueError
from labledger.integrations._xgboost_call import find_training, in_sklearn_fold_fit
from labledger.integrations._xgboost_record import importance_table
from labledger.integrations._xgboost_session import INTEGRATION, Session, Settings
from labledger.integrations.base import RunBinding, check_version, current_fit

__all__ = ["LedgerCallback", "importance_table"]

ORIGIN = "labledger.integrations.xgboost.LedgerCallback"


def _check_internals() -> None:
    """Warn once when the installed XGBoost is not one whose internals this integration was checked with.

    Checked with XGBoost 2.0.0 to 3.2.0. A ``TrainingCallback`` is told neither what
    ``xgb.train``/``xgb.cv`` was given nor when training fails, so the callback:

    - reads the frames (``sys._getframe``) of ``xgboost.training.train``/``cv`` and of a
      wrapper's ``fit`` for their arguments, and scikit-learn's ``_fit_and_score`` frame to
      know it runs in a search's worker (``_xgboost_call.find_training``, ``in_sklearn_fold_fit``);
    - wraps, on the one ``CallbackContainer`` of the call, ``before_iteration``,
      ``after_iteration`` and ``after_training``, and under ``xgb.cv`` the packed folds'
      ``update`` and ``eval`` (``cvfolds``) (``_xgboost_session.Session``);
    - recomputes ``xgb.cv``'s own folds as ``mknfold`` makes them, with ``xgboost.compat.XGBStratifiedKFold``.
    """
    check_version(INTEGRATION, "xgboost", getattr(xgb, "__version__", None), oldest="2.0.0", latest="3.2")


class LedgerCallback(TrainingCallback):
    """Record an XGBoost training (``xgb.train``, ``xgb.cv`` or the scikit-learn wrapper) in a run.

    :param run: log to this run (never ended by the callback). Without it, the
        active run is used, else each training gets a run of its own, started with
        ``experiment``, ``name``, ``hypothesis``, ``tags`` and ``start_run_kwargs``
        (any other :func:`labledger.start_run` argument, e.g. ``seed``) and ended when
        the training ends: ``finished``, or ``failed`` with the traceback (``killed``
        for Ctrl-C) when an exception leaves it.
    :param experiment: the experiment of the runs it starts (default ``$LABLEDGER_EXPERIMENT``).
    :param name: the name of the runs it starts (a ``-2``, ``-3``… suffix when taken).
    :param hypothesis: what the runs it starts are meant to show.
    :param tags: initial tags of the runs it starts.
    :param checkpoint_every: store the model every N iterations as a ``checkpoint`` artifact.
    :param log_model: store the model the training returns as ``model.ubj``.
    :param log_importance: store feature importances as a table and a PNG plot.
    :param log_datasets: record fingerprints of the training and evaluation data.
    :param log_predictions: store the returned model's predictions on each eval set (``evals`` of
        ``xgb.train``, a wrapper's ``eval_set``) for error analysis: one table per eval set, split =
        its name (``valid``, ``validation_0``), truth = its labels, probabilities for classification
        objectives (with early stopping, the trees up to the best iteration predict). Read them with
        :func:`labledger.get_predictions`.

    The callback may be reused, copied (``clone``), pickled and sent to another
    process, where it records in that process (a copy sent to a scikit-learn
    search's worker process records nothing: the search's process records the scores).

    >>> xgb.train(params, dtrain, 100, evals=[(dvalid, "valid")],
    ...           callbacks=[LedgerCallback(experiment="churn", checkpoint_every=25)])   # doctest: +SKIP
    >>> with ll.start_run("churn") as run:                                            # doctest: +SKIP
    ...     xgb.train(params, dtrain, 100, callbacks=[LedgerCallback(run)])
    """

    def __init__(
        self,
        run: ll.Run | None = None,
        *,
        experiment: str | None = None,
        name: str | None = None,
        hypothesis: str | None = None,
        tags: Mapping[str, str] | None = None,
        checkpoint_every: int | None = None,
        log_model: bool = True,
        log_importance: bool = True,
        log_datasets: bool = True,
        log_predictions: bool = False,
        **start_run_kwargs: Any,
    ) -> None:
        super().__init__()
        if checkpoint_every is not None and (
            not isinstance(checkpoint_every, int)
            or isinstance(checkpoint_every, bool)
            or checkpoint_every < 1
        ):
            raise InvalidValueError(
                "checkpoint_every", checkpoint_every, "give a positive number of iterations, or None"
            )
        _check_internals()
        given = {"experiment": experiment, "name": name, "hypothesis": hypothesis, "tags": tags}
        checked = RunBinding(run, integration=INTEGRATION, origin=ORIGIN, **given, **start_run_kwargs)
        self._run = run
        self.settings = Settings(checkpoint_every, log_model, log_importance, log_datasets, log_predictions)
        #: What each training's own run is started with (a binding is made per training).
        self.start_run_kwargs = checked.start_run_kwargs
        self._origin_pid = os.getpid()
        self._unpickled = False
        self._session: Session | None = None

    def __repr__(self) -> str:  # stable: it appears in the estimator's recorded params
        return f"LedgerCallback(checkpoint_every={self.settings.checkpoint_every})"

    @property
    def run(self) -> ll.Run | None:
        """The run given, else the run of the latest training (``None`` before one)."""
        if self._run is not None:
            return self._run
        return self._session.run if self._session is not None else None

    @property
    def checkpoint_every(self) -> int | None:
        return self.settings.checkpoint_every

    # scikit-learn's clone deep-copies callbacks: the copy shares the run, not a copy of it.
    def __deepcopy__(self, memo: dict[int, Any]) -> LedgerCallback:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)  # not copy.copy: that would go through __getstate__
        new.settings = copy.copy(self.settings)
        new.start_run_kwargs = copy.deepcopy(self.start_run_kwargs, memo)
        new._session = None
        return new

    # A run belongs to its process: a pickled callback logs where it is unpickled, to a run of its own.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_run=None, _session=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "settings" not in state:  # pickled by labledger 0.1 (an estimator saved with its callbacks)
            options = ("checkpoint_every", "log_model", "log_importance", "log_datasets")
            defaults = Settings()
            gone = {*options, "run", "_target", "_binding", "_fit"}
            state = {k: v for k, v in state.items() if k not in gone} | {
                "settings": Settings(*(state.get(k, getattr(defaults, k)) for k in options)),
                "_run": None,
            }
        self.__dict__.update(state)
        self._origin_pid = os.getpid()
        self._unpickled = True
        self._session = None

    # -- TrainingCallback ------------------------------------------------------------

    def before_training(self, model: Any) -> Any:
        previous, self._session = self._session, None
        if previous is not None:  # the last training never reached its end
            previous.abandon()
        if os.getpid() != self._origin_pid:  # a forked copy: its runs belong to the parent process
            return model
        caller = sys._getframe(1)
        capture = current_fit()  # inside a tracked search: the candidate's curves
        if capture is None and self._unpickled and in_sklearn_fold_fit(caller):
            return model  # a copy in a search's worker process: the search's process records
        binding = None if capture is not None else self._binding()
        self._session = Session(self.settings, binding, capture)
        self._session.begin(model, find_training(caller, self))
        return model

    def _binding(self) -> RunBinding:
        # a callback pickled by an earlier labledger kept its origin with these
        kwargs = {k: v for k, v in self.start_run_kwargs.items() if k != "origin"}
        return RunBinding(self._run, integration=INTEGRATION, origin=ORIGIN, **kwargs)

    def after_iteration(self, model: Any, epoch: int, evals_log: TrainingCallback.EvalsLog) -> bool:
        session = self._session
        if session is not None and not session.wrapped:
            session.iteration(model, epoch, evals_log)
        return False

    def after_training(self, model: Any) -> Any:
        session = self._session
        if session is not None and not session.wrapped:
            session.finish(model)
        return model
