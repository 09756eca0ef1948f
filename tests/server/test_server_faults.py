"""Faults while a training process logs to a server on PostgreSQL with S3 artifacts: the server
killed (SIGKILL) and restarted, PostgreSQL restarted, the object store gone for 10 s. Every point
logged is stored once (counted in the database), the artifact is there and verifies, and the
run ends ``finished``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from labledger.store.objects import open_objects

from .postgres import PostgresCluster, free_port
from .s3 import moto_s3
from .test_server_process import LABLEDGER, database, user_token

POINTS = 30_000

CLIENT = textwrap.dedent(
    """
    import os, sys, time
    import labledger as ll

    points, folder = int(sys.argv[1]), sys.argv[2]
    run = ll.start_run("faults", name="client")
    open(os.path.join(folder, "started"), "w").close()
    for i in range(points):
        run.log_metric("loss", 1.0 / (i + 1), step=i)
        if i % 500 == 0:
            time.sleep(0.1)  # about 6 s of training
        if i == points // 2:
            while not os.path.exists(os.path.join(folder, "log-artifact")):
                time.sleep(0.01)
            path = os.path.join(folder, "model.bin")
            with open(path, "wb") as f:
                f.write(b"weights" * 300_000)
            run.log_artifact(path, kind="model")
    run.end()
    print(run.id)
    """
)


class ServerProcess:
    """``labledger server`` on a fixed port, so it can be killed and started again there."""

    def __init__(self, args: list[str], folder: Path, env: dict[str, str]) -> None:
        self.args, self.folder, self.env = args, folder, env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.folder / f"server-{time.monotonic_ns()}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [*LABLEDGER, "server", *self.args, "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError("the server did not start within 60 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def setup(postgres_cluster: PostgresCluster, tmp_path: Path) -> Iterator[tuple[ServerProcess, str, object]]:
    """A server on a new database with S3 artifacts (moto), and a write token."""
    with moto_s3(tmp_path) as s3, database(postgres_cluster) as dsn:
        bucket = s3.new_bucket()
        env = {**os.environ, "LABLEDGER_CACHE": str(tmp_path / "server-cache")}
        server = ServerProcess(["--backend", dsn, "--artifacts", f"s3://{bucket}/ledger"], tmp_path, env)
        server.start()
        try:
            yield server, dsn, s3
        finally:
            server.stop()


def _client(server: ServerProcess, dsn: str, folder: Path) -> subprocess.Popen[str]:
    token = user_token(dsn, "trainer", "write")
    env = {
        **os.environ,
        "LABLEDGER_STORE": server.url,
        "LABLEDGER_TOKEN": token,
        "LABLEDGER_CACHE": str(folder / "client-cache"),
        "LABLEDGER_END_TIMEOUT": "120",
        "LABLEDGER_CONNECT_TIMEOUT": "60",
    }
    script = folder / "train.py"
    script.write_text(CLIENT)
    return subprocess.Popen(
        [sys.executable, str(script), str(POINTS), str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=folder,
    )


def _wait(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path.name} did not appear"
        time.sleep(0.01)


def _finish(process: subprocess.Popen[str], dsn: str, artifacts: str) -> None:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err
    run_id = out.split()[-1]
    with psycopg.connect(dsn) as conn:
        status = conn.execute("SELECT status FROM runs WHERE id = %s", (run_id,)).fetchone()
        stored = conn.execute(
            "SELECT k.name, sum(c.count) FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id "
            "WHERE c.run_id = %s GROUP BY k.name",
            (run_id,),
        ).fetchall()
        sha = conn.execute("SELECT sha256 FROM artifacts WHERE run_id = %s", (run_id,)).fetchone()
    assert status == ("finished",)
    assert stored == [("loss", POINTS)]  # every point, once
    assert sha is not None
    data = open_objects(artifacts).open(sha[0]).read()
    assert data == b"weights" * 300_000 and hashlib.sha256(data).hexdigest() == sha[0]


def test_the_server_killed_and_restarted_mid_run_loses_nothing(setup, tmp_path):
    server, dsn, _ = setup
    client = _client(server, dsn, tmp_path)
    _wait(tmp_path / "started", client)
    time.sleep(1.0)
    server.kill()
    (tmp_path / "log-artifact").touch()  # logged while the server is down
    time.sleep(2.0)
    server.start()
    _finish(client, dsn, server.args[3])


def test_postgresql_restarted_mid_run_loses_nothing(setup, tmp_path, postgres_cluster):
    server, dsn, _ = setup
    client = _client(server, dsn, tmp_path)
    _wait(tmp_path / "started", client)
    time.sleep(1.0)
    (tmp_path / "log-artifact").touch()
    postgres_cluster.restart(down=2.0)
    _finish(client, dsn, server.args[3])


def test_the_object_store_gone_for_10_s_loses_nothing(setup, tmp_path):
    server, dsn, s3 = setup
    client = _client(server, dsn, tmp_path)
    _wait(tmp_path / "started", client)
    s3.stop()
    (tmp_path / "log-artifact").touch()  # logged while S3 answers nothing
    time.sleep(10.0)
    s3.start()
    _finish(client, dsn, server.args[3])
