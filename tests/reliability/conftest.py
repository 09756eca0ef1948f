"""Helpers for the reliability tests: worker scripts in real processes, and store checks."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _quiet_completeness(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the store, not about how complete a run's record is."""
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "off")


def integrity(db_path: Path) -> str:
    """``PRAGMA integrity_check`` through a plain connection of its own."""
    conn = sqlite3.connect(db_path)
    try:
        return ", ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def chunk_counts(db_path: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """``(run id, key) -> (summary count, points in stored chunks)`` read in one snapshot."""
    conn = sqlite3.connect(db_path, timeout=30)
    try:
        conn.execute("BEGIN")
        summary = {(r, k): n for r, k, n in conn.execute("SELECT run_id, key, count FROM metric_summary")}
        chunks = {
            (r, k): n
            for r, k, n in conn.execute(
                "SELECT c.run_id, k.name, sum(c.count) FROM metric_chunks c "
                "JOIN metric_keys k ON k.id = c.key_id GROUP BY c.run_id, k.name"
            )
        }
        conn.execute("COMMIT")
    finally:
        conn.close()
    return {key: (summary.get(key, 0), chunks.get(key, 0)) for key in summary.keys() | chunks.keys()}


@pytest.fixture
def spawn(tmp_path: Path, store_path: Path):
    """Start a Python snippet as a real process against the test's store; returns the Popen.

    ``spawn(code, *args, env=None, **popen)``; stdout and stderr are pipes (text).
    """
    procs: list[subprocess.Popen[str]] = []

    def _spawn(code: str, *args: str, env: dict[str, str] | None = None, **popen: object):
        script = tmp_path / f"worker_{len(procs)}.py"
        script.write_text(textwrap.dedent(code))
        full_env = {
            **os.environ,
            "LABLEDGER_STORE": str(store_path),
            "LABLEDGER_COMPLETENESS": "off",
            **(env or {}),
        }
        proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **popen,
        )
        procs.append(proc)
        return proc

    yield _spawn
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
