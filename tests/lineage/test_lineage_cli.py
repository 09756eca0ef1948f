"""audit, reproduce, verify and diff from the command line, on real runs and real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

import labledger as ll
from labledger.cli.app import main

TRAIN = """
import sys
import labledger as ll
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB

seeded = sys.argv[1] == "seeded"
X, y = load_digits(return_X_y=True)
with ll.start_run("verify-exp", hypothesis="naive Bayes is a fair baseline") as run:
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0 if seeded else None)
    run.log_params({"seeded": seeded, "model": "gnb"})
    run.log_dataset("X_train", X_train)
    model = GaussianNB().fit(X_train, y_train)
    run.log_metrics({"test/accuracy": model.score(X_test, y_test), "fit_seconds": 0.001 * len(sys.argv)})
print(run.id)
"""


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(TRAIN))
    return path


def _python(script, mode, store_path):
    env = {**os.environ, "LABLEDGER_STORE": str(store_path)}
    out = subprocess.run(
        [sys.executable, str(script), mode], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    return out.stdout.strip().splitlines()[-1]


def test_verify_reproduces_a_seeded_script(script, store_path):
    original = _python(script, "seeded", store_path)
    result = CliRunner().invoke(main, ["verify", original, "--", sys.executable, str(script), "seeded"])
    assert result.exit_code == 0, result.output
    assert "reproduced: run verify-exp/" in result.output
    again = [r for r in ll.runs("verify-exp")["id"] if r != original]
    assert len(again) == 1 and ll.get_run(again[0]).reproduction_of == original


def test_verify_catches_an_unseeded_split(script, store_path):
    original = _python(script, "unseeded", store_path)
    result = CliRunner().invoke(main, ["verify", original, "--", sys.executable, str(script), "unseeded"])
    assert result.exit_code == 1
    assert "not reproduced" in result.output and "datasets" in result.output and "X_train" in result.output


def test_verify_reports_a_failing_command(script, store_path):
    original = _python(script, "seeded", store_path)
    result = CliRunner().invoke(main, ["verify", original, "--", sys.executable, "-c", "raise SystemExit(3)"])
    assert result.exit_code == 1 and "exited with status 3" in result.output


def test_reproduce_prints_commit_command_seed_and_writes_requirements(tmp_path, store_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "T"], ["config", "user.email", "t@x"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    (repo / "train.py").write_text(
        "import labledger as ll\n"
        "with ll.start_run('repro', hypothesis='h', seed=11) as run:\n"
        "    run.log_metric('m', 1.0)\n"
        "print(run.id)\n"
    )
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "c"], cwd=repo, check=True)
    (repo / "train.py").write_text((repo / "train.py").read_text() + "# edited\n")
    env = {
        **os.environ,
        "LABLEDGER_STORE": str(store_path),
        "LABLEDGER_CAPTURE_CODE": "1",
        "OMP_NUM_THREADS": "2",
    }
    run_id = subprocess.run(
        [sys.executable, "train.py", "--epochs", "3"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(repo)
    req = tmp_path / "requirements.lock"
    result = invoke("reproduce", run_id, "--requirements", str(req), "--diff", str(tmp_path / "c.diff"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"git checkout {commit}" in out
    assert "uncommitted changes: artifact uncommitted.diff" in out
    assert "python train.py --epochs 3" in out and "OMP_NUM_THREADS=2" in out
    assert "seed     11" in out
    assert "differences from this environment" in out
    lines = req.read_text().splitlines()
    assert f"pytest=={pytest.__version__}" in lines
    assert "+# edited" in (tmp_path / "c.diff").read_text()
    plan = json.loads(invoke("reproduce", run_id, "--json").output)
    assert plan["code"]["commit"] == commit and plan["seed"]["seed"] == 11


def test_diff_shows_only_what_changed(store_path):
    with ll.start_run("diffs", name="a", hypothesis="h") as a:
        a.log_params({"C": 1.0, "kernel": "rbf"})
        a.log_dataset("X", fingerprint="aaa")
    with ll.start_run("diffs", name="b", hypothesis="h", seed=3) as b:
        b.log_params({"C": 10.0, "kernel": "rbf", "gamma": "scale"})
        b.log_dataset("X", fingerprint="bbb")
    a.flush()  # wait for the background start-up captures before comparing packages
    b.flush()
    result = invoke("diff", "diffs/a", "diffs/b")
    out = result.output
    assert result.exit_code == 0
    assert "params" in out and "C" in out and "gamma" in out and "kernel" not in out
    assert "datasets" in out and "aaa" in out and "bbb" in out
    assert "seeds" in out
    data = json.loads(invoke("diff", "diffs/a", "diffs/b", "--json").output)
    assert data["params"] == {"C": [1.0, 10.0], "gamma": [None, "scale"]}
    assert data["packages"] == {} and data["pipeline"] == {}
    same = invoke("diff", "diffs/a", "diffs/a").output
    assert same.startswith("no differences")


def test_audit_and_show_report_completeness(store_path):
    with ll.start_run("audit-exp", name="bare", hypothesis="h") as bare:
        bare.log_metric("m", 1.0)
    result = invoke("audit", "audit-exp")
    assert result.exit_code == 0
    assert "bare" in result.output and "dataset version" in result.output
    data = json.loads(invoke("audit", "--json").output)
    assert data[0]["missing"][0] == "dataset version" and data[0]["score"].endswith("/9")
    shown = invoke("show", "audit-exp/bare").output
    assert "complete    " in shown and "missing: dataset version" in shown
    assert "environment Python" in shown
    full = json.loads(invoke("show", bare.id, "--json").output)
    assert full["completeness"]["missing"][0] == "dataset version" and "lineage" in full
