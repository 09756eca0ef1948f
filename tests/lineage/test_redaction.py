"""Secrets on the command line and in URLs are masked wherever lineage is recorded or shown,
keeping the flag so a reader knows where a secret has to be supplied."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

import labledger as ll
from labledger.cli.app import main
from labledger.lineage import capture as lineage


def _redact_argv(argv):
    return lineage.redact_argv(argv)


def _redact_url(text):
    return lineage.redact_url(text)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--api-key=sk-123"], ["--api-key=***"]),
        (["--token", "abc"], ["--token", "***"]),
        (["--password=hunter2", "-p", "8"], ["--password=***", "-p", "8"]),
        (["--db-password", "x", "--lr", "0.1"], ["--db-password", "***", "--lr", "0.1"]),
        (["--hf_token", "hf_x", "--apiKey", "k", "-token=t"],
         ["--hf_token", "***", "--apiKey", "***", "-token=***"]),
        (["db.password=pw", "+auth.token=t", "model.lr=0.1"],
         ["db.password=***", "+auth.token=***", "model.lr=0.1"]),
        (["--secret", "--verbose"], ["--secret", "--verbose"]),  # a flag without a value: nothing to mask
        (["--max-tokens", "512", "--tokenizer", "bert", "--author", "ada", "--key", "val_acc"],
         ["--max-tokens", "512", "--tokenizer", "bert", "--author", "ada", "--key", "val_acc"]),
        (["postgres://ada:pw@db.example.org:5432/runs"], ["postgres://ada:***@db.example.org:5432/runs"]),
        (["--data=https://ghp_tok@host/x.csv"], ["--data=https://***@host/x.csv"]),
        (["s3://bucket/k?X-Amz-Signature=abc&X-Amz-Credential=c&versionId=3"],
         ["s3://bucket/k?X-Amz-Signature=***&X-Amz-Credential=***&versionId=3"]),
        (["https://h/p?access_token=a;page=2#frag"], ["https://h/p?access_token=***;page=2#frag"]),
        (["train.py", "git@github.com:lab/x.git", "data/a@b.csv"],
         ["train.py", "git@github.com:lab/x.git", "data/a@b.csv"]),
    ],
)  # fmt: skip
def test_redact_argv_masks_values_and_keeps_flags(argv, expected):
    assert _redact_argv(argv) == expected


def test_redact_url_finds_urls_inside_text():
    text = "mirror=https://u:p@h1/x,https://h2/y?token=t&n=1 plain@text"
    assert _redact_url(text) == "mirror=https://u:***@h1/x,https://h2/y?token=***&n=1 plain@text"
    assert lineage.strip_credentials("https://t@git.example.org/a.git?private_token=z") == (
        "https://git.example.org/a.git?private_token=***"
    )


TRAIN = """
import labledger as ll
with ll.start_run("secrets", hypothesis="masked") as run:
    run.log_metric("m", 1.0)
print(run.id)
"""

SECRETS = ["SECRET-1", "SECRET-2", "SECRET-3", "SECRET-4", "SECRET-5", "SECRET-6"]


@pytest.mark.timeout(120)
def test_secrets_never_reach_the_store_show_or_reproduce(tmp_path, store_path):
    repo = tmp_path / "project"
    repo.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.name", "Ada"],
        ["config", "user.email", "ada@example.org"],
        ["remote", "add", "origin", f"https://git.example.org/lab/p.git?access_token={SECRETS[5]}"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    script = repo / "train.py"
    script.write_text(textwrap.dedent(TRAIN))
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "x"], cwd=repo, check=True)
    argv = [
        f"--api-key={SECRETS[0]}",
        "--token",
        SECRETS[1],
        "-p",
        "8",
        "--db",
        f"postgres://ada:{SECRETS[2]}@db.example.org/runs",
        f"https://{SECRETS[3]}@host/data.csv",
    ]
    env = {
        **os.environ,
        "LABLEDGER_STORE": str(store_path),
        "LABLEDGER_CAPTURE_CODE": "1",
        "LABLEDGER_COMPLETENESS": "off",
        "XLA_FLAGS": f"--xla_dump_to=https://u:{SECRETS[4]}@dumps.example.org/x",
    }
    done = subprocess.run(
        [sys.executable, str(script), *argv], env=env, cwd=repo, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = done.stdout.strip().splitlines()[-1]

    conn = sqlite3.connect(store_path / "labledger.db")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dump = "\n".join(
            json.dumps(conn.execute(f"SELECT * FROM {t}").fetchall(), default=str) for t in tables
        )
    finally:
        conn.close()
    for secret in SECRETS:
        assert secret not in dump, f"{secret} is stored"

    view = ll.get_run(run_id, store=store_path)
    assert view.source["argv"][1:] == [
        "--api-key=***",
        "--token",
        "***",
        "-p",
        "8",
        "--db",
        "postgres://ada:***@db.example.org/runs",
        "https://***@host/data.csv",
    ]
    assert view.lineage["code"]["argv"] == view.source["argv"]
    assert view.lineage["code"]["git"]["remote"] == "https://git.example.org/lab/p.git?access_token=***"
    assert view.environment["env_vars"]["XLA_FLAGS"] == "--xla_dump_to=https://u:***@dumps.example.org/x"

    runner = CliRunner()
    for command in (["show", run_id], ["reproduce", run_id], ["reproduce", run_id, "--json"]):
        out = runner.invoke(main, [*command, "--store", str(store_path)])
        assert out.exit_code == 0, out.output
        assert not [s for s in SECRETS if s in out.output], (command, out.output)
    assert "--api-key=***" in runner.invoke(main, ["show", run_id, "--store", str(store_path)]).output
    plan = ll.reproduction_plan(run_id, store=store_path)
    assert "--token '***'" in plan["command"] and "-p 8" in plan["command"]


def test_reproduce_masks_secrets_of_runs_recorded_before_masking(store_path):
    with ll.start_run("secrets") as run:
        run.log_metric("m", 1.0)
    run.flush()  # the start-up capture is in
    argv = ["train.py", "--password", "SECRET-7"]
    old_source = {"argv": argv, "script": "train.py", "cwd": "/w"}
    old_lineage = {"code": {"argv": argv, "script": "train.py", "cwd": "/w"}}
    old_env = {"env_vars": {"XLA_FLAGS": "https://u:SECRET-8@h/x"}}
    conn = sqlite3.connect(store_path / "labledger.db")
    with conn:
        conn.execute(
            "UPDATE runs SET source = ?, environment = ?, lineage = ? WHERE id = ?",
            (json.dumps(old_source), json.dumps(old_env), json.dumps(old_lineage), run.id),
        )
    conn.close()
    plan = ll.reproduction_plan(run.id, store=store_path)
    assert plan["command"] == "python train.py --password '***'"
    assert plan["env_vars"] == {"XLA_FLAGS": "https://u:***@h/x"}
