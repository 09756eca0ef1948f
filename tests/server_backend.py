"""The test suite against a labledger server: ``LABLEDGER_TEST_STORE=server pytest tests/core``.

Every test then gets its own server: a fresh PostgreSQL database (cloned from a migrated
template in one session-wide cluster) behind the server's app (API, no accounts) served by
uvicorn on a free loopback port in a thread of the test process, artifact bytes in a folder;
``LABLEDGER_STORE`` is its ``http://`` URL, so the Python API and the integrations go through
the HTTP client, its spool and the server exactly as a training node does. Tests that look
inside the SQLite store itself are marked ``sqlite_only`` and are deselected.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: ``LABLEDGER_TEST_STORE=server`` runs the suite against a server.
SERVER_MODE = os.environ.get("LABLEDGER_TEST_STORE", "sqlite") == "server"
TEMPLATE = "labledger_template"
#: Databases cloned ahead of the tests that will use them.
SPARES = 3


@dataclass
class TestServer:
    url: str
    dsn: str
    thread: threading.Thread
    server: Any
    store: Any


class Cluster:
    """The session's PostgreSQL cluster and its migrated template database."""

    def __init__(self) -> None:
        from collections import deque
        from concurrent.futures import Future, ThreadPoolExecutor

        import psycopg

        from labledger.store.postgres import upgrade

        from .server.postgres import PostgresCluster

        self.cluster = PostgresCluster.start()
        self.dropper = ThreadPoolExecutor(1, thread_name_prefix="databases")  # not in the tests' time
        self.spares: deque[Future[str]] = deque()
        with psycopg.connect(self.cluster.dsn, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {TEMPLATE}")
        with psycopg.connect(self.cluster.dsn_for(TEMPLATE), autocommit=True) as conn:
            upgrade(conn)

    def new_database(self) -> str:
        """A new database cloned from the template (made ahead, while earlier tests ran: a clone takes
        about 0.4 s)."""
        while len(self.spares) < SPARES + 1:
            self.spares.append(self.dropper.submit(self._create))
        return str(self.spares.popleft().result())

    def _create(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.cluster.dsn, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
        return name

    def _drop(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.cluster.dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        self.dropper.shutdown(wait=True)
        self.cluster.stop()


def start_server(cluster: Cluster, folder: Path) -> TestServer:
    """A server on a new database, answering on a free loopback port."""
    import socket

    import uvicorn

    from labledger.server.app import create_server_app
    from labledger.store.objects import open_objects
    from labledger.store.postgres.store import PostgresStore

    name = cluster.new_database()
    dsn = cluster.cluster.dsn_for(name)
    artifacts = (folder / "objects").as_uri()
    store = PostgresStore(dsn, artifacts=artifacts)
    app = create_server_app(store, objects=open_objects(artifacts), accounts=None)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY on accepted
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="test-server")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.005)
    return TestServer(f"http://127.0.0.1:{port}", dsn, thread, server, store)


def stop_server(cluster: Cluster, served: TestServer) -> None:
    """Stop the server, forget the clients this process opened for it, drop its database."""
    from labledger.store.remote import plugin

    plugin.close_stores()
    served.server.should_exit = True  # the server stops, and its database goes, in the background

    def stopped() -> None:
        served.thread.join(timeout=30)
        cluster._drop(served.dsn.rsplit("/", 1)[1])

    cluster.dropper.submit(stopped)


def serve(cluster: Cluster, folder: Path) -> Iterator[TestServer]:
    served = start_server(cluster, folder)
    try:
        yield served
    finally:
        stop_server(cluster, served)
