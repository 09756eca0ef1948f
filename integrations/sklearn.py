"""scikit-learn: track every hyper-parameter search and cross-validation with one line.

>>> import labledger.integrations.sklearn as llsk
>>> llsk.autolog()                                   # doctest: +SKIP
>>> GridSearchCV(SVC(), {"C": [0.1, 1, 10]}, cv=5).fit(X, y)   # doctest: +SKIP

Each ``fit`` of a search (any :class:`~sklearn.model_selection._search.BaseSearchCV`
subclass: grid, randomized, halving, third-party) becomes a parent run with the
estimator, the search space, the splitter, the best candidate, ``cv_results_``
as a table and the refitted estimator as a model; every candidate becomes a
child run with its params and per-fold scores. ``cross_validate`` and
``cross_val_score`` become one run each. Worker processes (``n_jobs > 1``)
write nothing: the calling process records everything once ``fit`` returns.

Call :func:`autolog` before ``from sklearn.model_selection import cross_validate``
(a name imported earlier keeps the unpatched function); searches are tracked
whatever the import order.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import sklearn.model_selection
import sklearn.model_selection._search as _search_module
import sklearn.model_selection._validation as _validation
from sklearn.model_selection._search import BaseSearchCV

import labledger as ll
from labledger._lifecycle import outcome
from labledger.errors import LabledgerError
from labledger.integrations import _sklearn_capture as capture_mod
from labledger.integrations._sklearn_search import record_cross_validate, record_search
from labledger.plugins import forget_warnings, warn_once

__all__ = ["Autolog", "autolog", "log_search"]


@dataclass
class _Config:
    experiment: str | None = None
    max_candidate_runs: int | None = None
    log_models: bool = True
    log_datasets: bool = True
    start_run_kwargs: dict[str, Any] = field(default_factory=dict)
    pid: int = 0


_config: _Config | None = None
_originals: dict[str, Any] = {}
_lock = threading.RLock()
_local = threading.local()


class Autolog:
    """Handle returned by :func:`autolog`; as a context manager it removes the patches on exit."""

    def __enter__(self) -> Autolog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        autolog(disable=True)

    @property
    def enabled(self) -> bool:
        return _config is not None


def autolog(
    *,
    experiment: str | None = None,
    disable: bool = False,
    max_candidate_runs: int | None = None,
    log_models: bool = True,
    log_datasets: bool = True,
    **start_run_kwargs: Any,
) -> Autolog:
    """Track every scikit-learn search ``fit`` and ``cross_validate``/``cross_val_score`` call.

    :param experiment: where a search run goes when no run is active (default
        ``$LABLEDGER_EXPERIMENT`` or ``default``); inside an active run, the search
        becomes its child.
    :param disable: remove every patch, restoring scikit-learn exactly.
    :param max_candidate_runs: record only the best N candidates as child runs
        (default: all of them; ``cv_results_`` always holds every candidate).
    :param log_models: store the refitted ``best_estimator_`` as a ``model`` artifact.
    :param log_datasets: record fingerprints of ``X`` and ``y``.
    :param start_run_kwargs: passed to :func:`labledger.start_run` (``tags``, ``store``, ...).

    >>> import labledger.integrations.sklearn as llsk
    >>> with llsk.autolog(experiment="digits-search"):     # doctest: +SKIP
    ...     GridSearchCV(SVC(), {"C": [1, 10]}).fit(X, y)
    """
    global _config
    with _lock:
        if disable:
            _unpatch()
            _config = None
            return Autolog()
        _config = _Config(
            experiment=experiment,
            max_candidate_runs=max_candidate_runs,
            log_models=log_models,
            log_datasets=log_datasets,
            start_run_kwargs=dict(start_run_kwargs),
            pid=os.getpid(),
        )
        forget_warnings("sklearn")
        _patch()
    return Autolog()


def log_search(
    search: Any,
    X: Any = None,
    y: Any = None,
    *,
    groups: Any = None,
    run: ll.Run | None = None,
    max_candidate_runs: int | None = None,
    log_models: bool = True,
    log_datasets: bool = True,
    **start_run_kwargs: Any,
) -> ll.Run:
    """Record an already-fitted search (no patching): ``run`` gets the search, children the candidates.

    Without ``run``, the active run is used, else a new run is started (and ended)
    with ``start_run_kwargs``. Give ``X``/``y`` (and ``groups``) for dataset and
    fold fingerprints.

    >>> search = GridSearchCV(SVC(), {"C": [1, 10]}).fit(X, y)   # doctest: +SKIP
    >>> llsk.log_search(search, X, y, run=run)                     # doctest: +SKIP
    """
    if not hasattr(search, "cv_results_"):
        raise LabledgerError(f"{type(search).__name__} is not fitted: call fit() before log_search()")
    target = run or ll.active_run()
    owned = target is None
    if target is None:
        target = ll.start_run(**{"activate": False, **start_run_kwargs})
    try:
        record_search(
            target,
            search,
            X=X,
            y=y,
            groups=groups,
            max_candidate_runs=max_candidate_runs,
            log_models=log_models,
            log_datasets=log_datasets,
            report=_report,
        )
    except BaseException as error:
        if owned:
            target.end(*outcome(error))
        raise
    if owned:
        target.end("finished")
    return target


# -- patching -------------------------------------------------------------------


def _patch() -> None:
    if _originals:
        return
    _originals["BaseSearchCV.fit"] = BaseSearchCV.__dict__["fit"]
    _originals["_validation.cross_validate"] = _validation.cross_validate
    _originals["model_selection.cross_validate"] = sklearn.model_selection.cross_validate
    _originals["_validation.cross_val_score"] = _validation.cross_val_score
    _originals["model_selection.cross_val_score"] = sklearn.model_selection.cross_val_score
    _originals["_search._fit_and_score"] = _search_module._fit_and_score
    _originals["_validation._fit_and_score"] = _validation._fit_and_score
    wrappers: list[tuple[Any, Any]] = [
        (_tracked_search_fit, _originals["BaseSearchCV.fit"]),
        (_tracked_cross_validate, _originals["_validation.cross_validate"]),
        (_tracked_cross_val_score, _originals["_validation.cross_val_score"]),
    ]
    for wrapper, original in wrappers:
        functools.update_wrapper(wrapper, original)  # help() and the signature stay scikit-learn's
    BaseSearchCV.fit = _tracked_search_fit
    _validation.cross_validate = sklearn.model_selection.cross_validate = _tracked_cross_validate
    _validation.cross_val_score = sklearn.model_selection.cross_val_score = _tracked_cross_val_score
    _search_module._fit_and_score = _validation._fit_and_score = _captured_fit_and_score


def _unpatch() -> None:
    if not _originals:
        return
    BaseSearchCV.fit = _originals["BaseSearchCV.fit"]
    _validation.cross_validate = _originals["_validation.cross_validate"]
    sklearn.model_selection.cross_validate = _originals["model_selection.cross_validate"]
    _validation.cross_val_score = _originals["_validation.cross_val_score"]
    sklearn.model_selection.cross_val_score = _originals["model_selection.cross_val_score"]
    _search_module._fit_and_score = _originals["_search._fit_and_score"]
    _validation._fit_and_score = _originals["_validation._fit_and_score"]
    _originals.clear()


def _original(name: str, fallback: Callable[..., Any]) -> Callable[..., Any]:
    """The unpatched function; in a worker process (nothing patched) the module's own."""
    fn: Callable[..., Any] = _originals.get(name, fallback)
    return fn


def _tracking() -> _Config | None:
    """The autolog settings when this call should be tracked (not in a worker, not disabled)."""
    config = _config
    if config is None or config.pid != os.getpid():
        return None
    return config


def _tracked_search_fit(self: Any, X: Any, y: Any = None, **params: Any) -> Any:
    fit = _original("BaseSearchCV.fit", BaseSearchCV.fit)
    config = _tracking()
    if config is None:
        return fit(self, X, y, **params)
    run = _start(config, "start the search run")
    if run is None:
        return fit(self, X, y, **params)
    capture = capture_mod.SearchCapture()
    try:
        with capture_mod.capturing(capture):
            result = fit(self, X, y, **params)
    except BaseException as error:
        _end(run, error)
        raise
    try:
        record_search(
            run,
            self,
            X=X,
            y=y,
            groups=params.get("groups"),
            capture=capture,
            max_candidate_runs=config.max_candidate_runs,
            log_models=config.log_models,
            log_datasets=config.log_datasets,
            report=_report,
        )
    except Exception as error:
        _report("the search results", error)
    _end(run, None)
    return result


def _tracked_cross_validate(estimator: Any, X: Any, y: Any = None, **kwargs: Any) -> Any:
    cross_validate = _original("_validation.cross_validate", _validation.cross_validate)
    config = _tracking()
    if config is None:
        return cross_validate(estimator, X, y, **kwargs)
    run = _start(config, "start the cross-validation run")
    if run is None:
        return cross_validate(estimator, X, y, **kwargs)
    asked_indices = kwargs.get("return_indices", False)
    capture = capture_mod.SearchCapture()
    try:
        with capture_mod.capturing(capture):
            results = cross_validate(estimator, X, y, **{**kwargs, "return_indices": True})
    except BaseException as error:
        _end(run, error)
        raise
    indices = results["indices"] if asked_indices else results.pop("indices")
    scoring = getattr(_local, "scoring", kwargs.get("scoring"))
    try:
        record_cross_validate(
            run,
            estimator,
            X,
            y,
            kwargs.get("groups"),
            kwargs.get("cv"),
            scoring,
            results,
            indices,
            capture=capture,
            log_datasets=config.log_datasets,
            report=_report,
        )
    except Exception as error:
        _report("the cross-validation results", error)
    _end(run, None)
    return results


def _tracked_cross_val_score(estimator: Any, X: Any, y: Any = None, **kwargs: Any) -> Any:
    """``cross_val_score`` calls ``cross_validate``: tell it the user's scoring, for the fold key."""
    cross_val_score = _original("_validation.cross_val_score", _validation.cross_val_score)
    if _tracking() is None:
        return cross_val_score(estimator, X, y, **kwargs)
    with _scoring_hint(kwargs.get("scoring")):
        return cross_val_score(estimator, X, y, **kwargs)


@contextmanager
def _scoring_hint(scoring: Any) -> Iterator[None]:
    had = hasattr(_local, "scoring")
    previous = getattr(_local, "scoring", None)
    _local.scoring = scoring
    try:
        yield
    finally:
        if had:
            _local.scoring = previous
        else:
            del _local.scoring


def _captured_fit_and_score(*args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``_fit_and_score``; inside a tracked search, framework curves are captured."""
    fit_and_score = _original("_validation._fit_and_score", _validation._fit_and_score)
    capture = capture_mod.current_capture()
    if capture is None:
        return fit_and_score(*args, **kwargs)
    capture.begin_fit(kwargs.get("candidate_progress"), kwargs.get("split_progress"))
    hint = getattr(_local, "scoring", None), hasattr(_local, "scoring")
    if hint[1]:  # a cross_val_score hint is for its own call, not for searches nested in it
        del _local.scoring
    try:
        return fit_and_score(*args, **kwargs)
    finally:
        capture.end_fit()
        if hint[1]:
            _local.scoring = hint[0]


# -- runs and failures ---------------------------------------------------------------


def _start(config: _Config, what: str) -> ll.Run | None:
    try:
        active = ll.active_run()
        if active is not None:
            kwargs = {k: v for k, v in config.start_run_kwargs.items() if k != "store"}
            return ll.start_run(active.experiment, parent=active, **kwargs)
        return ll.start_run(config.experiment, **config.start_run_kwargs)
    except (LabledgerError, OSError) as error:
        _report(what, error)
        return None


def _end(run: ll.Run, error: BaseException | None) -> None:
    try:
        run.end(*outcome(error))
    except (LabledgerError, OSError) as failure:
        _report("end the run", failure)


def _report(what: str, error: BaseException) -> None:
    """Warn once per kind of failure; tracking never breaks the user's fit."""
    warn_once(
        ("sklearn", what),
        f"labledger could not record {what} ({type(error).__name__}: {error}); training went on",
    )
