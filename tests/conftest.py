"""Shared fixtures: a fresh store in a temp dir and a fresh plugin manager per test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import labledger as ll
from labledger import store as store_module
from labledger.hooks import manager as plugins
from labledger.integrations.base import reset_warnings
from labledger.tracking import lifecycle as _lifecycle

from . import server_backend


@pytest.fixture(scope="session")
def _server_cluster():
    """With ``LABLEDGER_TEST_STORE=server``: the session's PostgreSQL cluster for the test servers."""
    if not server_backend.SERVER_MODE:
        yield None
        return
    cluster = server_backend.Cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def _store_location(tmp_path: Path, _server_cluster):
    """The test's store: a folder, or (``LABLEDGER_TEST_STORE=server``) the URL of its own server."""
    if _server_cluster is None:
        yield str(tmp_path / "store")
        return
    yield from server_backend.serve(_server_cluster, tmp_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against a server, tests of the SQLite store's own files are deselected."""
    if not server_backend.SERVER_MODE:
        return
    kept = [item for item in items if item.get_closest_marker("sqlite_only") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _store_location):
    """Every test gets its own default store and the default plugins only."""
    location = _store_location if isinstance(_store_location, str) else _store_location.url
    monkeypatch.setenv("LABLEDGER_STORE", location)
    monkeypatch.setenv("LABLEDGER_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # whatever a framework writes next to the working directory stays here
    monkeypatch.delenv("LABLEDGER_EXPERIMENT", raising=False)
    monkeypatch.delenv("LABLEDGER_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("LABLEDGER_REPRODUCTION_OF", raising=False)
    # tests that check lineage capture and completeness switch these back on
    monkeypatch.setenv("LABLEDGER_CAPTURE_CODE", "0")
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "off")
    # integrations raise their tracking errors; tests of the warning switch it off themselves
    monkeypatch.setenv("LABLEDGER_TESTING", "1")
    plugins.reset()
    reset_warnings()
    yield
    for run in _lifecycle.open_runs():
        run.end("finished")
    plugins.reset()
    # let go of this test's stores (their connections close with them): a session of hundreds
    # of tests would otherwise hold thousands of file descriptors
    for path in [p for p in store_module._open if p.is_relative_to(tmp_path.resolve())]:
        store_module._open.pop(path, None)


@pytest.fixture
def store_path(tmp_path: Path, _store_location) -> Path:
    """The test's store folder (against a server: its URL, which every API taking a store accepts)."""
    if isinstance(_store_location, str):
        return tmp_path / "store"
    return _store_location.url  # type: ignore[return-value]


@pytest.fixture
def run_script(tmp_path: Path, store_path: Path):
    """Run a Python snippet in a real subprocess against the test's store.

    Returns a function ``(code, env=None, timeout=60) -> subprocess.CompletedProcess``.
    """

    def _run(
        code: str, env: dict[str, str] | None = None, timeout: float = 60, **popen: object
    ) -> subprocess.CompletedProcess[str]:
        script = tmp_path / f"script_{abs(hash(code))}.py"
        script.write_text(textwrap.dedent(code))
        full_env = {**os.environ, "LABLEDGER_STORE": str(store_path), **(env or {})}
        popen.setdefault("cwd", tmp_path)  # frameworks write logs next to the working directory
        return subprocess.run(
            [sys.executable, str(script)],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **popen,
        )

    return _run


@pytest.fixture
def run() -> ll.Run:
    """An open run in the test's store (ended by the isolation fixture if the test does not)."""
    return ll.start_run("tests")
