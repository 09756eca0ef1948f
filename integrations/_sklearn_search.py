"""Recording a fitted scikit-learn search or a ``cross_validate`` result into runs.

Shared conventions (the comparison features rely on them): a run evaluated by
cross-validation has the params ``cv/class`` (fully qualified), ``cv/n_splits``,
``cv/shuffle``, ``cv/random_state`` and ``cv/fingerprint`` (SHA-256 of the actual
train/test indices, ``None`` when the splitter does not yield the same folds on
every call), one ``scoring/<key>`` param per fold key, and its per-fold scores
through :meth:`labledger.Run.log_folds` under the scorer's name, split ``test``
or ``train``.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, is_classifier
from sklearn.model_selection import check_cv

from labledger import start_run
from labledger.integrations._sklearn_capture import FitCurves, SearchCapture
from labledger.run import Run

__all__ = ["cv_params", "record_cross_validate", "record_search", "scoring_keys"]

_PRIMITIVES = (str, int, float, bool, type(None))


def qualname(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def plain(value: Any) -> Any:
    """A JSON-compatible stand-in for a param value (estimators and callables by repr)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _PRIMITIVES):
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)
        return value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    return repr(value)


def estimator_params(estimator: Any) -> dict[str, Any]:
    """``{param: value}`` of an estimator and its nested estimators (sub-estimators by class)."""
    out: dict[str, Any] = {}
    for key, value in estimator.get_params(deep=True).items():
        if hasattr(value, "get_params") and not isinstance(value, type):
            out[key] = qualname(value)
        elif key == "steps" or key == "transformers":
            out[key] = [str(step[0]) for step in value]
        else:
            out[key] = plain(value)
    return out


# -- cross-validation conventions ------------------------------------------


def cv_fingerprint(splits: Iterable[tuple[Any, Any]]) -> str:
    """SHA-256 of the train/test indices of every fold, in fold order."""
    h = hashlib.sha256()
    for train, test in splits:
        h.update(np.asarray(train, dtype=np.int64).tobytes())
        h.update(b"|")
        h.update(np.asarray(test, dtype=np.int64).tobytes())
        h.update(b";")
    return h.hexdigest()


def yields_constant_splits(cv: Any) -> bool:
    shuffle = getattr(cv, "shuffle", True)
    random_state = getattr(cv, "random_state", 0)
    return isinstance(random_state, int | np.integer) or not shuffle


def cv_params(
    cv: Any, X: Any = None, y: Any = None, groups: Any = None, splits: list[Any] | None = None
) -> dict[str, Any]:
    """The ``cv/*`` params of a checked splitter; ``splits`` are the folds used, when known."""
    random_state = getattr(cv, "random_state", None)
    if random_state is not None and not isinstance(random_state, int | np.integer):
        random_state = repr(random_state)
    shuffle = getattr(cv, "shuffle", None)
    n_splits: int | None = len(splits) if splits is not None else None
    if n_splits is None:
        try:
            n_splits = int(cv.get_n_splits(X, y, groups))
        except Exception:
            n_splits = None
    fingerprint = None
    if splits is not None:
        fingerprint = cv_fingerprint(splits)
    elif X is not None and yields_constant_splits(cv):
        fingerprint = cv_fingerprint(cv.split(X, y, groups))
    return {
        "cv/class": qualname(cv),
        "cv/n_splits": n_splits,
        "cv/shuffle": None if shuffle is None else bool(shuffle),
        "cv/random_state": None if random_state is None else plain(random_state),
        "cv/fingerprint": fingerprint,
    }


def default_score_name(estimator: Any) -> str:
    """What ``estimator.score`` computes: ``accuracy``/``r2`` for the mixins' own ``score``."""
    final = estimator
    while hasattr(final, "steps"):  # a Pipeline scores with its last step
        final = final.steps[-1][1]
    score = getattr(type(final), "score", None)
    if score is ClassifierMixin.score:
        return "accuracy"
    if score is RegressorMixin.score:
        return "r2"
    return f"{qualname(final)}.score"


def scoring_keys(scoring: Any, estimator: Any, result_keys: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Map scikit-learn's score names (``score``, ``accuracy``) to ``(fold key, definition)``."""
    names = list(result_keys)
    if scoring is None:
        return {n: (n, default_score_name(estimator)) for n in names}
    if isinstance(scoring, str):
        return {n: (scoring if n == "score" else n, scoring) for n in names}
    if isinstance(scoring, Mapping):
        return {n: (n, s if isinstance(s, str) else repr(s)) for n, s in scoring.items() if n in names}
    if isinstance(scoring, list | tuple | set):
        return {n: (n, n) for n in names}
    return {n: (n, repr(scoring)) for n in names}  # a callable (one score or a dict of them)


# -- a fitted search ---------------------------------------------------------


def _search_space(search: Any) -> dict[str, Any]:
    for attr in ("param_grid", "param_distributions"):
        space = getattr(search, attr, None)
        if space is not None:
            return {"search/space": plain(space)}
    return {}


def search_params(search: Any) -> dict[str, Any]:
    """Parent-run params of a search: its own settings, the estimator, the space."""
    params: dict[str, Any] = {"search/class": qualname(search), "estimator/class": qualname(search.estimator)}
    for key, value in estimator_params(search.estimator).items():
        params[f"estimator/{key}"] = value
    skip = {"estimator", "param_grid", "param_distributions", "cv", "scoring"}
    for key, value in search.get_params(deep=False).items():
        if key not in skip:
            params[f"search/{key}"] = plain(value)
    params.update(_search_space(search))
    return params


def _list(results: Mapping[str, Any], key: str) -> list[Any] | None:
    column = results.get(key)
    if column is None:
        return None
    return np.asarray(column).tolist()


def _score_names(results: Mapping[str, Any]) -> list[str]:
    return [k[len("mean_test_") :] for k in results if k.startswith("mean_test_")]


def record_search(
    run: Run,
    search: Any,
    *,
    X: Any = None,
    y: Any = None,
    groups: Any = None,
    capture: SearchCapture | None = None,
    max_candidate_runs: int | None = None,
    log_datasets: bool = True,
    log_models: bool = True,
    report: Any = None,
) -> list[Run]:
    """Record a fitted search in ``run`` and one child run per candidate; returns the children."""
    warn = report or (lambda what, error: None)
    results = search.cv_results_
    n_splits = int(search.n_splits_)
    cv = getattr(search, "_checked_cv_orig", None)
    if cv is None:
        cv = check_cv(search.cv, y, classifier=is_classifier(search.estimator))
    cv_info = cv_params(cv, X, y, groups)
    if "iter" in results:  # successive halving
        cv_info = _halving_cv_info(search, cv_info)
    keys = scoring_keys(search.scoring, search.estimator, _score_names(results))
    scoring = {f"scoring/{key}": definition for key, definition in keys.values()}
    run.log_params({**search_params(search), **cv_info, **scoring})
    if log_datasets and X is not None:
        _guard(warn, "dataset fingerprints", _log_datasets, run, X, y)
    if hasattr(run, "log_pipeline"):
        _guard(warn, "pipeline version", run.log_pipeline, search.estimator, name="pipeline")

    best = getattr(search, "best_index_", None)
    refit_name = search.refit if isinstance(search.refit, str) else "score"
    if best is not None:
        best = int(best)
        run.log_params({f"best/{k}": plain(v) for k, v in results["params"][best].items()})
        run.log_params({"best/index": best})
        metrics = {}
        if hasattr(search, "best_score_"):
            metrics["best_score"] = float(search.best_score_)
            std = results.get(f"std_test_{refit_name}")
            if std is not None:
                metrics["best_score/std"] = float(std[best])
        if hasattr(search, "refit_time_"):
            metrics["refit_time"] = float(search.refit_time_)
        if metrics:
            run.log_metrics(metrics)
    _guard(warn, "cv_results_ table", _log_cv_results, run, results)
    if log_models and hasattr(search, "best_estimator_"):
        _guard(warn, "best estimator", log_estimator, run, search.best_estimator_, "best_estimator.joblib")

    return _record_candidates(
        run, results, keys, scoring, cv_info, n_splits, best, refit_name, capture, max_candidate_runs
    )


def _halving_cv_info(search: Any, cv_info: dict[str, Any]) -> dict[str, Any]:
    """Halving searches evaluate random subsamples of the folds unless the resource is a parameter."""
    if getattr(search, "resource", "n_samples") == "n_samples":
        return {**cv_info, "cv/fingerprint": None}
    return cv_info


def _record_candidates(
    parent: Run,
    results: Mapping[str, Any],
    keys: dict[str, tuple[str, str]],
    scoring: dict[str, str],
    cv_info: dict[str, Any],
    n_splits: int,
    best: int | None,
    refit_name: str,
    capture: SearchCapture | None,
    cap: int | None,
) -> list[Run]:
    params = list(results["params"])
    n = len(params)
    order: list[int] = list(range(n))
    ranks = _list(results, f"rank_test_{refit_name}")
    if cap is not None and cap < n and ranks is not None:
        order = sorted(range(n), key=lambda i: (ranks[i], i))[:cap]
    columns: dict[str, list[Any] | None] = {}
    for sk_name in keys:
        for split in ("test", "train"):
            for k in range(n_splits):
                columns[f"split{k}_{split}_{sk_name}"] = _list(results, f"split{k}_{split}_{sk_name}")
        columns[f"rank_test_{sk_name}"] = _list(results, f"rank_test_{sk_name}")
    for col in ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time", "iter", "n_resources"):
        columns[col] = _list(results, col)
    width = len(str(n - 1))
    children = []
    with _one_transaction(parent):
        for i in order:
            child = start_run(parent.experiment, name=f"{parent.name}-{i:0{width}d}", parent=parent)
            with child:
                cand = {str(k): plain(v) for k, v in params[i].items()}
                cand.update(cv_info)
                cand.update(scoring)
                cand["candidate/index"] = i
                iters, resources = columns["iter"], columns["n_resources"]
                if iters is not None and resources is not None:
                    cand["halving/iter"] = iters[i]
                    cand["halving/n_resources"] = resources[i]
                child.log_params(cand)
                metrics: dict[str, float] = {}
                for sk_name, (key, _) in keys.items():
                    for split in ("test", "train"):
                        cols = [columns[f"split{k}_{split}_{sk_name}"] for k in range(n_splits)]
                        if all(c is not None for c in cols):
                            child.log_folds(key, [c[i] for c in cols if c is not None], split=split)
                    rank = columns[f"rank_test_{sk_name}"]
                    if rank is not None:
                        metrics[f"rank/{key}"] = rank[i]
                for col, metric in (
                    ("mean_fit_time", "fit_time/mean"),
                    ("std_fit_time", "fit_time/std"),
                    ("mean_score_time", "score_time/mean"),
                    ("std_score_time", "score_time/std"),
                ):
                    values = columns[col]
                    if values is not None:
                        metrics[metric] = values[i]
                child.log_metrics(metrics)
                if capture is not None:
                    log_curves(child, capture.for_candidate(i))
                if i == best:
                    child.set_tags({"best": "true"})
            children.append(child)
    return children


def log_curves(run: Run, fits: list[FitCurves]) -> None:
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


# -- cross_validate -------------------------------------------------------------


def record_cross_validate(
    run: Run,
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
    report: Any = None,
) -> None:
    """Record one ``cross_validate`` call: estimator, splitter, scores per fold, times."""
    warn = report or (lambda what, error: None)
    checked = check_cv(cv, y, classifier=is_classifier(estimator))
    splits = list(zip(indices["train"], indices["test"], strict=True)) if indices else None
    names = [k[len("test_") :] for k in results if k.startswith("test_")]
    keys = scoring_keys(scoring, estimator, names)
    params: dict[str, Any] = {"estimator/class": qualname(estimator)}
    params.update({f"estimator/{k}": v for k, v in estimator_params(estimator).items()})
    params.update(cv_params(checked, X, y, groups, splits=splits))
    params.update({f"scoring/{key}": definition for key, definition in keys.values()})
    run.log_params(params)
    if log_datasets:
        _guard(warn, "dataset fingerprints", _log_datasets, run, X, y)
    if hasattr(run, "log_pipeline"):
        _guard(warn, "pipeline version", run.log_pipeline, estimator, name="pipeline")
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


# -- artifacts and datasets --------------------------------------------------------


def _log_datasets(run: Run, X: Any, y: Any) -> None:
    run.log_dataset("X", X, role="train")
    if y is not None:
        run.log_dataset("y", y, role="target")


def _log_cv_results(run: Run, results: Mapping[str, Any]) -> None:
    import pandas as pd

    frame = pd.DataFrame({k: list(v) if k == "params" else v for k, v in results.items()})
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = [json.dumps(plain(v), sort_keys=True) for v in frame[column]]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Path(tmp) / "cv_results.parquet"
            frame.to_parquet(path, index=False)
        except ImportError:
            path = Path(tmp) / "cv_results.csv"
            frame.to_csv(path, index=False)
        run.log_artifact(path, kind="table", name=path.name, metadata={"rows": len(frame)})


def log_estimator(run: Run, estimator: Any, name: str) -> None:
    """Store a fitted estimator as a ``model`` artifact (joblib), with its class in the metadata."""
    if hasattr(run, "log_model"):
        run.log_model(estimator, name=name)
        return
    import joblib

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        joblib.dump(estimator, path)
        run.log_artifact(path, kind="model", name=path.name, metadata={"class": qualname(estimator)})


def _guard(report: Any, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as error:  # an optional record must not lose the rest
        report(what, error)
        return None


def _one_transaction(run: Run) -> AbstractContextManager[Any]:
    """Group the many small writes of the candidate runs, when the store offers it."""
    transaction = getattr(run.store, "transaction", None)
    return transaction() if callable(transaction) else nullcontext()
