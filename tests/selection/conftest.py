"""Runs made by real scikit-learn cross-validation, shared by the selection tests.

The store is built once per session under its own folder; tests pass
``store=`` explicitly (the autouse fixture gives each test another default store).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")

import labledger as ll

SCORING = ("accuracy", "f1_macro")


@dataclass
class CVStore:
    path: Path
    ids: dict[str, str]  # run name -> id
    experiment: str = "digits-cv"


def _fold_fingerprint(splits: list[tuple[Any, Any]]) -> str:
    h = hashlib.sha256()
    for train, test in splits:
        h.update(train.tobytes())
        h.update(b"|")
        h.update(test.tobytes())
        h.update(b";")
    return h.hexdigest()


def _track(
    store: Path,
    experiment: str,
    name: str,
    estimator: Any,
    X: Any,
    y: Any,
    cv: Any,
    dataset_fingerprint: str,
    params: dict[str, Any],
    scoring_names: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    from sklearn.model_selection import cross_validate

    splits = list(cv.split(X, y))
    scoring_names = scoring_names or {k: k for k in SCORING}
    with ll.start_run(experiment, name=name, store=store, tags=tags or {"team": "vision"}) as run:
        run.log_params(params)
        run.log_params(
            {
                "cv/class": type(cv).__name__,
                "cv/n_splits": cv.get_n_splits(),
                "cv/shuffle": bool(getattr(cv, "shuffle", False)),
                "cv/random_state": getattr(cv, "random_state", None),
                "cv/fingerprint": _fold_fingerprint(splits),
                "cv/n_train": sum(len(tr) for tr, _ in splits) / len(splits),
                "cv/n_test": sum(len(te) for _, te in splits) / len(splits),
                **{f"scoring/{k}": v for k, v in scoring_names.items()},
            }
        )
        run.log_dataset("digits", fingerprint=dataset_fingerprint, role="train", rows=int(X.shape[0]))
        result = cross_validate(
            estimator, X, y, cv=splits, scoring=dict(scoring_names), return_train_score=True
        )
        for key in scoring_names:
            run.log_folds(key, result[f"test_{key}"].tolist())
            run.log_folds(key, result[f"train_{key}"].tolist(), split="train")
        for i, seconds in enumerate(result["fit_time"]):
            run.log_metric("fit_time", float(seconds), step=i)
        run.log_metric("cv/accuracy_mean", float(result["test_accuracy"].mean()))
        return run.id


@pytest.fixture(scope="session")
def cv_store(tmp_path_factory: pytest.TempPathFactory) -> CVStore:
    """An experiment of real cross-validated classifiers on digits, with comparable and incomparable runs."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    store = tmp_path_factory.mktemp("selection") / "store"
    X, y = load_digits(return_X_y=True)
    fingerprint = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    ids: dict[str, str] = {}
    exp = "digits-cv"
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        mp.setenv("LABLEDGER_COMPLETENESS", "off")
        mp.setenv("LABLEDGER_CAPTURE_CODE", "0")
        warnings.simplefilter("ignore", ConvergenceWarning)
        candidates = [
            (
                "svc-rbf",
                make_pipeline(StandardScaler(), SVC(C=10.0)),
                {"model": "svc", "C": 10.0, "kernel": "rbf"},
            ),
            (
                "svc-rbf-c1",
                make_pipeline(StandardScaler(), SVC(C=1.0)),
                {"model": "svc", "C": 1.0, "kernel": "rbf"},
            ),
            (
                "logreg",
                make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300)),
                {"model": "logreg", "C": 0.1},
            ),
            ("knn", KNeighborsClassifier(n_neighbors=3), {"model": "knn", "n_neighbors": 3}),
            ("tree", DecisionTreeClassifier(max_depth=5, random_state=0), {"model": "tree", "max_depth": 5}),
            ("gnb", GaussianNB(), {"model": "gnb"}),
        ]
        for name, estimator, params in candidates:
            ids[name] = _track(store, exp, name, estimator, X, y, cv, fingerprint, params)
        # not comparable: other train data, other folds, another metric definition
        half = slice(0, 1000)
        sub_fp = hashlib.sha256(X[half].tobytes() + y[half].tobytes()).hexdigest()
        ids["svc-half-data"] = _track(
            store,
            exp,
            "svc-half-data",
            make_pipeline(StandardScaler(), SVC(C=10.0)),
            X[half],
            y[half],
            cv,
            sub_fp,
            {"model": "svc", "C": 10.0, "kernel": "rbf"},
        )
        ids["svc-kfold"] = _track(
            store,
            exp,
            "svc-kfold",
            make_pipeline(StandardScaler(), SVC(C=10.0)),
            X,
            y,
            KFold(5),
            fingerprint,
            {"model": "svc", "C": 10.0, "kernel": "rbf"},
        )
        ids["svc-balanced"] = _track(
            store,
            exp,
            "svc-balanced",
            make_pipeline(StandardScaler(), SVC(C=10.0)),
            X,
            y,
            cv,
            fingerprint,
            {"model": "svc", "C": 10.0, "kernel": "rbf"},
            scoring_names={"accuracy": "balanced_accuracy", "f1_macro": "f1_macro"},
            tags={"team": "nlp"},
        )
        # a real training curve: an MLP's loss per epoch
        with ll.start_run(exp, name="mlp", store=store, tags={"team": "vision"}) as run:
            mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=15, random_state=0)
            mlp.fit(StandardScaler().fit_transform(X), y)
            run.log_params({"model": "mlp", "hidden": 32})
            for epoch, loss in enumerate(mlp.loss_curve_):
                run.log_metrics({"train/loss": loss}, step=epoch, epoch=epoch)
            ids["mlp"] = run.id
        # a run that fails for real: a negative C is rejected by scikit-learn
        try:
            with ll.start_run(exp, name="svc-bad-c", store=store) as run:
                ids["svc-bad-c"] = run.id
                run.log_params({"model": "svc", "C": -1.0})
                SVC(C=-1.0).fit(X, y)
        except ValueError:
            pass
    return CVStore(store, ids, exp)
