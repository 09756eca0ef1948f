"""Plain fits under autolog: ``estimator.fit`` / ``Pipeline.fit`` outside any search, one run each.

A plain fit's run holds the estimator's class and params (``estimator/...``), the
fingerprints of ``X`` and ``y``, the pipeline version, the training score
(``training/score``, its meaning in ``scoring/training/score``) and the fitted
estimator as a ``model`` artifact. Fits made inside it — a pipeline's steps, a
meta-estimator's clones — and inside a tracked search or ``cross_validate``
are part of that call, never runs of their own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import labledger as ll
from labledger.integrations import _sklearn_evaluation as evaluation
from labledger.integrations import _sklearn_runtime as runtime
from labledger.integrations._sklearn_cv import log_estimator, record_datasets, score_definition
from labledger.integrations._sklearn_runtime import INTEGRATION
from labledger.integrations._sklearn_values import estimator_params, remembered_seeds
from labledger.integrations.base import qualified_name, safe

__all__ = ["fit_data", "record_fit", "wrap_fit"]


def wrap_fit(fn: Callable[..., Any], method: str) -> Callable[..., Any]:
    """``fn`` (an estimator's ``fit``, ``fit_transform`` or ``fit_predict``) tracked as a plain fit."""
    data_names = _data_names(fn)

    @functools.wraps(fn)
    def tracked(self: Any, *args: Any, **kwargs: Any) -> Any:
        if runtime.busy_calls:  # inside a tracked call: the hot path of every search candidate
            return fn(self, *args, **kwargs)
        settings = runtime.current()
        if settings is None or not settings.log_plain_fits:
            return fn(self, *args, **kwargs)
        return _tracked_fit(fn, data_names, settings, self, args, kwargs)

    return tracked


def _data_names(fn: Callable[..., Any]) -> tuple[str | None, str | None]:
    """The names of a fit method's data and target parameters (``X``, ``y``)."""
    try:
        names = list(inspect.signature(fn).parameters)[1:3]
    except (TypeError, ValueError):
        return None, None
    x_name = names[0] if names else None
    y_name = names[1] if len(names) > 1 and names[1] in ("y", "Y") else None
    return x_name, y_name


def fit_data(names: tuple[str | None, str | None], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``(X, y)`` of a fit call, wherever the caller put them."""
    x_name, y_name = names
    X = args[0] if args else kwargs.get(x_name) if x_name else None
    y = args[1] if len(args) > 1 and y_name else kwargs.get(y_name) if y_name else None
    return X, y


def _tracked_fit(
    fn: Callable[..., Any],
    names: tuple[str | None, str | None],
    settings: runtime.Config,
    estimator: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    evaluation.end_all()  # a new tracked fit ends the evaluations of earlier ones
    run = runtime.start(settings, "the fit")
    if run is None:
        return fn(estimator, *args, **kwargs)
    X, y = fit_data(names, args, kwargs)
    with remembered_seeds([estimator]):
        try:
            with runtime.busy():
                result = fn(estimator, *args, **kwargs)
        except BaseException as error:
            runtime.end(run, error)
            raise
        with safe(INTEGRATION, "the fit"):
            record_fit(run, estimator, X, y, settings)
    runtime.end(run, None)
    evaluation.remember(estimator, run)
    return result


def record_fit(run: ll.Run, estimator: Any, X: Any, y: Any, settings: runtime.Config) -> None:
    """Record a fitted estimator in ``run``: params, data, pipeline version, training score, model."""
    params: dict[str, Any] = {"estimator/class": qualified_name(estimator)}
    params.update({f"estimator/{k}": v for k, v in estimator_params(estimator).items()})
    run.log_params(params)
    if settings.log_datasets and X is not None:
        with safe(INTEGRATION, "dataset fingerprints"):
            record_datasets(run, X, y)
    with safe(INTEGRATION, "the pipeline version"):
        run.log_pipeline(estimator, name="pipeline")
    score = _training_score(estimator, X, y)
    if score is not None:
        run.log_params({"scoring/training/score": score_definition(estimator)})
        run.log_metrics({"training/score": score})
    if settings.log_models:
        with safe(INTEGRATION, "the model"):
            log_estimator(run, estimator, "model.joblib")


def _training_score(estimator: Any, X: Any, y: Any) -> float | None:
    """``estimator.score`` on the training data, when it has one that works (``None`` otherwise)."""
    if X is None or not hasattr(estimator, "score"):
        return None
    try:
        with runtime.busy(), runtime.preserving_randomness():
            value = estimator.score(X) if y is None else estimator.score(X, y)
        return float(value)
    except Exception:  # no score for this data (a transformer, an unsupervised fit without one)
        return None
