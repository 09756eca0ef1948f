"""Per-example predictions of scikit-learn models, for ``autolog(log_predictions=True)``.

- :func:`log_cv_predictions`: after a search, the best candidate's out-of-fold predictions —
  ``cross_val_predict(clone(best_estimator_), X, y, cv=<the search's folds>, groups=...)``,
  one extra pass — as the search run's ``cv`` split (the first folds that hold every example
  once: a repeated k-fold's first repetition; a splitter whose test sets never do, such as
  ``ShuffleSplit`` or ``TimeSeriesSplit``, gives none). A classifier with ``predict_proba``
  is predicted with it (``y_pred`` is then the most probable class, which is ``predict``'s
  answer for nearly every estimator).
- :func:`log_heldout_predictions`: a tracked model's predictions on data it is scored on
  (``model.score(X_test, y_test)``), as the evaluation run's ``test`` split.

With a DataFrame ``X``, its categorical, text and boolean columns and its first five numeric
ones (20 columns at most) are stored to slice errors by, and its index, when it names the
rows, as the example ids. Both leave the global ``random`` and NumPy generators as they were.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier

import labledger as ll
from labledger.integrations import _sklearn_runtime as runtime
from labledger.integrations.base import FitCurves, capturing_fit, frame_ids, slicing_features

__all__ = ["best_folds", "log_cv_predictions", "log_heldout_predictions"]


def _target(y: Any) -> np.ndarray | None:
    """``y`` as one label or value per example, else ``None`` (multi-output targets are not stored)."""
    if y is None:
        return None
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr if arr.ndim == 1 else None


def _classes(model: Any, truth: np.ndarray) -> list[Any]:
    """The class labels of ``predict_proba``'s columns: the model's ``classes_``, else the sorted labels."""
    found = getattr(model, "classes_", None)
    return list(np.unique(truth) if found is None else found)


def _best_estimator(search: Any) -> Any:
    """An unfitted copy of the best candidate (``None`` when the search chose none)."""
    if hasattr(search, "best_estimator_"):
        return clone(search.best_estimator_)
    best = getattr(search, "best_index_", None)
    if best is None:
        return None
    return clone(search.estimator).set_params(**search.cv_results_["params"][int(best)])


def _search_folds(
    search: Any, X: Any, y: Any, groups: Any, seen: list[tuple[Any, Any]] | None
) -> list[tuple[Any, Any]]:
    """The folds the best candidate was scored on when they were seen, else the search's splitter's
    folds, drawn from a copy of it (a generator it holds is left as it was; the global ones are
    put back by the caller)."""
    if seen is not None and "iter" not in search.cv_results_:
        return seen
    from sklearn.model_selection import check_cv

    cv = getattr(search, "_checked_cv_orig", None)
    if cv is None:
        cv = check_cv(search.cv, y, classifier=is_classifier(search.estimator))
    return list(copy.deepcopy(cv).split(X, y, groups))


def _partition(folds: list[tuple[Any, Any]], n: int) -> list[tuple[Any, Any]] | None:
    """The first folds whose test sets hold every example once (a repeated k-fold's first
    repetition); ``None`` when there are none (``ShuffleSplit``, ``TimeSeriesSplit``)."""
    covered = np.zeros(n, dtype=bool)
    chosen = []
    for train, test in folds:
        test = np.asarray(test)
        if test.dtype == bool:
            test = np.flatnonzero(test)
        if covered[test].any():
            break
        covered[test] = True
        chosen.append((train, test))
        if covered.all():
            return chosen
    return None


def _fit_params(params: dict[str, Any]) -> dict[str, Any]:
    """``cross_val_predict``'s keyword for the search's fit params (``params``, ``fit_params`` before 1.4)."""
    from sklearn.model_selection import cross_val_predict

    if not params:
        return {}
    name = "params" if "params" in inspect.signature(cross_val_predict).parameters else "fit_params"
    return {name: params}


def best_folds(seen: dict[tuple[int, int], tuple[Any, Any]], search: Any) -> list[tuple[Any, Any]] | None:
    """The folds the best candidate was scored on (``seen``: ``(candidate, split)`` → indices),
    when every one of its fits was seen in this process (not with worker processes: the
    search's splitter then makes them again)."""
    best = getattr(search, "best_index_", None)
    n_splits = getattr(search, "n_splits_", None)
    if best is None or not n_splits:
        return None
    folds = [seen.get((int(best), k)) for k in range(int(n_splits))]
    return [f for f in folds if f is not None] if all(f is not None for f in folds) else None


def log_cv_predictions(
    run: ll.Run,
    search: Any,
    X: Any,
    y: Any,
    fit_params: dict[str, Any],
    folds: list[tuple[Any, Any]] | None = None,
) -> None:
    """The best candidate's out-of-fold predictions as the ``cv`` split of ``run`` (see the module)."""
    from sklearn.model_selection import cross_val_predict

    truth = _target(y)
    if X is None or truth is None:
        return
    estimator = _best_estimator(search)
    if estimator is None:
        return
    params = dict(fit_params)
    groups = params.pop("groups", None)
    with runtime.preserving_randomness():
        folds = _partition(_search_folds(search, X, y, groups, folds), len(truth))
    if folds is None:
        return
    classifier = is_classifier(estimator)
    method = "predict_proba" if classifier and hasattr(estimator, "predict_proba") else "predict"
    # the fits are part of the search (busy), record no curves anywhere (a throwaway fit) and
    # leave the global generators as they were
    with runtime.busy(), runtime.preserving_randomness(), capturing_fit(FitCurves(-1, -1)):
        out = cross_val_predict(
            estimator,
            X,
            y,
            cv=folds,
            n_jobs=getattr(search, "n_jobs", None),
            method=method,
            **_fit_params(params),
        )
    proba, classes = None, None
    if method == "predict_proba":
        classes = _classes(search, truth)
        proba = np.asarray(out)
        y_pred = np.asarray(classes)[proba.argmax(axis=1)]
    else:
        y_pred = np.asarray(out)
    _store(run, X, truth, y_pred, proba, classes, "cv", classifier)


def log_heldout_predictions(run: ll.Run, model: Any, X: Any, y: Any) -> None:
    """``model``'s predictions on ``X`` against ``y`` as the ``test`` split of the evaluation ``run``."""
    truth = _target(y)
    if X is None or truth is None:
        return
    classifier = is_classifier(model)
    proba, classes = None, None
    with runtime.busy(), runtime.preserving_randomness():
        y_pred = np.asarray(model.predict(X))
        if classifier and hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(X))
            classes = _classes(model, truth)
    if y_pred.ndim != 1 and not (y_pred.ndim == 2 and y_pred.shape[1] == 1):
        return
    _store(run, X, truth, y_pred, proba, classes, "test", classifier)


def _store(
    run: ll.Run, X: Any, truth: Any, y_pred: Any, proba: Any, classes: Any, split: str, classifier: bool
) -> None:
    run.log_predictions(
        truth,
        y_pred,
        proba=proba,
        classes=classes,
        ids=frame_ids(X),
        features=slicing_features(X),
        split=split,
        task="classification" if classifier else "regression",
    )
