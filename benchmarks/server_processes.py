"""The servers of ``benchmarks/server_side_by_side.py``: a throw-away PostgreSQL cluster, and
``labledger server`` or ``mlflow server`` on one of its databases, on loopback.

Each tool gets a *template* database, migrated once (labledger: ``labledger db upgrade``, and an
API token when its server has no ``--no-auth``; MLflow: its server started once on it); every
round then copies the template into a fresh database (``CREATE DATABASE ... TEMPLATE``), starts
the tool's server on it with a file artifact root in a fresh folder, and drops both after.

>>> with Databases.start() as dbs:  # doctest: +SKIP
...     spec = prepare("mlflow", sys.executable, dbs, folder)
...     with serving(spec, dbs, folder) as url:
...         print(url)
http://127.0.0.1:41234
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

from tests.server.postgres import PostgresCluster, free_port  # noqa: E402

from ui_serving import _stop as stop_process  # noqa: E402

START_TIMEOUT = 180.0
#: Why MLflow runs one worker unless asked: with ``--workers`` above 1 its uvicorn binds the
#: listening socket itself with ``proto`` 0, asyncio then leaves Nagle's algorithm on for the
#: accepted connections, and on Linux each keep-alive request after a connection's first waits
#: ~40 ms for the client's delayed ACK — which would time TCP, not MLflow.
MLFLOW_WORKERS_NOTE = (
    "MLflow with --workers {n}: its default, 4, loses TCP_NODELAY in uvicorn's multi-process mode "
    "on Linux and adds ~40 ms to every keep-alive request"
)
#: each server's health check
HEALTH = {"labledger": "/api/health", "mlflow": "/health"}


class ServerError(RuntimeError):
    """A server or a command preparing its database failed; the message holds its output."""


class Databases:
    """A throw-away cluster (fsync on: the figures are a real server's) whose databases are
    created from templates and dropped by name."""

    def __init__(self, cluster: PostgresCluster) -> None:
        self.cluster = cluster

    @classmethod
    def start(cls) -> Databases:
        return cls(PostgresCluster.start(fsync=True))

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.cluster.dsn, autocommit=True) as admin:
            admin.execute(statement)  # names are ours: [a-z0-9_] only

    def create(self, name: str, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` when given); returns its URI."""
        import psycopg

        statement = f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")
        for attempt in range(50):  # a stopped server's sessions may take a moment to end
            try:
                self._admin(statement)
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        return self.cluster.dsn_for(name)

    def drop(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def version(self) -> str:
        import psycopg

        with psycopg.connect(self.cluster.dsn) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0].split()[0]}" if row else "PostgreSQL"

    def __enter__(self) -> Databases:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cluster.stop()


@dataclass
class ServerSpec:
    """How to start one tool's server: its interpreter, template database and client settings."""

    tool: str
    python: str
    template: str
    #: extra environment of the clients (labledger's token when its server checks them)
    client_env: dict[str, str] = field(default_factory=dict)
    #: flags of the server's command line beyond the database, artifacts, host and port
    flags: list[str] = field(default_factory=list)


def command(python: str, tool: str) -> list[str]:
    """``tool``'s command in the environment of interpreter ``python`` (its script beside it)."""
    script = Path(python).parent / tool
    if not script.exists():
        raise ServerError(f"no {tool} command beside {python}: install {tool} into that environment")
    return [str(script)]


def cli(python: str, tool: str, *args: str, env: dict[str, str]) -> str:
    """Run ``tool ARGS`` from the environment of ``python``; its output, or :class:`ServerError`."""
    done = subprocess.run(
        [*command(python, tool), *args], env=env, capture_output=True, text=True, check=False, timeout=300
    )
    if done.returncode:
        raise ServerError(f"{tool} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def server_env(folder: Path) -> dict[str, str]:
    """The servers' environment: no telemetry, no tracking variables of the caller's."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "TMPDIR": str(folder)}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job runner process beside it
    for name in ("LABLEDGER_STORE", "LABLEDGER_TOKEN", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    return env


def prepare(tool: str, python: str, dbs: Databases, folder: Path, mlflow_workers: int = 1) -> ServerSpec:
    """Create and migrate ``tool``'s template database; returns how to start its server.

    :param mlflow_workers: ``mlflow server --workers`` (see :data:`MLFLOW_WORKERS_NOTE`).
    """
    spec = ServerSpec(tool, python, f"template_{tool}")
    dsn = dbs.create(spec.template)
    env = server_env(folder)
    if tool == "mlflow":
        spec.flags += ["--workers", str(mlflow_workers)]
        with serving(spec, dbs, folder, database=spec.template):
            pass  # MLflow creates its tables (and its Default experiment) when its server starts
        return spec
    cli(python, "labledger", "db", "upgrade", "--backend", dsn, env=env)
    if "--no-auth" in cli(python, "labledger", "server", "--help", env=env):
        spec.flags.append("--no-auth")
        return spec
    out = cli(
        python, "labledger", "token", "create", "--backend", dsn, "--user", "bench", "--scope", "admin",
        "--create-user", env=env,
    )  # fmt: skip
    spec.client_env["LABLEDGER_TOKEN"] = out.split()[-1]
    for experiment in ("bench", "default"):  # the workloads', and scikit-learn autolog's (W5)
        cli(
            python, "labledger", "grant", "--backend", dsn, "--experiment", experiment, "--user", "bench",
            "--role", "admin", env=env,
        )  # fmt: skip
    return spec


def server_command(spec: ServerSpec, dsn: str, artifacts: Path, port: int) -> list[str]:
    """The command line of ``spec``'s server on database ``dsn``, listening on loopback ``port``."""
    loopback = ["--host", "127.0.0.1", "--port", str(port)]
    if spec.tool == "mlflow":
        backend = dsn.replace("postgresql://", "postgresql+psycopg2://", 1)
        store = ["--backend-store-uri", backend, "--default-artifact-root", artifacts.as_uri()]
    else:
        store = ["--backend", dsn, "--artifacts", artifacts.as_uri()]
    return [*command(spec.python, spec.tool), "server", *store, *loopback, *spec.flags]


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``url`` answers 200; :class:`ServerError` with the log's last lines if ``proc`` exits."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise ServerError(f"the server exited ({proc.returncode}): {' | '.join(tail)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerError(f"{url} did not answer within {START_TIMEOUT:.0f}s")
        time.sleep(0.1)


@contextmanager
def serving(spec: ServerSpec, dbs: Databases, folder: Path, database: str | None = None) -> Iterator[str]:
    """Start ``spec``'s server on a fresh copy of its template (or on ``database`` as it is);
    yield its URL once its health check answers; then stop it and drop the copy."""
    own = database is None
    name = database or f"{spec.tool}_{uuid.uuid4().hex[:12]}"
    work = Path(tempfile.mkdtemp(prefix=f"server-{spec.tool}-", dir=folder))
    dsn = dbs.create(name, template=spec.template) if own else dbs.cluster.dsn_for(name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = work / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            server_command(spec, dsn, work / "artifacts", port),
            cwd=work,
            env=server_env(work),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped with every worker process it starts
        )
        try:
            wait_healthy(url + HEALTH[spec.tool], proc, log)
            yield url
        finally:
            stop_process(proc)
            if own:
                dbs.drop(name)
            shutil.rmtree(work, ignore_errors=True)


def run_worker(
    python: str, argv: list[str], env_for: Callable[[Path], dict[str, str]], info: Any, timeout: float
) -> dict[str, Any]:
    """Run ``python argv... --out FILE [--info FILE]`` in a fresh temporary folder (removed after)
    with the environment ``env_for(folder)``; returns the JSON it wrote, or ``{"error": ...}``."""
    folder = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    out = folder / "result.json"
    cmd = [python, *argv, "--out", str(out)]
    if info is not None:
        (folder / "info.json").write_text(json.dumps(info))
        cmd += ["--info", str(folder / "info.json")]
    stage = " ".join(argv[2:4])
    try:
        proc = subprocess.run(
            cmd, cwd=folder, env=env_for(folder), capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": f"{stage} failed ({proc.returncode}): {' | '.join(tail)}"}
        result: dict[str, Any] = json.loads(out.read_text())
        return result
    except subprocess.TimeoutExpired:
        return {"error": f"{stage} timed out after {timeout:.0f}s"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tool_version(python: str, package: str) -> str | None:
    """The version of ``package`` installed for interpreter ``python``, or ``None``."""
    code = f"from importlib.metadata import version; print(version({package!r}))"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return (done.stdout.strip() or None) if done.returncode == 0 else None
