"""Completeness over the nine parts of an experiment, and the warn/strict policy."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import labledger as ll
from labledger.lineage.completeness import PARTS, CompletenessError, CompletenessWarning


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


@pytest.mark.filterwarnings("ignore::labledger.lineage.completeness.CompletenessWarning")
def test_child_runs_are_not_checked(monkeypatch):
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "strict")
    with ll.start_run("policy", hypothesis="h") as parent:
        parent.log_dataset("d", fingerprint="ab")
        with ll.start_run("policy", parent=parent) as child:  # no hypothesis, no dataset: fine
            child.log_metric("m", 1.0)
    assert ll.get_run(child.id).status == "finished"


@pytest.mark.filterwarnings("ignore::labledger.lineage.completeness.CompletenessWarning")
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


@pytest.mark.filterwarnings("ignore::labledger.lineage.completeness.CompletenessWarning")
def test_an_exception_is_never_masked_by_the_strict_policy(monkeypatch):
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "strict")
    with pytest.raises(ZeroDivisionError), ll.start_run("policy", hypothesis="h"):
        1 / 0  # noqa: B018


@pytest.mark.filterwarnings("ignore::labledger.lineage.completeness.CompletenessWarning")
def test_policy_from_pyproject(tmp_path, monkeypatch):
    monkeypatch.delenv("LABLEDGER_COMPLETENESS")
    project = tmp_path / "proj" / "sub"
    project.mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").write_text('[tool.labledger]\ncompleteness = "strict"\n')
    monkeypatch.chdir(project)
    assert ll.lineage.completeness.policy() == "strict"
    with pytest.raises(CompletenessError):
        ll.start_run("policy")
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "off")
    assert ll.lineage.completeness.policy() == "off"
    assert os.getcwd() == str(project)


@pytest.mark.timeout(60)
def test_warnings_name_the_integration_that_started_the_run(monkeypatch):
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "warn")
    origin = "labledger.integrations.keras.LedgerCallback"
    hint = "labledger.integrations.keras.LedgerCallback(..., hypothesis='...')"
    with pytest.warns(CompletenessWarning, match="no hypothesis") as started:
        run = ll.start_run("by-keras", origin=origin, activate=False)
    assert hint in str(started[0].message) and "start_run" not in str(started[0].message)
    run.log_params({"optimizer/learning_rate": 0.01})
    assert run.completeness().parts["notes/hypothesis"] == (False, hint)
    with pytest.warns(CompletenessWarning, match=r"missing: .*notes/hypothesis") as ended:
        run.end()
    assert f"Say what the run should show with {hint} or run.note(...)" in str(ended[0].message)
    view = ll.get_run(run.id)
    assert view.source["origin"] == origin and view.source["argv"]
    assert view.completeness.parts["notes/hypothesis"] == (False, hint)

    # a run started directly still points at start_run
    with pytest.warns(CompletenessWarning, match=r"start_run\(\.\.\., hypothesis='\.\.\.'\)"):
        plain = ll.start_run("by-hand")
    plain.note("a note is enough")
    plain.end()
    assert "origin" not in ll.get_run(plain.id).source

    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "strict")
    with pytest.raises(CompletenessError, match=r"LedgerCallback\(\.\.\., hypothesis="):
        ll.start_run("by-keras", origin=origin)


@pytest.mark.parametrize("origin", ["", "not a name", "a..b", 3, "x" * 50 + "(...)"])
def test_origin_must_be_a_dotted_name(origin):
    from labledger.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match="give the dotted name the user called"):
        ll.start_run("by-keras", origin=origin)
    assert ll.runs("by-keras").empty


def test_built_in_rules_match_whole_words_of_several_parts():
    from labledger.lineage.completeness import param_role

    roles = {
        "max_iter": "configuration",
        "xgb/num_boost_round": "configuration",
        "cv/n_splits": "configuration",
        "early_stopping_rounds": "configuration",
        "trainer/max_epochs": "configuration",
        "epochs": "configuration",
        "max_iterations": "hyperparameter",  # a whole word only
        "C": "hyperparameter",
        "model/class": None,
    }
    assert {k: param_role(k, {}) for k in roles} == roles
