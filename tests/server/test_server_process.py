"""``labledger server`` as a process: what it refuses at start, the schema it upgrades, several
workers, S3 artifacts. Also the helpers the other server test modules start servers with.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from labledger.server import accounts
from labledger.store.postgres import SCHEMA_VERSION
from labledger.store.remote import wire

from .postgres import PostgresCluster, free_port
from .s3 import moto_s3

LABLEDGER = [sys.executable, "-m", "labledger.cli"]


@dataclass
class Server:
    """A running ``labledger server``: its process, URL and output file."""

    process: subprocess.Popen[bytes]
    url: str
    output: Path

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_server(args: list[str], folder: Path, env: dict[str, str] | None = None) -> Server:
    """Start ``labledger server ARGS --port <free>`` and wait until its health check answers."""
    port = free_port()
    output = folder / f"server-{port}.log"
    environment = {**os.environ, "LABLEDGER_CACHE": str(folder / "cache"), **(env or {})}
    with output.open("wb") as out:
        process = subprocess.Popen(
            [*LABLEDGER, "server", *args, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    server = Server(process, f"http://127.0.0.1:{port}", output)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/api/health", timeout=2).status_code == 200:
                return server
        time.sleep(0.1)
    stop_server(server)
    raise AssertionError(f"the server did not answer within 60 s:\n{server.log()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextlib.contextmanager
def running(args: list[str], folder: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = start_server(args, folder, env)
    try:
        yield server
    finally:
        stop_server(server)


def database(cluster: PostgresCluster) -> contextlib.AbstractContextManager[str]:
    """A new empty database on ``cluster`` (for module-scoped fixtures), dropped afterwards."""
    return cluster.database("s")


def user_token(dsn: str, user: str, scope: str, groups: tuple[str, ...] = ()) -> str:
    """A token of ``scope`` for ``user`` (created, with their groups, when missing)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if accounts.find_user(conn, user) is None:
            accounts.create_user(conn, user)
        for group in groups:
            with contextlib.suppress(accounts.AccountExistsError):
                accounts.create_group(conn, group)
            accounts.add_to_group(conn, group, user)
        return accounts.create_token(conn, user, scope)


def call(client: httpx.Client, kind: str, method: str, *args: object) -> httpx.Response:
    return client.post(f"/api/v1/{kind}/{method}", content=wire.dumps_args(args))


def result(response: httpx.Response) -> object:
    assert response.status_code == 200, response.text
    return wire.loads_result(response.content)


def run_row(experiment_id: int, name: str = "run") -> dict[str, object]:
    """The row of a new run, as a client sends it to ``insert_run``."""
    return {
        "id": uuid.uuid4().hex, "experiment_id": experiment_id, "name": name, "parent_id": None,
        "kind": "online", "start_time": time.time(), "author": "tester", "hypothesis": None,
        "host": "client-host", "pid": 1, "source": None, "environment": None, "reproduction_of": None,
    }  # fmt: skip


# -- what the command refuses -------------------------------------------------------------


def _refused(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*LABLEDGER, "server", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    return done


def test_a_public_address_needs_tls_or_insecure(tmp_path):
    done = _refused(
        "--backend",
        "postgresql://nobody@127.0.0.1:1/x",
        "--artifacts",
        tmp_path.as_uri(),
        "--host",
        "0.0.0.0",
    )
    assert "--tls-cert" in done.stderr and "--insecure" in done.stderr
    assert "TLS through a reverse proxy" in done.stderr


def test_no_auth_is_for_loopback_and_a_folder_needs_it(tmp_path):
    assert (
        "refused on 0.0.0.0" in _refused("--backend", str(tmp_path), "--no-auth", "--host", "0.0.0.0").stderr
    )
    assert "--no-auth" in _refused("--backend", str(tmp_path / "store")).stderr


def test_a_database_of_a_newer_labledger_is_refused(postgres_cluster, tmp_path):
    with database(postgres_cluster) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            from labledger.store.postgres import upgrade

            upgrade(conn)
            conn.execute(
                "INSERT INTO schema_version (version, labledger) VALUES (%s, '99.0')", (SCHEMA_VERSION + 1,)
            )
        done = _refused("--backend", dsn, "--artifacts", tmp_path.as_uri())
        assert f"schema version {SCHEMA_VERSION + 1} is newer" in done.stderr


# -- serving ----------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found


def test_two_workers_serve_one_database_and_upgrade_it_at_start(postgres_cluster, tmp_path):
    with database(postgres_cluster) as dsn:
        args = ["--backend", dsn, "--artifacts", (tmp_path / "objects").as_uri(), "--workers", "2"]
        with running(args, tmp_path) as server:
            assert "labledger server: serving" in server.log() and server.url in server.log()
            assert len(_children(server.process.pid)) >= 2
            token = user_token(dsn, "carol", "write")
            with server.client(token) as client:
                info = client.get("/api/v1/info").json()
                assert info["schema"] == SCHEMA_VERSION and info["user"] == "carol"
                for i in range(6):  # experiments created through one worker, runs through either
                    experiment = result(call(client, "write", "ensure_experiment", f"team-{i}"))
                    assert isinstance(experiment, int)
                    assert result(call(client, "write", "insert_run", run_row(experiment, "r"))) == "r"
                names = [e["name"] for e in result(call(client, "read", "experiment_rows"))]  # type: ignore[union-attr]
                assert names == [f"team-{i}" for i in range(6)]
                assert result(call(client, "read", "setting", "server.artifacts")) == info["artifacts"]


def test_objects_go_to_s3(postgres_cluster, tmp_path):
    with moto_s3(tmp_path) as s3, database(postgres_cluster) as dsn:
        bucket = s3.new_bucket()
        args = ["--backend", dsn, "--artifacts", f"s3://{bucket}/team/artifacts"]
        with running(args, tmp_path, env=dict(os.environ)) as server:
            token = user_token(dsn, "dave", "write")
            data = os.urandom(300_000)
            sha = hashlib.sha256(data).hexdigest()
            with server.client(token) as client:
                assert client.put(f"/api/v1/objects/{sha}", content=data).status_code == 201
                keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
                assert keys == [f"team/artifacts/sha256/{sha[:2]}/{sha[2:]}"]
                assert client.get(f"/api/v1/objects/{sha}").content == data
                assert client.get("/api/v1/info").json()["artifacts"] == f"s3://{bucket}/team/artifacts"


def test_tls_serves_https_and_the_ready_line_names_it(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = free_port()
    args = [*LABLEDGER, "server", "--backend", str(tmp_path / "store"), "--no-auth", "--port", str(port)]
    args += ["--tls-cert", str(cert), "--tls-key", str(key)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        line = process.stdout.readline().decode()  # type: ignore[union-attr]
        assert f"at https://127.0.0.1:{port}/" in line
        deadline = time.monotonic() + 30
        while True:
            try:
                info = httpx.get(f"https://127.0.0.1:{port}/api/v1/info", verify=False, timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert info.json()["api"] == 1
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()  # type: ignore[union-attr]


def test_kept_alive_connections_get_tcp_nodelay():
    """uvicorn binds its socket with protocol 0, and asyncio then leaves Nagle's algorithm on:
    every request on a kept-alive connection would wait ~40 ms for a delayed acknowledgement."""
    import asyncio
    import socket

    import uvicorn

    from labledger.cli.commands.server import _tcp

    sock = _tcp(uvicorn.Config(app=None, host="127.0.0.1", port=0).bind_socket())
    assert sock.proto == socket.IPPROTO_TCP

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Accept(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted = transport.get_extra_info("socket")
                seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Accept, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) == 1
