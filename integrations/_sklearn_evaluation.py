"""Post-training metrics: a model autolog tracked, scored afterwards on other (held-out) data.

After autolog records a search or a plain fit, it remembers the fitted object
(weakly). Then ``model.score(X_test, y_test)`` records ``X_test/score``, and a
``sklearn.metrics`` function given that model's predictions —
``f1_score(y_test, model.predict(X_test), average="macro")``, or the output
of ``predict_proba``/``decision_function`` — records ``X_test/f1_score``;
``scoring/<key>`` says what each key means (with the arguments). The dataset
is named after the variable the data was passed in (else ``data-<fingerprint>``).

They go to an *evaluation run*: a child of the model's run, one per dataset,
holding the dataset fingerprints (roles ``test`` and ``test_target``) and, for
a classifier, ``confusion_matrix.png``, ``roc_curve.png`` and
``precision_recall_curve.png``. An evaluation run stays open while the model is
evaluated on that data; it ends when autolog tracks another fit, when autolog is
disabled, or at exit.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import re
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import numpy as np
from sklearn.base import is_classifier

import labledger as ll
from labledger.integrations import _sklearn_runtime as runtime
from labledger.integrations._sklearn_cv import score_definition
from labledger.integrations._sklearn_runtime import INTEGRATION
from labledger.integrations._sklearn_values import param_value
from labledger.integrations.base import qualified_name, safe

__all__ = ["end_all", "remember", "wrap_metric", "wrap_predict", "wrap_score"]

_MAX_PREDICTIONS = 32
_lock = threading.RLock()
_models: weakref.WeakKeyDictionary[Any, ll.Run] = weakref.WeakKeyDictionary()
_predictions: OrderedDict[int, _Prediction] = OrderedDict()
_open: dict[tuple[str, str], _Evaluation] = {}
_exit_registered = False


@dataclass
class _Prediction:
    """Where an array of predictions came from."""

    result: weakref.ref[Any]  # the array owning the predictions' memory
    model: weakref.ref[Any]
    run: ll.Run
    dataset: str | None  # the caller's variable name, when there was one
    data: weakref.ref[Any] | None
    method: str


@dataclass
class _Evaluation:
    run: ll.Run
    dataset: str
    definitions: dict[str, str] = field(default_factory=dict)
    data_logged: bool = False
    plotted: bool = False
    predicted: bool = False

    def log_predictions(self, model: Any, X: Any, y: Any) -> None:
        """With ``autolog(log_predictions=True)``: the model's predictions on the data, once."""
        settings = runtime.current()
        if self.predicted or settings is None or not settings.log_predictions or X is None or y is None:
            return
        self.predicted = True
        from labledger.integrations._sklearn_predictions import log_heldout_predictions

        with safe(INTEGRATION, "held-out predictions"):
            log_heldout_predictions(self.run, model, X, y)

    def log_data(self, X: Any, y: Any) -> None:
        """Fingerprints of the data scored, once (a failure is reported; the metrics stay)."""
        if self.data_logged or X is None or not _settings_log_datasets():
            return
        self.data_logged = True
        with safe(INTEGRATION, "held-out dataset fingerprints"):
            self.run.log_dataset(self.dataset, X, role="test")
            if y is not None:
                self.run.log_dataset(f"{self.dataset}/target", y, role="test_target")

    def metric(self, name: str, definition: str, value: float) -> None:
        """Log ``<dataset>/<name>``; another definition under one name gets ``-2``, ``-3``…"""
        key, n = f"{self.dataset}/{name}", 1
        while self.definitions.get(key, definition) != definition:
            n += 1
            key = f"{self.dataset}/{name}-{n}"
        if key not in self.definitions:
            self.run.log_params({f"scoring/{key}": definition})
            self.definitions[key] = definition
        self.run.log_metric(key, value)


def remember(model: Any, run: ll.Run) -> None:
    """``model`` was fitted in ``run``: its post-training metrics go to evaluation runs under it."""
    try:
        with _lock:
            _models[model] = run
    except TypeError:  # not weak-referenceable or not hashable: not followed
        pass


def _model_run(model: Any) -> ll.Run | None:
    settings = runtime.current()
    if settings is None or not settings.log_post_training_metrics:
        return None
    try:
        return _models.get(model)
    except TypeError:
        return None


def _settings_log_datasets() -> bool:
    settings = runtime.current()
    return settings is not None and settings.log_datasets


def end_all() -> None:
    """End every open evaluation run (``finished``)."""
    with _lock:
        evaluations = list(_open.values())
        _open.clear()
    for evaluation in evaluations:
        runtime.end(evaluation.run, None)


# -- the wrappers ---------------------------------------------------------------------


def wrap_predict(fn: Callable[..., Any], method: str) -> Callable[..., Any]:
    """``predict``/``predict_proba``/``decision_function`` that remember where their output came from."""

    @functools.wraps(fn)
    def tracked(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = fn(self, *args, **kwargs)
        if runtime.busy_calls or not _models:
            return result
        run = _model_run(self)
        if run is not None:
            X = args[0] if args else kwargs.get("X")
            with safe(INTEGRATION, "a prediction's origin"):
                _remember_prediction(result, self, run, X, method, sys._getframe(1))
        return result

    return tracked


def wrap_score(fn: Callable[..., Any], method: str) -> Callable[..., Any]:
    """``score`` that records its value for a tracked model."""

    @functools.wraps(fn)
    def tracked(self: Any, *args: Any, **kwargs: Any) -> Any:
        if runtime.busy_calls or not _models:
            return fn(self, *args, **kwargs)
        run = _model_run(self)
        if run is None:
            return fn(self, *args, **kwargs)
        with runtime.busy():
            value = fn(self, *args, **kwargs)
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        with safe(INTEGRATION, "a post-training score"):
            _record_score(self, run, X, y, value, sys._getframe(1))
        return value

    return tracked


def wrap_metric(fn: Callable[..., Any], true_name: str, pred_name: str) -> Callable[..., Any]:
    """A ``sklearn.metrics`` function that records its value when given a tracked model's predictions."""

    @functools.wraps(fn)
    def tracked(*args: Any, **kwargs: Any) -> Any:
        if runtime.busy_calls or not _predictions:
            return fn(*args, **kwargs)
        y_pred = args[1] if len(args) > 1 else kwargs.get(pred_name)
        origin = _prediction_of(y_pred)
        if origin is None or _model_run(origin.model()) is None:
            return fn(*args, **kwargs)
        with runtime.busy():
            value = fn(*args, **kwargs)
        y_true = args[0] if args else kwargs.get(true_name)
        options = {k: v for k, v in kwargs.items() if k not in (true_name, pred_name)}
        with safe(INTEGRATION, "a post-training metric"):
            definition = _definition(fn.__name__, args[2:], options)
            _record_metric(origin, fn.__name__, definition, y_true, y_pred, value)
        return value

    return tracked


# -- recording ----------------------------------------------------------------------------


def _remember_prediction(result: Any, model: Any, run: ll.Run, X: Any, method: str, frame: FrameType) -> None:
    owner = _owner(result)
    try:
        result_ref = weakref.ref(owner)
    except TypeError:  # a list or a scalar: not followed
        return
    entry = _Prediction(result_ref, weakref.ref(model), run, _variable_name(X, frame), _weak(X), method)
    with _lock:
        _predictions[id(owner)] = entry
        _predictions.move_to_end(id(owner))
        for key in [k for k, e in _predictions.items() if e.result() is None]:
            del _predictions[key]
        while len(_predictions) > _MAX_PREDICTIONS:
            _predictions.popitem(last=False)


def _weak(value: Any) -> weakref.ref[Any] | None:
    try:
        return weakref.ref(value)
    except TypeError:
        return None


def _owner(value: Any) -> Any:
    """The array that owns the memory of ``value`` (``value`` itself when it is not a NumPy view)."""
    while isinstance(value, np.ndarray) and isinstance(value.base, np.ndarray):
        value = value.base
    return value


def _prediction_of(y_pred: Any) -> _Prediction | None:
    """The recorded origin of ``y_pred``, or of the predictions it is a view of (``proba[:, 1]``)."""
    if y_pred is None:
        return None
    owner = _owner(y_pred)
    with _lock:
        entry = _predictions.get(id(owner))
    return entry if entry is not None and entry.result() is owner else None


def _variable_name(data: Any, frame: FrameType | None) -> str | None:
    """The caller's variable holding ``data`` (``X_test``), if any."""
    if data is not None and frame is not None:
        for scope in (frame.f_locals, frame.f_globals):
            for name, value in scope.items():
                if value is data and not name.startswith("_"):
                    return name
    return None


def _dataset_name(name: str | None, data: Any) -> str:
    """``name``, else ``data-<fingerprint prefix>`` (else ``data``)."""
    if name is not None:
        return name
    try:
        return f"data-{ll.fingerprint(data).digest[:8]}"
    except Exception:
        return "data"


def _definition(name: str, args: tuple[Any, ...], options: dict[str, Any]) -> str:
    shown = [repr(param_value(a)) for a in args] + [
        f"{k}={param_value(v)!r}" for k, v in sorted(options.items())
    ]
    return f"{name}({', '.join(shown)})" if shown else name


def _evaluation(run: ll.Run, dataset: str, model: Any) -> _Evaluation:
    global _exit_registered
    with _lock:
        found = _open.get((run.id, dataset))
        if found is not None:
            return found
        settings = runtime.current()
        tags = settings.start_run_kwargs.get("tags") if settings is not None else None
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{run.name}-eval-{dataset}")[:200]
        child = ll.start_run(run.experiment, name=name, parent=run, tags=tags, activate=False)
        child.log_params({"evaluation/dataset": dataset, "evaluation/estimator": qualified_name(model)})
        evaluation = _open[(run.id, dataset)] = _Evaluation(child, dataset)
        if not _exit_registered:  # after labledger's own exit handler: atexit runs this one first
            atexit.register(end_all)
            _exit_registered = True
        return evaluation


def _record_score(model: Any, run: ll.Run, X: Any, y: Any, value: Any, frame: FrameType) -> None:
    evaluation = _evaluation(run, _dataset_name(_variable_name(X, frame), X), model)
    evaluation.metric("score", score_definition(model), float(value))
    evaluation.log_data(X, y)
    evaluation.log_predictions(model, X, y)
    if y is not None and not evaluation.plotted and is_classifier(model):
        _plots(evaluation, model, X, y, None)


def _record_metric(
    origin: _Prediction, name: str, definition: str, y_true: Any, y_pred: Any, value: Any
) -> None:
    model = origin.model()
    X = origin.data() if origin.data is not None else None
    evaluation = _evaluation(origin.run, _dataset_name(origin.dataset, X), model)
    if np.ndim(value) == 0:
        evaluation.metric(name, definition, float(value))
    evaluation.log_data(X, y_true)
    if model is not None:
        evaluation.log_predictions(model, X, y_true)
    if not evaluation.plotted and model is not None and is_classifier(model):
        _plots(evaluation, model, X, y_true, y_pred if origin.method == "predict" else None)


def _plots(evaluation: _Evaluation, model: Any, X: Any, y_true: Any, y_pred: Any) -> None:
    """The confusion matrix and ROC/PR curves of a classifier on the evaluation's data."""
    evaluation.plotted = True
    if importlib.util.find_spec("matplotlib") is None:
        return
    from labledger.integrations._sklearn_plots import log_classifier_plots

    y_score = None
    with runtime.busy():  # the metrics the plots compute are not the user's
        with runtime.preserving_randomness():
            if X is not None:
                y_pred = model.predict(X)
                for method in ("predict_proba", "decision_function"):
                    if hasattr(model, method):
                        y_score = getattr(model, method)(X)
                        break
        if y_pred is None:
            return
        title = f"{type(model).__name__} on {evaluation.dataset}"
        classes = getattr(model, "classes_", None)
        log_classifier_plots(evaluation.run, np.asarray(y_true), np.asarray(y_pred), y_score, classes, title)
