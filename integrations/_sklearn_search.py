"""Recording a fitted scikit-learn search: the search run and one child run per candidate.

The runs follow the conventions of :mod:`labledger.integrations._sklearn_cv`.
Every candidate carries what a fair comparison needs: the search's ``cv/*``,
``scoring/*`` and ``direction/*`` params and its dataset fingerprints; a candidate
of a successive-halving search also its iteration and resources (``halving/iter``,
``halving/n_resources``), since iterations are scored on different amounts of data,
and the fold sizes of its iteration (``cv/train_sizes``, ``cv/test_sizes``: each fold
subsampled to ``n_resources / n_samples`` of its rows), which the search run leaves out.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import check_cv

import labledger as ll
from labledger.integrations._sklearn_capture import SearchCapture
from labledger.integrations._sklearn_cv import (
    DatasetRecord,
    cv_params,
    log_curves,
    log_estimator,
    record_datasets,
    scoring_keys,
    scoring_params,
)
from labledger.integrations._sklearn_runtime import INTEGRATION
from labledger.integrations._sklearn_values import estimator_params, param_value
from labledger.integrations.base import qualified_name, safe

__all__ = ["cv_params", "record_search", "search_params"]

_CANDIDATE_METRICS = (
    ("mean_fit_time", "fit_time/mean"),
    ("std_fit_time", "fit_time/std"),
    ("mean_score_time", "score_time/mean"),
    ("std_score_time", "score_time/std"),
)


def _search_space(search: Any) -> dict[str, Any]:
    for attr in ("param_grid", "param_distributions"):
        space = getattr(search, attr, None)
        if space is not None:
            return {"search/space": param_value(space)}
    return {}


def search_params(search: Any) -> dict[str, Any]:
    """Parent-run params of a search: its own settings, the estimator, the space."""
    params: dict[str, Any] = {
        "search/class": qualified_name(search),
        "estimator/class": qualified_name(search.estimator),
    }
    for key, value in estimator_params(search.estimator).items():
        params[f"estimator/{key}"] = value
    skip = {"estimator", "param_grid", "param_distributions", "cv", "scoring"}
    for key, value in search.get_params(deep=False).items():
        if key not in skip:
            params[f"search/{key}"] = param_value(value)
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
    run: ll.Run,
    search: Any,
    *,
    X: Any = None,
    y: Any = None,
    groups: Any = None,
    capture: SearchCapture | None = None,
    max_candidate_runs: int | None = None,
    log_datasets: bool = True,
    log_models: bool = True,
) -> list[ll.Run]:
    """Record a fitted search in ``run`` and one child run per candidate; returns the children."""
    results = search.cv_results_
    n_splits = int(search.n_splits_)
    cv = getattr(search, "_checked_cv_orig", None)
    if cv is None:
        cv = check_cv(search.cv, y, classifier=is_classifier(search.estimator))
    cv_info = cv_params(cv, X, y, groups)
    sizes: _IterationSizes | None = None
    if "iter" in results:  # successive halving
        cv_info, sizes = _halving_cv_info(search, cv_info, X)
    keys = scoring_keys(search.scoring, search.estimator, _score_names(results))
    scoring = scoring_params(keys)
    run.log_params({**search_params(search), **cv_info, **scoring})
    datasets: list[DatasetRecord] = []
    if log_datasets and X is not None:
        with safe(INTEGRATION, "dataset fingerprints"):
            datasets = record_datasets(run, X, y)
    with safe(INTEGRATION, "the pipeline version"):
        run.log_pipeline(search.estimator, name="pipeline")

    best = getattr(search, "best_index_", None)
    refit_name = search.refit if isinstance(search.refit, str) else "score"
    if best is not None:
        best = int(best)
        run.log_params({f"best/{k}": param_value(v) for k, v in results["params"][best].items()})
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
    with safe(INTEGRATION, "the cv_results_ table"):
        _log_cv_results(run, results)
    if log_models and hasattr(search, "best_estimator_"):
        with safe(INTEGRATION, "the best estimator"):
            log_estimator(run, search.best_estimator_, "best_estimator.joblib")

    shared = {**cv_info, **scoring}
    return _record_candidates(
        run, results, keys, shared, datasets, n_splits, best, refit_name, capture, max_candidate_runs, sizes
    )


class _IterationSizes:
    """The fold sizes of a successive-halving iteration: scikit-learn subsamples each fold of the
    splitter to ``int(n_resources / n_samples * size)`` rows (train and test alike)."""

    def __init__(self, train: list[int], test: list[int], n_samples: int) -> None:
        self.train, self.test, self.n_samples = train, test, n_samples

    def params(self, n_resources: Any) -> dict[str, Any]:
        if not isinstance(n_resources, int | np.integer):
            return {}
        fraction = int(n_resources) / self.n_samples
        train = [int(fraction * n) for n in self.train]
        test = [int(fraction * n) for n in self.test]
        if not all(train) or not all(test):
            return {}
        return {
            "cv/train_sizes": train,
            "cv/test_sizes": test,
            "cv/n_train": sum(train) / len(train),
            "cv/n_test": sum(test) / len(test),
        }


_SIZES = ("cv/train_sizes", "cv/test_sizes", "cv/n_train", "cv/n_test")


def _halving_cv_info(
    search: Any, cv_info: dict[str, Any], X: Any
) -> tuple[dict[str, Any], _IterationSizes | None]:
    """Halving searches evaluate random subsamples of the folds unless the resource is a parameter:
    then the folds are unknown and their sizes differ per iteration (recorded by each candidate)."""
    if getattr(search, "resource", "n_samples") != "n_samples":
        return cv_info, None
    info = {k: v for k, v in cv_info.items() if k not in _SIZES}
    info["cv/fingerprint"] = None
    n_samples = getattr(search, "_n_samples_orig", None)
    if n_samples is None and X is not None:
        from sklearn.utils.validation import _num_samples

        n_samples = _num_samples(X)
    if "cv/train_sizes" not in cv_info or not n_samples:
        return info, None
    return info, _IterationSizes(cv_info["cv/train_sizes"], cv_info["cv/test_sizes"], int(n_samples))


def _columns(results: Mapping[str, Any], keys: Mapping[str, Any], n_splits: int) -> dict[str, Any]:
    columns: dict[str, list[Any] | None] = {}
    for sk_name in keys:
        for split in ("test", "train"):
            for k in range(n_splits):
                columns[f"split{k}_{split}_{sk_name}"] = _list(results, f"split{k}_{split}_{sk_name}")
        columns[f"rank_test_{sk_name}"] = _list(results, f"rank_test_{sk_name}")
    for col in ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time", "iter", "n_resources"):
        columns[col] = _list(results, col)
    return columns


def _record_candidates(
    parent: ll.Run,
    results: Mapping[str, Any],
    keys: dict[str, tuple[str, str]],
    shared: dict[str, Any],
    datasets: list[DatasetRecord],
    n_splits: int,
    best: int | None,
    refit_name: str,
    capture: SearchCapture | None,
    cap: int | None,
    sizes: _IterationSizes | None = None,
) -> list[ll.Run]:
    params = list(results["params"])
    n = len(params)
    order: list[int] = list(range(n))
    ranks = _list(results, f"rank_test_{refit_name}")
    if cap is not None and cap < n and ranks is not None:
        order = sorted(range(n), key=lambda i: (ranks[i], i))[:cap]
    columns = _columns(results, keys, n_splits)
    iters, resources = columns["iter"], columns["n_resources"]
    width = len(str(n - 1))
    children = []
    with _one_transaction(parent):
        for i in order:
            child = ll.start_run(parent.experiment, name=f"{parent.name}-{i:0{width}d}", parent=parent)
            with child:
                cand = {str(k): param_value(v) for k, v in params[i].items()}
                cand.update(shared)
                cand["candidate/index"] = i
                if iters is not None and resources is not None:
                    cand["halving/iter"] = iters[i]
                    cand["halving/n_resources"] = resources[i]
                    if sizes is not None:
                        cand.update(sizes.params(resources[i]))
                child.log_params(cand)
                for name, role, fingerprint in datasets:  # scored on the search's data
                    child.log_dataset(name, fingerprint=fingerprint, role=role)
                metrics: dict[str, float] = {}
                for sk_name, (key, _) in keys.items():
                    for split in ("test", "train"):
                        cols = [columns[f"split{k}_{split}_{sk_name}"] for k in range(n_splits)]
                        if all(c is not None for c in cols):
                            child.log_folds(key, [c[i] for c in cols if c is not None], split=split)
                    rank = columns[f"rank_test_{sk_name}"]
                    if rank is not None:
                        metrics[f"rank/{key}"] = rank[i]
                for col, metric in _CANDIDATE_METRICS:
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


def _log_cv_results(run: ll.Run, results: Mapping[str, Any]) -> None:
    import pandas as pd

    frame = pd.DataFrame({k: list(v) if k == "params" else v for k, v in results.items()})
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = [json.dumps(param_value(v), sort_keys=True) for v in frame[column]]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Path(tmp) / "cv_results.parquet"
            frame.to_parquet(path, index=False)
        except ImportError:
            path = Path(tmp) / "cv_results.csv"
            frame.to_csv(path, index=False)
        run.log_artifact(path, kind="table", name=path.name, metadata={"rows": len(frame)})


def _one_transaction(run: ll.Run) -> AbstractContextManager[Any]:
    """Group the many small writes of the candidate runs, when the store offers it."""
    transaction = getattr(run.store, "transaction", None)
    return transaction() if callable(transaction) else nullcontext()
