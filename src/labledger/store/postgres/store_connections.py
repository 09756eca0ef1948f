"""The connections of a :class:`~labledger.store.postgres.store.PostgresStore`: a small pool per
process, and the connection a thread holds for its transaction or snapshot.

The pool (psycopg_pool) is opened on first use and holds autocommit connections. A forked child
never uses its parent's: it opens a pool of its own on first use and leaves the parent's sockets
alone (it neither uses nor closes them). A thread inside :meth:`Connections.pinned` reads and
writes through the one connection it holds; other threads borrow one per call.

>>> conns = Connections("postgresql://labledger@db.example.com/ledger")  # doctest: +SKIP
>>> with conns.borrow() as conn:  # doctest: +SKIP
...     conn.execute("SELECT 1").fetchone()
(1,)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labledger.errors import StoreError
from labledger.store.postgres.connection import CONNECT_TIMEOUT, connect, one_line, redact

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["POOL_SIZE", "POOL_TIMEOUT", "PROBE_SECONDS", "Connections", "Pin"]

#: Connections a store keeps open per process, at most.
POOL_SIZE = 4
#: Seconds a thread waits for a free connection before the store reports it busy.
POOL_TIMEOUT = 30.0
#: Seconds between direct tries of the database while the pool has no connection to give.
PROBE_SECONDS = 1.0


@dataclass
class Pin:
    """A connection a thread holds: ``kind`` is ``"write"`` (a transaction) or ``"read"`` (a snapshot)."""

    conn: psycopg.Connection[Any]
    kind: str


class Connections:
    """The connections of one database in this process (see the module's docstring).

    :param dsn: the connection string (a URI or ``key=value`` string).
    :param size: connections kept open at most.
    """

    def __init__(self, dsn: str, size: int = POOL_SIZE, timeout: float = POOL_TIMEOUT) -> None:
        self.dsn = dsn
        self.location = redact(dsn)
        self.size = size
        self.timeout = timeout
        self._pool: ConnectionPool[Any] | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._abandoned: list[Any] = []  # a parent's pools, kept so nothing of theirs runs in a child

    # -- the pool ------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        import psycopg

        given = psycopg.conninfo.conninfo_to_dict(self.dsn)
        options: dict[str, Any] = {"autocommit": True, "application_name": "labledger"}
        if "connect_timeout" not in given:
            options["connect_timeout"] = CONNECT_TIMEOUT
        return options

    def pool(self) -> ConnectionPool[Any]:
        """This process's pool, opened on first use (a connection is made first, so an unreachable
        database raises :class:`~labledger.store.postgres.errors.DatabaseConnectionError` at once)."""
        pool, pid = self._pool, os.getpid()
        if pool is not None and self._pid == pid:
            return pool
        with self._lock:
            if self._pool is not None and self._pid == pid:
                return self._pool
            if self._pool is not None:  # inherited through fork: the parent's sockets stay the parent's
                self._abandoned.append(self._pool)
                self._pool = None
            connect(self.dsn).close()  # fails fast, naming the database, when it cannot be reached
            from psycopg_pool import ConnectionPool

            _own_jitter()

            opened: ConnectionPool[Any] = ConnectionPool(
                self.dsn,
                kwargs=self._options(),
                min_size=1,
                max_size=self.size,
                timeout=self.timeout,
                open=False,
                name=f"labledger {self.location}",
            )
            opened.open(wait=False)
            self._pool, self._pid = opened, pid
            return opened

    def close(self) -> None:
        """Close this process's pool (a new one opens on next use); a parent's pool is left alone."""
        with self._lock:
            pool, self._pool = self._pool, None
            mine = self._pid == os.getpid()
        if pool is not None and mine:
            pool.close()

    @contextmanager
    def borrow(self, pinned: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A connection of the pool for the block (this thread's pinned one when it holds one,
        unless ``pinned`` is false)."""
        pin = self.current() if pinned else None
        if pin is not None:
            yield pin.conn
            return
        conn = self._get()
        try:
            yield conn
        finally:
            self._put(conn)

    def _get(self) -> psycopg.Connection[Any]:
        """A connection of the pool. While none comes, the database is tried directly every
        :data:`PROBE_SECONDS`: when it cannot be reached, that is raised at once (naming it)
        rather than after the whole wait."""
        from psycopg_pool import PoolTimeout

        pool = self.pool()
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            try:
                return pool.getconn(timeout=max(min(PROBE_SECONDS, left), 0.001))
            except PoolTimeout as e:
                if left <= PROBE_SECONDS:
                    raise StoreError(
                        self.location,
                        f"no free database connection within {self.timeout:.0f}s ({one_line(e)}): "
                        f"all {self.size} of this process are in use",
                    ) from e
                connect(self.dsn).close()  # raises DatabaseConnectionError when the database is gone

    def _put(self, conn: psycopg.Connection[Any]) -> None:
        pool = self._pool
        if pool is not None and self._pid == os.getpid():
            pool.putconn(conn)

    # -- what a thread holds ------------------------------------------------------------

    def _stack(self) -> list[Pin]:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.pid, local.stack = os.getpid(), []
        stack: list[Pin] = local.stack
        return stack

    def current(self) -> Pin | None:
        """The connection this thread holds (the innermost), or None."""
        stack = self._stack()
        return stack[-1] if stack else None

    def holds(self, kind: str) -> bool:
        """Whether this thread holds a connection of ``kind`` (``"write"`` or ``"read"``)."""
        return any(pin.kind == kind for pin in self._stack())

    def writer(self) -> Pin | None:
        """The transaction connection this thread holds, or None."""
        return next((p for p in reversed(self._stack()) if p.kind == "write"), None)

    @contextmanager
    def pinned(self, kind: str, conn: psycopg.Connection[Any] | None = None) -> Iterator[Pin]:
        """Hold ``conn`` (default: one of the pool, returned after the block) as this thread's
        connection of ``kind`` while the block runs."""
        stack = self._stack()
        owned = conn is None
        pin = Pin(self._get() if conn is None else conn, kind)
        stack.append(pin)
        try:
            yield pin
        finally:
            stack.remove(pin)
            if owned:
                self._put(pin.conn)


def _own_jitter() -> None:
    """Give psycopg_pool a random generator of its own: it jitters each connection's lifetime and
    its reconnection back-off with the global ``random.random``, which would shift a seeded
    training program's draws every time the pool connects (tracking must change nothing)."""
    import random

    import psycopg_pool.base

    if getattr(psycopg_pool.base, "random", None) is random.random:
        psycopg_pool.base.random = random.Random().random
