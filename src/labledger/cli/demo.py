"""A small real experiment: scikit-learn classifiers on the bundled digits data.

Run it with ``labledger demo``. It tracks several runs with different params
into the store, one of which fails on purpose, and prints the runs table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import labledger as ll
from labledger import settings

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
    from sklearn.datasets import load_digits
    from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

    from labledger.cli.render import render_runs
    from labledger.query.runs import run_rows

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
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
                seed=0,
                tags={"dataset": "digits", "source": "labledger demo"},
            ) as run:
                ids.append(run.id)
                run.log_params({"model": kind, **params, "scoring/accuracy": "accuracy"})
                run.log_config({"test_size": 0.25, "split_random_state": 0})
                run.log_dataset("digits-X", X_train, role="train")
                run.log_dataset("digits-y", y_train, role="train")
                run.log_dataset("digits-X-test", X_test, role="test")
                model = _estimator(kind, params)
                run.log_pipeline(model)
                scores = cross_val_score(model, X_train, y_train, cv=cv, scoring="accuracy")
                # the folds with their design: splitter, measured fold sizes, fingerprint
                run.log_folds("accuracy", scores.tolist(), cv=cv, X=X_train, y=y_train)
                start = time.perf_counter()
                model.fit(X_train, y_train)
                run.log_metrics(
                    {
                        "fit_seconds": time.perf_counter() - start,
                        "train/accuracy": model.score(X_train, y_train),
                        "test/accuracy": model.score(X_test, y_test),
                    }
                )
                run.log_model(model, name="model.joblib")
                run.log_predictions(y_test, model.predict(X_test), features=_slices(X_test, y_test))
                run.note(f"cv accuracy {scores.mean():.4f} ± {scores.std():.4f}")
        except ValueError as e:
            echo(f"  {name} failed as intended: {str(e).strip().splitlines()[0][:100]}")
    ids += _follow_up(experiment, store, X_train, y_train, X_test, y_test, cv, echo)
    echo("")
    echo(render_runs(run_rows(experiment, store)))
    where = store or settings.store() or "./.labledger"
    echo(f"\nstore: {where}")
    echo(f"next:  labledger show {experiment}/svc-rbf-c10")
    echo(f"       labledger leaderboard {experiment} --metric accuracy")
    echo(f"       labledger compare {experiment}/svc-rbf-c1 {experiment}/svc-rbf-c10")
    echo(f"       labledger errors {experiment}/svc-rbf-c10 --by digit --auto")
    echo(f"       labledger journal {experiment}")
    echo("dashboard: python3 -m tox -e ui   (or: labledger ui --open, with labledger[ui] installed)")
    return ids


def _slices(X: Any, y: Any) -> Any:
    """What the demo slices its test errors by: the true digit and how much ink it has."""
    import pandas as pd

    return pd.DataFrame({"digit": [str(d) for d in y], "ink": X.sum(axis=1)})


def _follow_up(
    experiment: str,
    store: str | None,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    cv: Any,
    echo: Any,
) -> list[str]:
    """The hypothesis an error analysis of the leader suggests, tested as a run that follows it."""
    from sklearn.model_selection import cross_val_score

    from labledger.predictions.analysis import errors
    from labledger.tracking.notes import add_note

    leader = ll.leaderboard(experiment, "accuracy", store=store).entries[0].run
    slices = errors(leader.id, by=["digit"], store=store)
    worst = slices.iloc[0]
    finding = (
        f"error analysis: digit {worst['digit']} is the weakest slice "
        f"(accuracy {worst['accuracy']:.3f} on {int(worst['support'])} test digits, "
        f"{worst['overall']:.3f} overall)"
    )
    add_note(leader.id, finding, store=store)  # a finding about an ended run, kept with it
    params = {"kernel": "rbf", "C": 10.0, "gamma": 0.005}
    echo(f"training svc-rbf-smooth ({finding}) ...")
    with ll.start_run(
        experiment,
        name="svc-rbf-smooth",
        hypothesis=f"a smoother kernel (gamma 0.005) lifts digit {worst['digit']} without losing accuracy",
        store=store,
        seed=0,
        follows=leader.id,
        tags={"dataset": "digits", "source": "labledger demo"},
    ) as run:
        run.log_params({"model": "svc", **params, "scoring/accuracy": "accuracy"})
        run.log_dataset("digits-X", X_train, role="train")
        run.log_dataset("digits-y", y_train, role="train")
        run.log_dataset("digits-X-test", X_test, role="test")
        model = _estimator("svc", params)
        run.log_pipeline(model)
        scores = cross_val_score(model, X_train, y_train, cv=cv, scoring="accuracy")
        run.log_folds("accuracy", scores.tolist(), cv=cv, X=X_train, y=y_train)
        model.fit(X_train, y_train)
        run.log_metrics({"test/accuracy": model.score(X_test, y_test)})
        run.log_predictions(y_test, model.predict(X_test), features=_slices(X_test, y_test))
        run.flush()
        after = errors(run.id, by=["digit"], store=store)
        mine = after.set_index("digit").loc[worst["digit"]]
        before = f"{worst['accuracy']:.3f} in {leader.name}"
        run.note(f"digit {worst['digit']}: accuracy {mine['accuracy']:.3f} here, {before}")
    return [run.id]
