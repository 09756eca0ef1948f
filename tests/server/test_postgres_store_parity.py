"""The same scripts (a scikit-learn search under autolog included) run against a PostgreSQL store
and a SQLite store leave the same records, read back through the public API."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sklearn")

import labledger as ll
import labledger.integrations.sklearn as llsk
from labledger.store.postgres.plugin import close_stores
from labledger.tracking import lifecycle

pytestmark = pytest.mark.timeout(300)

SCRIPT = """
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier

import labledger as ll
import labledger.integrations.sklearn as llsk

with ll.start_run("manual", name="first", params={"lr": 0.1, "layers": [64, 32], "opt": {"name": "adam"}},
                  tags={"team": "vision"}) as run:
    for step in range(1500):
        run.log_metrics({"loss": 1 / (step + 1), "acc": step / 1500}, step=step)
    run.log_metric("loss", float("nan"), step=1500)
    run.log_folds("f1", [0.7, 0.8, 0.75], split="test")
    run.log_folds("f1", [0.9, 0.95, float("nan")], split="train")
    run.set_tag("team", "nlp")
    run.note("a first note")
    run.note("a second note")
    open("weights.bin", "wb").write(bytes(range(256)) * 40)
    run.log_artifact("weights.bin")
    with ll.start_run("manual", name="child", parent=run) as child:
        child.log_param("fold", 3)
        child.log_metric("loss", 0.25)
failed = ll.start_run("manual", name="second", params={"lr": 0.2})
failed.log_metric("loss", 2.0)
failed.end("failed", error="diverged")

X, y = load_digits(return_X_y=True)
llsk.autolog(experiment="search", name="grid")
GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [2, 4]}, cv=3).fit(X[:300], y[:300])
"""


@pytest.fixture
def pg_store(pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("LABLEDGER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LABLEDGER_ARTIFACTS", (tmp_path / "objects").as_uri())
    yield pg_dsn
    llsk.autolog(disable=True)
    for run in lifecycle.open_runs():
        run.end("finished")
    close_stores()


def _timing(key: str) -> bool:
    return "time" in key


def _value(v: Any) -> Any:
    return "nan" if isinstance(v, float) and math.isnan(v) else v


def contents(store: str) -> dict[str, Any]:
    """What a store holds, by experiment and run name, without ids, times and timings."""
    listing = ll.runs(include_children=True, store=store)
    names = dict(zip(listing["id"], listing["experiment"] + "/" + listing["name"], strict=True))
    held: dict[str, Any] = {}
    for run_id, label in names.items():
        view = ll.get_run(run_id, store=store)
        held[label] = {
            "status": view.status,
            "error": view.error,
            "parent": names.get(view.parent_id) if view.parent_id else None,
            "params": {k: v for k, v in view.params.items() if not k.startswith("environment")},
            "tags": view.tags,
            "tag_history": [(h["key"], h["value"]) for h in view.tag_history],
            "notes": [n["text"] for n in view.notes],
            "summary": {
                k: {f: _value(v) for f, v in s.items() if f != "last_time"}
                for k, s in view.summary.items()
                if not _timing(k)
            },
            "metrics": {
                k: [(r.step, _value(r.value)) for r in view.metric(k).itertuples()]
                for k in view.metric_keys()
                if not _timing(k)
            },
            "folds": sorted(
                (r.key, r.split, r.fold, _value(r.value))
                for r in view.folds.itertuples()
                if not _timing(r.key)
            ),
            "artifacts": sorted((a.name, a.kind, a.media_type) for a in view.artifacts),
            "weights": [a.sha256 for a in view.artifacts if a.name == "weights.bin"],
            "datasets": sorted((d["name"], d["role"], d["fingerprint"]) for d in view.datasets),
        }
    return held


def test_a_script_leaves_the_same_records_in_both_stores(
    pg_store: str, run_script, store_path: Path, tmp_path: Path
) -> None:
    for store in (str(store_path), pg_store):
        done = run_script(SCRIPT, env={"LABLEDGER_STORE": store}, timeout=180)
        assert done.returncode == 0, done.stderr
    sqlite, postgres = contents(str(store_path)), contents(pg_store)
    assert sorted(postgres) == sorted(sqlite)
    assert len(sqlite) == 6  # three manual runs, a search and its two candidates
    for label in sqlite:
        assert postgres[label] == sqlite[label], label
    first = postgres["manual/first"]
    assert len(first["metrics"]["loss"]) == 1501 and first["metrics"]["loss"][-1] == (1500, "nan")
    assert first["params"]["layers"] == [64, 32] and first["tag_history"] == [
        ("team", "vision"),
        ("team", "nlp"),
    ]
    assert len(first["folds"]) == 6 and first["weights"] and postgres["manual/second"]["error"] == "diverged"
    search = postgres["search/grid"]
    assert search["summary"]["best_score"] and len(search["datasets"]) == 2
    assert {"cv_results.parquet", "best_estimator.joblib"} <= {a[0] for a in search["artifacts"]}


def test_sklearn_autolog_records_a_search_in_postgresql(pg_store: str) -> None:
    import joblib
    import pandas as pd
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    grid = {"max_depth": [2, 4], "min_samples_leaf": [1, 8]}
    with llsk.autolog(experiment="grid", store=pg_store):
        search = GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3).fit(X, y)
    listing = ll.runs("grid", include_children=True, store=pg_store)
    parent = ll.get_run(listing[listing["parent_id"].isna()].iloc[0]["id"], store=pg_store)
    assert parent.status == "finished" and len(parent.children) == 4
    assert parent.summary["best_score"]["last"] == search.best_score_
    results = search.cv_results_
    for child in parent.children:
        i = child.params["candidate/index"]
        folds = child.folds[child.folds["split"] == "test"].sort_values("fold")["value"].tolist()
        assert folds == [results[f"split{k}_test_score"][i] for k in range(3)]
    arts = {a.name: a for a in parent.artifacts}
    table = pd.read_parquet(arts["cv_results.parquet"].path)
    assert table["mean_test_score"].tolist() == results["mean_test_score"].tolist()
    restored = joblib.load(arts["best_estimator.joblib"].path)
    assert (restored.predict(X) == search.best_estimator_.predict(X)).all()
