"""The cross-validation conventions every scikit-learn run follows, and recording ``cross_validate``.

The comparison features rely on them. A run evaluated by cross-validation (a
search, each of its candidates, a ``cross_validate``/``cross_val_score`` call) has:

- the design of its folds (:func:`labledger.integrations.base.cv_design_params`): ``cv/class`` (fully
  qualified; ``explicit`` for a list of index pairs), ``cv/n_splits`` (folds evaluated:
  100 for 10×10 repeated k-fold), ``cv/shuffle``, ``cv/random_state``, ``cv/fingerprint``
  (SHA-256 of the actual train/test indices, ``None`` when the splitter does not yield the
  same folds on every call); ``cv/n_repeats`` and ``cv/k`` of a repeated splitter;
  ``cv/test_size``, ``cv/train_size``, ``cv/gap``, ``cv/max_train_size`` when the splitter
  has them; ``cv/groups`` (fingerprint of the ``groups`` given); the measured
  ``cv/train_sizes``, ``cv/test_sizes`` of every fold (means ``cv/n_train``, ``cv/n_test``)
  and ``cv/time_ordered``, when the sizes can be known;
- one ``scoring/<key>`` param per fold key (what the score means: a scorer's name, or
  scikit-learn's description of a custom scorer, ``greater_is_better=False`` included) and
  ``direction/<key>`` = ``max``: scikit-learn's scores are greater-is-better (losses negated);
- its datasets' fingerprints, and its per-fold scores through :meth:`labledger.Run.log_folds`
  under the scorer's name, split ``test`` or ``train``. A default-scored call records the
  estimator's ``score`` under what it computes (``accuracy`` for a classifier, ``r2`` for a
  regressor; ``score`` for an estimator's own ``score`` method).
"""

from __future__ import annotations

import functools
import pickle
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, is_classifier
from sklearn.model_selection import check_cv
from sklearn.model_selection._search import BaseSearchCV

import labledger as ll
from labledger.integrations._sklearn_capture import SearchCapture
from labledger.integrations._sklearn_runtime import INTEGRATION
from labledger.integrations._sklearn_values import estimator_params, param_value
from labledger.integrations.base import FitCurves, cv_design_params, qualified_name, safe

__all__ = [
    "DatasetRecord",
    "cv_params",
    "log_curves",
    "log_estimator",
    "record_cross_validate",
    "record_datasets",
    "score_definition",
    "scoring_keys",
    "scoring_params",
]

#: ``(name, role, fingerprint)`` of a dataset a run recorded.
DatasetRecord = tuple[str, str, str]


def cv_params(
    cv: Any, X: Any = None, y: Any = None, groups: Any = None, splits: list[Any] | None = None
) -> dict[str, Any]:
    """The ``cv/*`` params of a checked splitter; ``splits`` are the folds used, when known."""
    if type(cv).__name__ == "_CVIterableWrapper":  # cv= a list of (train, test) index pairs
        return cv_design_params(list(cv.cv), groups=groups)
    params = cv_design_params(cv, splits, X=X, y=y, groups=groups)
    params["cv/random_state"] = param_value(getattr(cv, "random_state", None))
    return params


def scoring_params(keys: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """``scoring/<key>`` (the definition) and ``direction/<key>`` (``max``) of every fold key."""
    params: dict[str, Any] = {}
    for key, definition in keys.values():
        params[f"scoring/{key}"] = definition
        params[f"direction/{key}"] = "max"  # scikit-learn's scorers are greater-is-better
    return params


def score_definition(estimator: Any) -> str:
    """What ``estimator.score`` computes, resolved through pipelines and searches.

    ``accuracy``/``r2`` for the mixins' own ``score``; a search scores with its
    refit scorer (its ``scoring``, or its estimator's ``score`` without one).
    """
    final = estimator
    for _ in range(20):
        if hasattr(final, "steps"):  # a Pipeline scores with its last step
            final = final.steps[-1][1]
        elif isinstance(final, BaseSearchCV):
            scoring, refit = final.scoring, final.refit
            if scoring is None:
                final = final.estimator
            elif isinstance(scoring, str):
                return scoring
            elif isinstance(scoring, Mapping) and isinstance(refit, str) and refit in scoring:
                chosen = scoring[refit]
                return chosen if isinstance(chosen, str) else str(param_value(chosen))
            elif isinstance(scoring, list | tuple | set) and isinstance(refit, str):
                return refit
            elif callable(scoring):
                return str(param_value(scoring))
            else:
                break
        else:
            break
    score = getattr(type(final), "score", None)
    if score is ClassifierMixin.score:
        return "accuracy"
    if score is RegressorMixin.score:
        return "r2"
    return f"{qualified_name(final)}.score"


def scoring_keys(scoring: Any, estimator: Any, result_keys: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Map scikit-learn's score names (``score``, ``accuracy``) to ``(fold key, definition)``."""
    names = list(result_keys)
    if scoring is None:
        definition = score_definition(estimator)
        key = definition if definition in _scorer_names() else "score"
        return {n: (key if n == "score" else n, definition) for n in names}
    if isinstance(scoring, str):
        return {n: (scoring if n == "score" else n, scoring) for n in names}
    if isinstance(scoring, Mapping):
        return {
            n: (n, s if isinstance(s, str) else str(param_value(s))) for n, s in scoring.items() if n in names
        }
    if isinstance(scoring, list | tuple | set):
        return {n: (n, n) for n in names}
    return {n: (n, str(param_value(scoring))) for n in names}  # a callable (one score or a dict of them)


@functools.cache
def _scorer_names() -> frozenset[str]:
    from sklearn.metrics import get_scorer_names

    return frozenset(get_scorer_names())


def record_cross_validate(
    run: ll.Run,
    estimator: Any,
    X: Any,
    y: Any,
    groups: Any,
    cv: Any,
    scoring: Any,
    results: Mapping[str, Any],
    indices: Mapping[str, Any] | None,
    *,
    capture: SearchCapture | None = None,
    log_datasets: bool = True,
) -> None:
    """Record one ``cross_validate`` call: estimator, splitter, scores per fold, times."""
    checked = check_cv(cv, y, classifier=is_classifier(estimator))
    splits = list(zip(indices["train"], indices["test"], strict=True)) if indices else None
    names = [k[len("test_") :] for k in results if k.startswith("test_")]
    keys = scoring_keys(scoring, estimator, names)
    params: dict[str, Any] = {"estimator/class": qualified_name(estimator)}
    params.update({f"estimator/{k}": v for k, v in estimator_params(estimator).items()})
    params.update(cv_params(checked, X, y, groups, splits=splits))
    params.update(scoring_params(keys))
    run.log_params(params)
    if log_datasets:
        with safe(INTEGRATION, "dataset fingerprints"):
            record_datasets(run, X, y)
    with safe(INTEGRATION, "the pipeline version"):
        run.log_pipeline(estimator, name="pipeline")
    for sk_name, (key, _) in keys.items():
        for split in ("test", "train"):
            column = results.get(f"{split}_{sk_name}")
            if column is not None:
                run.log_folds(key, np.asarray(column).tolist(), split=split)
    metrics = {}
    for name in ("fit_time", "score_time"):
        if name in results:
            values = np.asarray(results[name], dtype=float)
            metrics[f"{name}/mean"] = float(values.mean())
            metrics[f"{name}/std"] = float(values.std())
    run.log_metrics(metrics)
    if capture is not None:
        log_curves(run, capture.for_candidate(0))


def log_curves(run: ll.Run, fits: list[FitCurves]) -> None:
    """Per-fold training curves as ``fold<k>/<key>``, their mean over folds as ``<key>`` (and ``/std``)."""
    fits = [f for f in fits if f.points]
    for fit in fits:
        for key, points in fit.points.items():
            for step, value in sorted(points.items()):
                run.log_metric(f"fold{fit.split}/{key}", value, step=step)
        for key, value in fit.summary.items():
            run.log_metric(f"fold{fit.split}/{key}", value)
    if len(fits) < 2:
        return
    for key in fits[0].points:
        steps = set(fits[0].points[key])
        for fit in fits[1:]:
            steps &= set(fit.points.get(key, {}))
        for step in sorted(steps):
            values = [fit.points[key][step] for fit in fits]
            run.log_metrics({key: float(np.mean(values)), f"{key}/std": float(np.std(values))}, step=step)


def record_datasets(run: ll.Run, X: Any, y: Any) -> list[DatasetRecord]:
    """Fingerprints of ``X`` (role ``train``) and ``y`` (role ``target``); returns what was recorded."""
    out = [("X", "train", run.log_dataset("X", X, role="train"))]
    if y is not None:
        out.append(("y", "target", run.log_dataset("y", y, role="target")))
    return out


def log_estimator(run: ll.Run, estimator: Any, name: str) -> None:
    """Store a fitted estimator as a ``model`` artifact (joblib), with its class in the metadata.

    An estimator that cannot be pickled (its class defined inside a function, a lambda among its
    params) is not stored: the run gets a note saying why and what to change.
    """
    import joblib

    with tempfile.TemporaryDirectory(prefix="labledger-sklearn-") as tmp:
        path = Path(tmp) / name
        try:
            joblib.dump(estimator, path)
        except (pickle.PicklingError, AttributeError, TypeError) as error:  # the estimator's own limit
            run.note(
                f"{name} was not stored: {qualified_name(estimator)} cannot be pickled "
                f"({type(error).__name__}: {error}). Define its class, and the functions it holds, "
                "at module level to have it stored."
            )
            return
        run.log_model(estimator, name=name, path=path, metadata={"serializer": "joblib"})
