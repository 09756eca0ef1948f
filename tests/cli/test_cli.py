"""The CLI is a thin shell over the library: tables for people, JSON for scripts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import labledger as ll
from labledger.cli import main


@pytest.fixture
def tracked(tmp_path):
    with ll.start_run("cli-exp", name="parent", hypothesis="bigger C helps") as parent:
        parent.log_params({"C": 1.0, "kernel": "rbf"})
        parent.log_metrics({"val/acc": 0.91, "loss": 0.3}, step=0)
        parent.log_folds("accuracy", [0.9, 0.92, 0.94])
        parent.set_tags({"team": "vision"})
        parent.note("first try")
        f = tmp_path / "model.bin"
        f.write_bytes(b"m")
        parent.log_artifact(f, kind="model")
        with ll.start_run("cli-exp", name="child", parent=parent) as child:
            child.log_params({"C": 10.0, "kernel": "rbf"})
    with pytest.raises(RuntimeError), ll.start_run("cli-exp", name="broken"):
        raise RuntimeError("diverged")
    return parent, child


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_experiments(tracked):
    result = invoke("experiments")
    assert result.exit_code == 0
    assert "cli-exp" in result.output and "3" in result.output
    data = json.loads(invoke("experiments", "--json").output)
    assert data[0]["name"] == "cli-exp" and data[0]["runs"] == 3


def test_runs_table_and_json(tracked):
    parent, _child = tracked
    result = invoke("runs", "cli-exp")
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (
        "parent",
        "└ child",
        "broken",
        "failed",
        "finished",
        "val/acc",
        "0.91",
        "accuracy (cv)",
        "0.92 ± 0.01633",
        parent.id[:12],
    ):
        assert text in out, text
    assert "child" not in invoke("runs", "cli-exp", "--no-children").output
    data = json.loads(invoke("runs", "--json").output)
    by_name = {r["name"]: r for r in data}
    assert by_name["parent"]["params"] == {"C": 1.0, "kernel": "rbf"}
    assert by_name["parent"]["metrics"]["val/acc"] == 0.91
    assert by_name["broken"]["status"] == "failed"
    assert invoke("runs", "nope").output.startswith("no runs yet")


@pytest.mark.parametrize("ref", ["id", "prefix", "name"])
def test_show_by_id_prefix_or_experiment_and_name(tracked, ref):
    parent, _child = tracked
    arg = {"id": parent.id, "prefix": parent.id[:14], "name": "cli-exp/parent"}[ref]
    result = invoke("show", arg)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (
        "cli-exp/parent",
        "bigger C helps",
        "kernel",
        "rbf",
        "val/acc",
        "accuracy",
        "0.92 ± 0.01633",
        "team",
        "vision",
        "first try",
        "model.bin",
        "children (1)",
        "child",
    ):
        assert text in out, text


def test_show_json_and_error_of_a_failed_run(tracked):
    data = json.loads(invoke("show", "cli-exp/broken", "--json").output)
    assert data["status"] == "failed" and "RuntimeError: diverged" in data["error"]
    parent = json.loads(invoke("show", "cli-exp/parent", "--json").output)
    assert parent["folds"][0]["key"] == "accuracy" and parent["folds"][0]["n"] == 3
    assert parent["children"] and parent["artifacts"][0]["kind"] == "model"
    assert "RuntimeError: diverged" in invoke("show", "cli-exp/broken").output


def test_unknown_run_is_a_clean_error(tracked):
    result = CliRunner().invoke(main, ["show", "nope/nothing"])
    assert result.exit_code == 1
    assert "Error: no run matches 'nope/nothing'" in result.output
    assert "Traceback" not in result.output


def test_store_option_overrides_the_environment(tmp_path):
    other = tmp_path / "other"
    with ll.start_run("elsewhere", store=other):
        pass
    assert "elsewhere" in invoke("experiments", "--store", str(other)).output
    assert "elsewhere" not in invoke("experiments").output


def test_demo_tracks_real_runs_with_one_failure(tmp_path):
    pytest.importorskip("sklearn")
    store = tmp_path / "demo-store"
    proc = subprocess.run(
        [sys.executable, "-m", "labledger.cli", "demo", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "failed as intended" in proc.stdout
    df = ll.runs("digits-demo", store=store)
    assert len(df) == 6
    assert sorted(df["status"]) == ["failed"] + ["finished"] * 5
    # the follow-up run an error analysis of the leader suggested: it follows the leader
    smooth = ll.get_run("digits-demo/svc-rbf-smooth", store=store)
    assert smooth.lineage["follows"]["name"] in {"svc-rbf-c1", "svc-rbf-c10", "svc-linear", "logreg"}
    leader = ll.get_run(smooth.lineage["follows"]["run"], store=store)
    assert leader.notes[-1]["text"].startswith("error analysis: digit ")  # added after it ended
    assert ll.get_predictions("digits-demo/svc-rbf-smooth", store=store).rows == 450
    best = ll.get_run("digits-demo/svc-rbf-c10", store=store)
    assert best.fold_stats[("accuracy", "test")]["n"] == 5
    assert best.summary["test/accuracy"]["last"] > 0.9
    assert best.artifacts[0].kind == "model"
    assert "digits-demo" in proc.stdout and "svc-rbf-c10" in proc.stdout
