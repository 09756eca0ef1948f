"""A throw-away PostgreSQL cluster for the tests: initdb into a temp folder, started on a free
loopback port, removed when stopped.

initdb refuses to run as root: as root the cluster belongs to the ``postgres`` user and
every server binary runs through ``runuser -u postgres``; otherwise they run directly.

>>> with PostgresCluster.start() as cluster:  # doctest: +SKIP
...     cluster.dsn
'postgresql://postgres@127.0.0.1:41234/postgres'
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

#: Where to look for initdb and pg_ctl after $LABLEDGER_PG_BIN and $PATH (newest version first).
BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql@*/bin")
MISSING = (
    "the PostgreSQL server binaries (initdb, pg_ctl) were not found in $LABLEDGER_PG_BIN, on $PATH "
    "or in /usr/lib/postgresql/*/bin. Install the PostgreSQL server (Debian/Ubuntu: "
    "apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql) "
    "or point LABLEDGER_PG_BIN at its bin folder."
)
OS_USER = "postgres"  # the owner of the cluster when the tests run as root


class ClusterError(RuntimeError):
    """The cluster could not be created or started; the message holds the server's log."""


def _version(folder: Path) -> tuple[int, ...]:
    digits = "".join(c if c.isdigit() else " " for c in str(folder))
    return tuple(int(d) for d in digits.split())


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or ``None``."""
    env = os.environ.get("LABLEDGER_PG_BIN")
    candidates = [Path(env)] if env else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for pattern in BIN_GLOBS:
        root = Path("/")
        candidates += sorted(root.glob(pattern.lstrip("/")), key=_version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running throw-away cluster: superuser ``postgres``, trust authentication, fsync off unless asked."""

    bin_dir: Path
    folder: Path
    port: int
    as_postgres: bool  # the binaries run as the postgres OS user (the tests run as root)
    started_in: float = 0.0  # seconds from initdb to accepting connections
    options: str = ""  # the server's command-line options (pg_ctl -o)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", OS_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)

    @classmethod
    def start(cls, bin_dir: Path | None = None, attempts: int = 3, fsync: bool = False) -> PostgresCluster:
        """initdb and start a cluster; raises :class:`ClusterError` (with the log) when it cannot.

        :param fsync: make commits durable (off by default: a test cluster is thrown away; a
            benchmark turns it on so its figures are those of a real server).
        """
        bin_dir = bin_dir or find_bin_dir()
        if bin_dir is None:
            raise ClusterError(MISSING)
        began = time.perf_counter()
        as_postgres = os.geteuid() == 0
        folder = Path(tempfile.mkdtemp(prefix="labledger-pg-"))
        cluster = cls(bin_dir, folder, 0, as_postgres)
        try:
            if as_postgres:
                try:
                    owner = pwd.getpwnam(OS_USER)
                except KeyError:
                    raise ClusterError(
                        f"the tests run as root, and initdb refuses root: create the {OS_USER!r} user "
                        "(installing the PostgreSQL server package does) or run the tests as another user"
                    ) from None
                os.chown(folder, owner.pw_uid, owner.pw_gid)
            done = cluster._run(
                "initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"
            )
            if done.returncode:
                raise ClusterError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")
            for attempt in range(attempts):  # another process may take the port before the server does
                cluster.port = free_port()
                durable = "on" if fsync else "off"
                listen = f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1"
                cluster.options = f"{listen} -c fsync={durable}"
                done = cluster._run(
                    "pg_ctl", "-D", str(cluster.data), "-l", str(cluster.log), "-w", "-t", "30",
                    "-o", cluster.options, "start",
                )  # fmt: skip
                if done.returncode == 0:
                    cluster.wait_ready()
                    cluster.started_in = time.perf_counter() - began
                    return cluster
                if attempt == attempts - 1 or "could not bind" not in cluster.read_log():
                    raise ClusterError(
                        f"pg_ctl start failed:\n{done.stdout}{done.stderr}\n{cluster.read_log()}"
                    )
        except BaseException:
            cluster.stop()
            raise
        raise AssertionError("unreachable")

    def read_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until the server accepts a connection."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise ClusterError(f"the server did not accept connections:\n{self.read_log()}") from None
                time.sleep(0.05)

    @contextlib.contextmanager
    def database(self, prefix: str = "t") -> Iterator[str]:
        """A new empty database, its connection URI; dropped afterwards, connections and all."""
        import psycopg
        from psycopg import sql

        name = f"{prefix}_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield self.dsn_for(name)
        finally:
            with psycopg.connect(self.dsn, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    def restart(self, down: float = 0.0) -> None:
        """Stop the server (fast shutdown: clients' connections are cut), wait ``down`` seconds,
        and start it again on the same port."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
        time.sleep(down)
        done = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "-o", self.options, "start"
        )
        if done.returncode:
            raise ClusterError(f"pg_ctl start failed:\n{done.stdout}{done.stderr}\n{self.read_log()}")
        self.wait_ready()

    def stop(self) -> None:
        """Stop the server (fast shutdown) if it runs, and remove its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
