"""Seeds, feature-pipeline versions and model types."""

from __future__ import annotations

import random

import joblib
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

import labledger as ll


def test_seed_everything_seeds_what_is_imported_and_is_recorded(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    with ll.start_run("seeds") as run:
        info = ll.seed_everything(123)
        a = (random.random(), np.random.rand(), torch.rand(1).item())
        ll.seed_everything(123)
        b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b
    assert {"random", "numpy", "torch", "PYTHONHASHSEED"} <= set(info["reached"])
    import os

    assert os.environ["PYTHONHASHSEED"] == "123"
    seeds = ll.get_run(run.id).lineage["seeds"]
    assert seeds["seed"] == 123 and "torch" in seeds["reached"]
    assert seeds["observed"]["torch.initial_seed"] == 123


def test_start_run_seed_and_observed_seeds_without_seed_everything():
    torch = pytest.importorskip("torch")
    with ll.start_run("seeds", seed=5) as run:
        pass
    assert ll.get_run(run.id).lineage["seeds"]["seed"] == 5
    torch.manual_seed(77)
    import labledger.lineage.seeds as seeds_module

    seeds_module._last = None
    with ll.start_run("seeds") as other:
        pass
    lineage = ll.get_run(other.id).lineage
    assert "seed" not in lineage["seeds"] and lineage["seeds"]["observed"]["torch.initial_seed"] == 77


def test_bad_seed_is_refused():
    with pytest.raises(ll.errors.InvalidValueError):
        ll.seed_everything(-1)


def test_pipeline_version_is_structural_and_independent_of_fitting(run):
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), SVC(C=1.0))
    v1 = run.log_pipeline(pipe)
    pipe.fit(X, y)
    assert ll.lineage.pipeline.pipeline_version(pipe) == v1
    assert ll.lineage.pipeline.pipeline_version(make_pipeline(StandardScaler(), SVC(C=1.0))) == v1
    assert ll.lineage.pipeline.pipeline_version(make_pipeline(StandardScaler(), SVC(C=2.0))) != v1
    assert ll.lineage.pipeline.pipeline_version(make_pipeline(SVC(C=1.0))) != v1
    ct = ColumnTransformer([("num", StandardScaler(), [0, 1]), ("cat", OneHotEncoder(), [2])])
    v2 = run.log_pipeline(ct, name="features")
    run.end()
    pipes = {p["name"]: p for p in ll.get_run(run.id).pipelines}
    assert pipes["pipeline"]["version"] == v1 and pipes["features"]["version"] == v2
    steps = pipes["pipeline"]["structure"]["params"]["steps"]
    assert [s[0] for s in steps] == ["standardscaler", "svc"]
    assert steps[1][1]["class"] == "sklearn.svm._classes.SVC" and steps[1][1]["params"]["C"] == 1.0
    assert "SVC" in pipes["pipeline"]["text"]


def test_log_model_records_the_class_and_loads_back(run):
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    record = run.log_model(model)
    run.end()
    view = ll.get_run(run.id)
    assert view.model_type == "sklearn.linear_model._logistic.LogisticRegression"
    assert view.params["model/class"] == view.model_type
    art = view.artifact("model")
    assert art.kind == "model" and art.metadata["serializer"] == "joblib" and art.sha256 == record.sha256
    restored = joblib.load(art.path)
    assert (restored.predict(X) == model.predict(X)).all()


def test_log_model_with_a_file_and_log_config(run, tmp_path):
    f = tmp_path / "net.pt"
    f.write_bytes(b"weights")
    run.log_model(object(), name="net.pt", path=f, kind="checkpoint", metadata={"epoch": 3})
    run.log_config({"epochs": 3, "batch_size": 32})
    run.end()
    view = ll.get_run(run.id)
    art = view.artifact("net.pt")
    assert art.kind == "checkpoint" and art.metadata == {
        "class": "builtins.object",
        "epoch": 3,
        "serializer": "file",
    }
    assert view.params["config/epochs"] == 3 and view.params["config/batch_size"] == 32
