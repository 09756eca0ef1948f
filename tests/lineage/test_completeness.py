"""Completeness over the nine parts of an experiment, and the warn/strict policy."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import labledger as ll
from labledger.completeness import PARTS, CompletenessError, CompletenessWarning


def _complete_run(run, tmp_path):
    X = np.arange(20.0).reshape(10, 2)
    y = np.array([0, 1] * 5)
    run.log_dataset("X", X)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    run.log_pipeline(pipe)
    run.log_params({"C": 1.0})
    run.log_config({"epochs": 1})
    run.log_model(pipe.fit(X, y))
    run.log_metric("acc", 0.9)
    ll.seed_everything(1)
    run.note("done")


def test_an_empty_run_lacks_everything_but_what_it_has(run):
    report = run.completeness()
    assert report.score == "0/9" and report.missing == list(PARTS)
    run.log_params({"C": 1.0})
    assert "hyperparameters" not in run.completeness().missing


def test_a_fully_recorded_run_is_complete(tmp_path):
    with ll.start_run("complete", hypothesis="scaling helps") as run:
        _complete_run(run, tmp_path)
    report = ll.get_run(run.id).completeness
    assert report.complete, report.missing
    assert report.parts["model type"] == (True, "sklearn.pipeline.Pipeline")
    assert report.to_dict()["score"] == "9/9"


def test_warn_policy_warns_at_start_without_hypothesis_and_lists_gaps_at_end(monkeypatch):
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "warn")
    with pytest.warns(CompletenessWarning, match="no hypothesis"):
        run = ll.start_run("policy")
    run.log_params({"C": 1})
    with pytest.warns(CompletenessWarning, match=r"/9 complete; missing: dataset version, feature pipeline"):
        run.end()
    assert ll.get_run(run.id).status == "finished"


@pytest.mark.filterwarnings("ignore::labledger.completeness.CompletenessWarning")
def test_child_runs_are_not_checked(monkeypatch):
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "strict")
    with ll.start_run("policy", hypothesis="h") as parent:
        parent.log_dataset("d", fingerprint="ab")
        with ll.start_run("policy", parent=parent) as child:  # no hypothesis, no dataset: fine
            child.log_metric("m", 1.0)
    assert ll.get_run(child.id).status == "finished"


@pytest.mark.filterwarnings("ignore::labledger.completeness.CompletenessWarning")
def test_strict_policy_refuses_a_run_without_hypothesis_and_fails_one_without_data(monkeypatch):
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "strict")
    with pytest.raises(CompletenessError, match="hypothesis"):
        ll.start_run("policy")
    assert ll.runs("policy").empty
    run = ll.start_run("policy", hypothesis="h")
    run.log_metric("m", 1.0)
    with pytest.raises(CompletenessError, match="no dataset version"):
        run.end()
    view = ll.get_run(run.id)
    assert view.status == "failed" and "no dataset version" in view.error
    assert view.summary["m"]["count"] == 1
    ok = ll.start_run("policy", hypothesis="h")
    ok.log_dataset("d", fingerprint="ab")
    ok.end()
    assert ll.get_run(ok.id).status == "finished"


@pytest.mark.filterwarnings("ignore::labledger.completeness.CompletenessWarning")
def test_an_exception_is_never_masked_by_the_strict_policy(monkeypatch):
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "strict")
    with pytest.raises(ZeroDivisionError), ll.start_run("policy", hypothesis="h"):
        1 / 0  # noqa: B018


@pytest.mark.filterwarnings("ignore::labledger.completeness.CompletenessWarning")
def test_policy_from_pyproject(tmp_path, monkeypatch):
    monkeypatch.delenv("LABLEDGER_COMPLETENESS")
    project = tmp_path / "proj" / "sub"
    project.mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").write_text('[tool.labledger]\ncompleteness = "strict"\n')
    monkeypatch.chdir(project)
    assert ll.completeness.policy() == "strict"
    with pytest.raises(CompletenessError):
        ll.start_run("policy")
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "off")
    assert ll.completeness.policy() == "off"
    assert os.getcwd() == str(project)
