"""scikit-learn: track every search, cross-validation and fit with one line.

>>> import labledger.integrations.sklearn as llsk
>>> llsk.autolog()                                   # doctest: +SKIP
>>> GridSearchCV(SVC(), {"C": [0.1, 1, 10]}, cv=5).fit(X, y)   # doctest: +SKIP

Each ``fit`` of a search (any :class:`~sklearn.model_selection._search.BaseSearchCV`
subclass: grid, randomized, halving, third-party) becomes a parent run with the
estimator, the search space, the splitter, the best candidate, ``cv_results_``
as a table and the refitted estimator as a model; every candidate becomes a
child run with its params and per-fold scores. ``cross_validate`` and
``cross_val_score`` become one run each, and so does a plain ``fit`` of a
scikit-learn estimator or pipeline. Scoring a tracked model afterwards
(``model.score(X_test, y_test)``, ``sklearn.metrics`` on its predictions) is
recorded in an evaluation run under the model's run. Worker processes
(``n_jobs > 1``) write nothing: the calling process records everything once
``fit`` returns.

Call :func:`autolog` before ``from sklearn.model_selection import cross_validate``
and ``from sklearn.metrics import ...`` (a name imported earlier keeps the
unpatched function); searches and estimators are tracked whatever the import order.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import sklearn.metrics
import sklearn.model_selection
import sklearn.model_selection._search as _search_module
import sklearn.model_selection._validation as _validation
from sklearn.model_selection._search import BaseSearchCV

import labledger as ll
from labledger.errors import LabledgerError
from labledger.integrations import _sklearn_capture as capture_mod
from labledger.integrations import _sklearn_evaluation as evaluation
from labledger.integrations import _sklearn_runtime as runtime
from labledger.integrations._sklearn_cv import record_cross_validate
from labledger.integrations._sklearn_fits import wrap_fit
from labledger.integrations._sklearn_patching import (
    Patches,
    check_internals,
    loaded_classes,
    metric_functions,
    on_new_classes,
)
from labledger.integrations._sklearn_predictions import best_folds, log_cv_predictions
from labledger.integrations._sklearn_runtime import INTEGRATION
from labledger.integrations._sklearn_search import record_search
from labledger.integrations._sklearn_values import remembered_seeds
from labledger.integrations.base import RunBinding, capturing_fit, reset_warnings, safe

__all__ = ["Autolog", "autolog", "log_search"]

_FIT_METHODS = ("fit", "fit_transform", "fit_predict")
_PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
_patches = Patches()
_patched_classes: set[type] = set()
_originals: dict[str, Any] = {}
_lock = threading.RLock()
_local = threading.local()
#: With ``log_predictions``: the ``(train, test)`` indices of each fit of a running search, by
#: ``id(capture)`` then ``(candidate, split)`` (references to scikit-learn's own arrays).
_folds: dict[int, dict[tuple[int, int], tuple[Any, Any]]] = {}


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
        return runtime.config is not None


def autolog(
    *,
    experiment: str | None = None,
    disable: bool = False,
    max_candidate_runs: int | None = None,
    log_models: bool = True,
    log_datasets: bool = True,
    log_plain_fits: bool = True,
    log_post_training_metrics: bool = True,
    log_predictions: bool = False,
    name: str | None = None,
    hypothesis: str | None = None,
    tags: dict[str, str] | None = None,
    **start_run_kwargs: Any,
) -> Autolog:
    """Track every scikit-learn search, ``cross_validate``/``cross_val_score`` call and plain fit.

    :param experiment: where a run goes when no run is active (default
        ``$LABLEDGER_EXPERIMENT`` or ``default``); inside an active run, the tracked
        call's run becomes its child.
    :param disable: remove every patch, restoring scikit-learn exactly (and end open evaluation runs).
    :param max_candidate_runs: record only the best N candidates as child runs
        (default: all of them; ``cv_results_`` always holds every candidate).
    :param log_models: store the refitted ``best_estimator_`` (a plain fit: the estimator)
        as a ``model`` artifact.
    :param log_datasets: record fingerprints of ``X`` and ``y``.
    :param log_plain_fits: a ``fit`` (``fit_transform``, ``fit_predict``) of a scikit-learn
        estimator or ``Pipeline`` outside any search becomes a run of its own.
    :param log_post_training_metrics: ``score`` and ``sklearn.metrics`` calls on a tracked
        model's predictions are recorded in an evaluation run under the model's run.
    :param log_predictions: store per-example predictions for error analysis: after a search,
        the best candidate's out-of-fold predictions (``cross_val_predict`` on the search's own
        folds, one extra pass) in the search run, split ``cv``; and a tracked model's predictions
        on the data ``score`` is called with in the evaluation run, split ``test``. Read them with
        :func:`labledger.get_predictions`.
    :param name: the name of each run autolog starts (a taken name gets ``-2``, ``-3``…).
    :param hypothesis: what the runs should show (stored with each run autolog starts).
    :param tags: tags of each run autolog starts.
    :param start_run_kwargs: more of :func:`labledger.start_run`'s arguments (``store``, ``seed``...).

    >>> import labledger.integrations.sklearn as llsk
    >>> with llsk.autolog(experiment="digits-search", hypothesis="deeper trees overfit"):  # doctest: +SKIP
    ...     GridSearchCV(SVC(), {"C": [1, 10]}).fit(X, y)
    """
    with _lock:
        if disable:
            _unpatch()
            runtime.config = None
            evaluation.end_all()
            return Autolog()
        check_internals()
        kwargs = _run_kwargs(name, hypothesis, tags, start_run_kwargs)
        runtime.config = runtime.Config(
            experiment=experiment,
            max_candidate_runs=max_candidate_runs,
            log_models=log_models,
            log_datasets=log_datasets,
            log_plain_fits=log_plain_fits,
            log_post_training_metrics=log_post_training_metrics,
            log_predictions=log_predictions,
            start_run_kwargs=kwargs,
            pid=os.getpid(),
        )
        reset_warnings(INTEGRATION)
        _patch()
    return Autolog()


def _run_kwargs(
    name: str | None, hypothesis: str | None, tags: dict[str, str] | None, more: dict[str, Any]
) -> dict[str, Any]:
    given = {"name": name, "hypothesis": hypothesis, "tags": tags}
    return {**more, **{k: v for k, v in given.items() if v is not None}}


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
    name: str | None = None,
    hypothesis: str | None = None,
    tags: dict[str, str] | None = None,
    **start_run_kwargs: Any,
) -> ll.Run:
    """Record an already-fitted search (no patching): ``run`` gets the search, children the candidates.

    Without ``run``, the active run is used, else a new run is started (and ended)
    with ``name``, ``hypothesis``, ``tags`` and ``start_run_kwargs``. Give
    ``X``/``y`` (and ``groups``) for dataset and fold fingerprints.

    >>> search = GridSearchCV(SVC(), {"C": [1, 10]}).fit(X, y)   # doctest: +SKIP
    >>> llsk.log_search(search, X, y, experiment="digits", hypothesis="C matters")  # doctest: +SKIP
    """
    if not hasattr(search, "cv_results_"):
        raise LabledgerError(f"{type(search).__name__} is not fitted: call fit() before log_search()")
    check_internals()
    kwargs = _run_kwargs(name, hypothesis, tags, start_run_kwargs)
    binding = RunBinding(run, integration=INTEGRATION, origin=f"{__name__}.log_search", **kwargs)
    target = binding.get()
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
        )
    except BaseException as error:
        binding.end(error)
        raise
    binding.end()
    return target


# -- patching -------------------------------------------------------------------


def _patch() -> None:
    if _patches:
        return
    _originals["_validation.cross_validate"] = _validation.cross_validate
    _originals["_validation.cross_val_score"] = _validation.cross_val_score
    _originals["_validation._fit_and_score"] = _validation._fit_and_score
    _originals["BaseSearchCV.fit"] = BaseSearchCV.__dict__["fit"]
    wrappers: list[tuple[Any, Any]] = [
        (_tracked_search_fit, _originals["BaseSearchCV.fit"]),
        (_tracked_cross_validate, _originals["_validation.cross_validate"]),
        (_tracked_cross_val_score, _originals["_validation.cross_val_score"]),
    ]
    for wrapper, original in wrappers:
        functools.update_wrapper(wrapper, original)  # help() and the signature stay scikit-learn's
    _patches.replace(BaseSearchCV, "fit", _tracked_search_fit)
    for module in (_validation, sklearn.model_selection):
        _patches.replace(module, "cross_validate", _tracked_cross_validate)
        _patches.replace(module, "cross_val_score", _tracked_cross_val_score)
    _patches.replace(_search_module, "_fit_and_score", _captured_fit_and_score)
    _patches.replace(_validation, "_fit_and_score", _captured_fit_and_score)
    _patched_classes.clear()
    for cls in loaded_classes():
        _patch_class(cls)
    on_new_classes(_patches, _patch_class)
    for name, true_name, pred_name in metric_functions():
        wrapped = evaluation.wrap_metric(getattr(sklearn.metrics, name), true_name, pred_name)
        _patches.replace(sklearn.metrics, name, wrapped)


def _patch_class(cls: type) -> None:
    """Wrap the fit, score and prediction methods ``cls`` defines (once per class)."""
    if cls in _patched_classes:
        return
    _patched_classes.add(cls)
    plain_fits = not issubclass(cls, BaseSearchCV) and not cls.__name__.endswith("Mixin")
    for method in _FIT_METHODS if plain_fits else ():
        _patches.wrap_method(cls, method, wrap_fit)
    _patches.wrap_method(cls, "score", evaluation.wrap_score)
    for method in _PREDICT_METHODS:
        _patches.wrap_method(cls, method, evaluation.wrap_predict)


def _unpatch() -> None:
    _patches.restore()
    _patched_classes.clear()
    _originals.clear()


def _original(name: str, fallback: Any) -> Any:
    """The unpatched function; in a worker process (nothing patched) the module's own."""
    return _originals.get(name, fallback)


def _tracked_search_fit(self: Any, X: Any, y: Any = None, **params: Any) -> Any:
    fit = _original("BaseSearchCV.fit", BaseSearchCV.fit)
    config = runtime.current()
    if config is None:
        return fit(self, X, y, **params)
    evaluation.end_all()
    run = runtime.start(config, "the search")
    if run is None:
        return fit(self, X, y, **params)
    capture = capture_mod.SearchCapture()
    if config.log_predictions:
        _folds[id(capture)] = {}
    with remembered_seeds([self]):
        try:
            with capture_mod.capturing(capture), runtime.busy():
                result = fit(self, X, y, **params)
        except BaseException as error:
            _folds.pop(id(capture), None)
            runtime.end(run, error)
            raise
        with safe(INTEGRATION, "the search results"):
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
            )
        if config.log_predictions:
            folds = best_folds(_folds.pop(id(capture), {}), self)
            with safe(INTEGRATION, "the out-of-fold predictions"):
                log_cv_predictions(run, self, X, y, params, folds)
    runtime.end(run, None)
    evaluation.remember(self, run)
    return result


def _tracked_cross_validate(estimator: Any, X: Any, y: Any = None, **kwargs: Any) -> Any:
    cross_validate = _original("_validation.cross_validate", _validation.cross_validate)
    config = runtime.current()
    if config is None:
        return cross_validate(estimator, X, y, **kwargs)
    evaluation.end_all()
    run = runtime.start(config, "the cross-validation")
    if run is None:
        return cross_validate(estimator, X, y, **kwargs)
    asked_indices = kwargs.get("return_indices", False)
    capture = capture_mod.SearchCapture()
    with remembered_seeds([estimator, kwargs.get("cv")]):
        try:
            with capture_mod.capturing(capture), runtime.busy():
                results = cross_validate(estimator, X, y, **{**kwargs, "return_indices": True})
        except BaseException as error:
            runtime.end(run, error)
            raise
        indices = results["indices"] if asked_indices else results.pop("indices")
        scoring = getattr(_local, "scoring", kwargs.get("scoring"))
        with safe(INTEGRATION, "the cross-validation results"):
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
            )
    runtime.end(run, None)
    return results


def _tracked_cross_val_score(estimator: Any, X: Any, y: Any = None, **kwargs: Any) -> Any:
    """``cross_val_score`` calls ``cross_validate``: tell it the user's scoring, for the fold key."""
    cross_val_score = _original("_validation.cross_val_score", _validation.cross_val_score)
    if runtime.current() is None:
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
    fit = capture.begin_fit(kwargs.get("candidate_progress"), kwargs.get("split_progress"))
    seen = _folds.get(id(capture))
    if seen is not None and kwargs.get("train") is not None and kwargs.get("test") is not None:
        seen[(fit.candidate, fit.split)] = (kwargs["train"], kwargs["test"])
    hint = getattr(_local, "scoring", None), hasattr(_local, "scoring")
    if hint[1]:  # a cross_val_score hint is for its own call, not for searches nested in it
        del _local.scoring
    try:
        with capturing_fit(fit):
            return fit_and_score(*args, **kwargs)
    finally:
        if hint[1]:
            _local.scoring = hint[0]
