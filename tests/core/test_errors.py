"""Immutability and bad input: every refusal is a typed error naming the key or value."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import labledger as ll
from labledger.errors import (
    ArtifactConflictError,
    FoldsConflictError,
    InvalidExperimentNameError,
    InvalidKeyError,
    InvalidValueError,
    ParamConflictError,
    RunFinishedError,
)


def test_param_conflict_raises_and_same_value_is_a_noop(run):
    run.log_params({"C": 1.0, "kernel": "rbf"})
    run.log_param("C", 1.0)
    with pytest.raises(ParamConflictError) as info:
        run.log_params({"new": 1, "C": 2.0})
    e = info.value
    assert (e.key, e.old, e.new) == ("C", 1.0, 2.0) and "'C'" in str(e)
    # nothing of the refused call was stored
    run.end()
    assert ll.get_run(run.id).params == {"C": 1.0, "kernel": "rbf"}


def test_int_and_float_are_different_param_values(run):
    run.log_param("n", 1)
    with pytest.raises(ParamConflictError):
        run.log_param("n", 1.0)


@pytest.mark.sqlite_only
def test_the_store_itself_refuses_to_change_a_param(run):
    run.log_param("C", 1.0)
    with pytest.raises(sqlite3.IntegrityError):
        run.store.conn.execute("UPDATE params SET value = '2.0' WHERE run_id = ?", (run.id,))


@pytest.mark.parametrize(
    "action",
    [
        lambda r: r.log_param("a", 1),
        lambda r: r.log_params({"a": 1}),
        lambda r: r.log_metric("m", 1.0),
        lambda r: r.log_metrics({"m": 1.0}),
        lambda r: r.log_dataset("d", fingerprint="x"),
        lambda r: r.log_folds("acc", [1.0]),
    ],
)
def test_finished_runs_are_read_only(run, action):
    run.end()
    with pytest.raises(RunFinishedError) as info:
        action(run)
    assert info.value.run_id == run.id and info.value.status == "finished"


def test_a_finished_run_still_takes_notes(run):
    run.end()
    run.note("a finding after the end")
    assert [n["text"] for n in ll.get_run(run.id).notes] == ["a finding after the end"]


@pytest.mark.sqlite_only
def test_finished_run_refuses_artifacts_and_the_store_refuses_writes(run, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x")
    run.end()
    with pytest.raises(RunFinishedError):
        run.log_artifact(f)
    with pytest.raises(sqlite3.IntegrityError, match="read-only"):
        run.store.conn.execute("INSERT INTO params (run_id, key, value) VALUES (?, 'k', '1')", (run.id,))
    with pytest.raises(sqlite3.IntegrityError, match="final"):
        run.store.conn.execute("UPDATE runs SET status = 'running' WHERE id = ?", (run.id,))


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("x" * 251, "limit is 250"),
        ("a\nb", "control character"),
        ("a\x00b", "control character"),
        ("tab\there", "control character"),
        (" padded", "white space"),
        (3, "must be a str"),
    ],
)
def test_bad_keys_are_refused_everywhere(run, key, reason):
    for call in (
        lambda: run.log_metric(key, 1.0),
        lambda: run.log_metrics({key: 1.0}),
        lambda: run.log_params({key: 1}),
        lambda: run.set_tags({key: "v"}),
    ):
        with pytest.raises(InvalidKeyError, match=reason) as info:
            call()
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "value", ["0.5", b"1", None, [1.0, 2.0], {"a": 1}, True, 1 + 2j, np.array([1.0, 2.0]), object()]
)
def test_non_numeric_metric_values_are_type_errors_naming_the_key(run, value):
    with pytest.raises(InvalidValueError) as info:
        run.log_metric("val/acc", value)
    assert isinstance(info.value, TypeError) and info.value.key == "val/acc"
    assert "val/acc" in str(info.value)


def test_a_bad_value_in_a_dict_logs_nothing(run):
    with pytest.raises(InvalidValueError, match="'bad'"):
        run.log_metrics({"good": 1.0, "bad": "x"}, step=0)
    run.end()
    assert ll.get_run(run.id).summary == {}


def test_numeric_metric_values_are_converted(run):
    run.log_metric("a", 1)
    run.log_metric("b", np.float32(0.5))
    run.log_metric("c", np.array([2.5]))
    run.log_metric("d", np.int64(3))
    with pytest.raises(InvalidValueError, match="too large"):
        run.log_metric("e", 10**400)
    run.end()
    s = ll.get_run(run.id).summary
    assert [s[k]["last"] for k in "abcd"] == [1.0, 0.5, 2.5, 3.0]


@pytest.mark.parametrize("step", [1.5, "3", True, 2**62, -(2**62) - 1])
def test_bad_steps_are_refused(run, step):
    with pytest.raises(InvalidValueError):
        run.log_metric("m", 1.0, step=step)


def test_negative_and_non_monotonic_steps_are_stored(run):
    for step in (5, -3, 5, 0, 2**62 - 1):
        run.log_metric("m", float(step), step=step)
    run.end()
    assert ll.get_run(run.id).metric("m")["step"].tolist() == [5, -3, 5, 0, 2**62 - 1]


def test_negative_epoch_is_refused(run):
    with pytest.raises(InvalidValueError, match="epoch"):
        run.log_metric("m", 1.0, epoch=-1)


def test_param_values_that_are_not_json_are_refused(run):
    with pytest.raises(InvalidValueError, match="'model'"):
        run.log_params({"model": object()})
    with pytest.raises(InvalidValueError, match="dict keys must be valid str"):
        run.log_params({"grid": [{1: "a"}]})


def test_tag_values_must_be_strings(run):
    with pytest.raises(InvalidValueError, match="'n'"):
        run.set_tags({"n": 3})


def test_artifact_errors(run, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.bin"):
        run.log_artifact(tmp_path / "missing.bin")
    f = tmp_path / "a.bin"
    f.write_bytes(b"one")
    with pytest.raises(InvalidValueError, match="checkpoint"):
        run.log_artifact(f, kind="weights")
    for bad in ("../../etc/passwd", "/etc/passwd", "a\x00b", ""):
        with pytest.raises(InvalidKeyError):
            run.log_artifact(f, name=bad)
    run.log_artifact(f, name="model")
    f.write_bytes(b"two")
    with pytest.raises(ArtifactConflictError) as info:
        run.log_artifact(f, name="model")
    assert info.value.name == "model"


def test_folds_are_immutable_and_checked(run):
    run.log_folds("acc", [0.5, 0.6])
    run.log_folds("acc", [0.5, 0.6])
    with pytest.raises(FoldsConflictError):
        run.log_folds("acc", [0.5, 0.7])
    with pytest.raises(InvalidValueError):
        run.log_folds("f1", [])
    with pytest.raises(InvalidValueError, match=r"f1\[1\]"):
        run.log_folds("f1", [0.5, "x"])


def test_dataset_needs_data_or_fingerprint(run):
    with pytest.raises(InvalidValueError, match="fingerprint"):
        run.log_dataset("digits")
    with pytest.raises(InvalidValueError, match="no plugin can fingerprint"):
        run.log_dataset("digits", data=object())


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("Digits SVM", "digits-svm"), ("my experiment!", "my-experiment"), ("_x", "x"), ("ÄÖ", None)],
)
def test_experiment_names_follow_the_convention_with_a_suggestion(name, suggestion):
    with pytest.raises(InvalidExperimentNameError) as info:
        ll.start_run(name)
    assert info.value.suggestion == suggestion
    if suggestion:
        assert repr(suggestion) in str(info.value)


def test_experiment_naming_convention_is_configurable(monkeypatch):
    monkeypatch.setenv("LABLEDGER_EXPERIMENT_PATTERN", r"^[A-Z][A-Za-z]+$")
    ll.start_run("Digits").end()
    with pytest.raises(InvalidExperimentNameError):
        ll.start_run("digits")


def test_unknown_run_reference():
    with pytest.raises(ll.errors.RunNotFoundError, match="no run matches"):
        ll.get_run("ffffffff")


def test_a_run_the_store_holds_as_ended_elsewhere_is_reported_once_and_not_retried(run, run_script):
    """Another process ends the run while this one still logs: one clear warning naming the run and
    its status (not a database error from inside the store), nothing more stored, the run still ends."""
    from labledger.store.sink import RunEndedElsewhereWarning

    run.log_param("before", 1)
    run.log_metric("loss", 1.0, step=0)
    run.flush()
    done = run_script(
        f"""
        import os, time
        from labledger.store import open_store
        open_store(os.environ["LABLEDGER_STORE"]).end_run({run.id!r}, "killed", time.time(), "ended by hand")
        """
    )
    assert done.returncode == 0, done.stderr
    with pytest.warns(RunEndedElsewhereWarning) as caught:
        run.log_param("after", 2)
        run.log_metric("loss", 0.5, step=1)
        run.log_folds("acc", [0.9, 0.8])
        run.flush()  # returns: the refused records are not kept for a retry
    assert len(caught) == 1
    message = str(caught[0].message)
    assert run.id in message and "'killed'" in message and "log params" in message
    run.end()
    view = ll.get_run(run.id)
    assert view.status == "killed" and view.params == {"before": 1}
    assert view.metric("loss")["value"].tolist() == [1.0] and view.folds.empty
