"""A small real experiment: scikit-learn classifiers on the bundled digits data.

Run it with ``labledger demo``. It tracks several runs with different params
into the store, one of which fails on purpose, and prints the runs table.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import labledger as ll

#: (run name, estimator, params, hypothesis). The last one is invalid on purpose.
CANDIDATES: list[tuple[str, str, dict[str, Any], str]] = [
    ("svc-linear", "svc", {"kernel": "linear", "C": 1.0}, "a linear SVM is a strong baseline"),
    ("svc-rbf-c1", "svc", {"kernel": "rbf", "C": 1.0, "gamma": "scale"}, "RBF beats linear"),
    ("svc-rbf-c10", "svc", {"kernel": "rbf", "C": 10.0, "gamma": "scale"}, "less regularisation helps"),
    ("logreg", "logreg", {"C": 1.0, "max_iter": 2000}, "a linear model on pixels is enough"),
    ("svc-bad-c", "svc", {"kernel": "rbf", "C": -1.0}, "negative C (fails on purpose)"),
]


def _estimator(kind: str, params: dict[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    model = SVC(**params) if kind == "svc" else LogisticRegression(**params)
    return make_pipeline(StandardScaler(), model)


def run_demo(
    experiment: str = "digits-demo",
    store: str | None = None,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Track the demo experiment; returns the ids of the runs it made."""
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

    from labledger.cli import render_runs
    from labledger.query import run_rows

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    fingerprint = hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    ids = []
    for name, kind, params, hypothesis in CANDIDATES:
        echo(f"training {name} ...")
        try:
            with ll.start_run(
                experiment,
                name=name,
                hypothesis=hypothesis,
                store=store,
                tags={"dataset": "digits", "source": "labledger demo"},
            ) as run:
                ids.append(run.id)
                run.log_params({"model": kind, **params, "cv": {"n_splits": 5, "seed": 0}})
                run.log_dataset(
                    "digits",
                    fingerprint=fingerprint,
                    role="train",
                    rows=int(X.shape[0]),
                    features=int(X.shape[1]),
                )
                model = _estimator(kind, params)
                scores = cross_val_score(model, X_train, y_train, cv=cv, scoring="accuracy")
                run.log_folds("accuracy", scores.tolist())
                start = time.perf_counter()
                model.fit(X_train, y_train)
                run.log_metrics(
                    {
                        "fit_seconds": time.perf_counter() - start,
                        "train/accuracy": model.score(X_train, y_train),
                        "test/accuracy": model.score(X_test, y_test),
                    }
                )
                with tempfile.TemporaryDirectory() as tmp:
                    path = os.path.join(tmp, "model.joblib")
                    joblib.dump(model, path)
                    run.log_artifact(path, kind="model")
                run.note(f"cv accuracy {scores.mean():.4f} ± {scores.std():.4f}")
        except ValueError as e:
            echo(f"  {name} failed as intended: {str(e).strip().splitlines()[0][:100]}")
    echo("")
    echo(render_runs(run_rows(experiment, store)))
    where = store or os.environ.get("LABLEDGER_STORE") or "./.labledger"
    echo(f"\nstore: {where}   try: labledger show {experiment}/svc-rbf-c10")
    return ids
