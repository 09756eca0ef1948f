"""Code, environment, packages and author captured at run start, in real processes and git repos."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import labledger as ll

SCRIPT = """
import labledger as ll
with ll.start_run("lineage", hypothesis="capture works") as run:
    run.log_metric("m", 1.0)
print(run.id)
"""


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Ada Lovelace")
    _git(repo, "config", "user.email", "ada@example.org")
    _git(repo, "remote", "add", "origin", "https://ada:s3cret-token@git.example.org/lab/project.git")
    (repo / "train.py").write_text(textwrap.dedent(SCRIPT))
    (repo / "util.py").write_text("X = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    return repo


def _run(script, store_path, **env):
    full = {**os.environ, "LABLEDGER_STORE": str(store_path), "LABLEDGER_CAPTURE_CODE": "1", **env}
    out = subprocess.run(
        [sys.executable, str(script)],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=script.parent,
    )
    return ll.get_run(out.stdout.strip().splitlines()[-1], store=store_path)


def test_clean_git_repo_records_commit_branch_remote_and_author(repo, store_path):
    view = _run(repo / "train.py", store_path)
    git = view.lineage["code"]["git"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout
    assert git["commit"] == head.strip() and git["branch"] == "main"
    assert git["remote"] == "https://git.example.org/lab/project.git"  # credentials stripped
    assert "s3cret" not in str(view.lineage) and git["dirty"] is False
    assert view.lineage["author"]["name"] == "Ada Lovelace"
    assert view.lineage["author"]["email"] == "ada@example.org"
    assert view.lineage["code"]["script"] == str(repo / "train.py")
    assert not [a for a in view.artifacts if a.kind == "code"]


def test_dirty_repo_stores_the_uncommitted_diff_as_a_code_artifact(repo, store_path):
    (repo / "util.py").write_text("X = 2  # tuned\n")
    view = _run(repo / "train.py", store_path)
    git = view.lineage["code"]["git"]
    assert git["dirty"] is True
    (diff,) = [a for a in view.artifacts if a.kind == "code"]
    expected = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=repo, capture_output=True).stdout
    assert diff.name == "uncommitted.diff" and diff.path.read_bytes() == expected
    assert "+X = 2  # tuned" in expected.decode() and git["diff_sha256"] == diff.sha256


def test_a_large_diff_is_capped_with_a_note(repo, store_path):
    (repo / "util.py").write_text("X = 1\n" + "# filler line\n" * 500)
    view = _run(repo / "train.py", store_path, LABLEDGER_DIFF_CAP="1000")
    git = view.lineage["code"]["git"]
    assert git["diff_capped"] is True and "only the first 1,000" in git["diff_note"]
    (diff,) = [a for a in view.artifacts if a.kind == "code"]
    assert diff.size == 1000 and git["diff_bytes"] > 1000


def test_outside_git_the_script_hash_is_recorded(tmp_path, store_path):
    script = tmp_path / "loose" / "train.py"
    script.parent.mkdir()
    script.write_text(textwrap.dedent(SCRIPT))
    view = _run(script, store_path)
    import hashlib

    assert view.lineage["code"].get("git") is None
    assert view.lineage["code"]["script_sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()


def test_environment_and_packages_are_recorded_once_per_distinct_set(store_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "never-recorded")
    with ll.start_run("lineage") as a:
        pass
    with ll.start_run("lineage") as b:
        pass
    a.flush()  # the start-up capture completes in the background; flush waits for it
    b.flush()
    va, vb = ll.get_run(a.id), ll.get_run(b.id)
    env = va.environment
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["cpu_count"] == os.cpu_count() and env["machine"]
    assert env["env_vars"]["OMP_NUM_THREADS"] == "3"
    assert "never-recorded" not in str(env)
    assert va.packages and va.packages == vb.packages
    assert va.packages["pytest"] == __import__("pytest").__version__
    store = ll.open_store(store_path)
    assert store.conn.execute("SELECT count(*) FROM package_sets").fetchone()[0] == 1


def test_child_runs_inherit_their_parents_lineage(store_path):
    with ll.start_run("lineage", seed=3) as parent, ll.start_run("lineage", parent=parent) as child:
        child.log_metric("m", 1.0)
    parent.flush()
    view = ll.get_run(child.id)
    assert view.lineage["inherited_from"] == parent.id
    assert view.lineage["packages_sha256"] == ll.get_run(parent.id).lineage["packages_sha256"]
    assert view.environment == {}


def test_the_entry_script_is_resolved_again_when_argv_or_the_folder_changes(tmp_path, monkeypatch):
    from labledger.lineage.capture import script_path

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.py").write_text("")
    monkeypatch.setattr(sys, "argv", ["train.py"])
    monkeypatch.chdir(tmp_path / "a")
    assert script_path() == (tmp_path / "a" / "train.py").resolve()
    assert script_path() == (tmp_path / "a" / "train.py").resolve()
    monkeypatch.chdir(tmp_path / "b")
    assert script_path() == (tmp_path / "b" / "train.py").resolve()
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "a" / "train.py")])
    assert script_path() == (tmp_path / "a" / "train.py").resolve()
