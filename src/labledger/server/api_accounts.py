"""The server's accounts on its PostgreSQL database, through a small connection pool per process.

:class:`PostgresAccounts` answers what the server asks of its accounts: who a token belongs to
(:func:`labledger.server.accounts.authenticate`), whether an experiment exists, and the grant
of ``admin`` to the creator of a new experiment. A database that cannot be reached raises
:class:`~labledger.store.postgres.errors.DatabaseConnectionError` (the API answers 503).

>>> accounts = PostgresAccounts("postgresql://labledger@db.example.com/ledger")
>>> accounts.authenticate("ll_...")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from labledger.server.accounts import Principal

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["PostgresAccounts"]

_T = TypeVar("_T")
#: Connections each server process keeps for its accounts, at most.
POOL_SIZE = 4


class PostgresAccounts:
    """The accounts of the labledger database ``dsn`` (see the module's docstring)."""

    def __init__(self, dsn: str, pool_size: int = POOL_SIZE) -> None:
        from labledger.store.postgres.connection import redact

        self.dsn = dsn
        self.location = redact(dsn)
        self.pool_size = pool_size
        self._pool: ConnectionPool[Any] | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<labledger PostgresAccounts {self.location}>"

    def _open(self) -> ConnectionPool[Any]:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                from psycopg_pool import ConnectionPool

                from labledger.store.postgres.connection import connect

                connect(self.dsn).close()  # an unreachable database raises, naming it
                kwargs = {"autocommit": True, "application_name": "labledger server"}
                pool: ConnectionPool[Any] = ConnectionPool(
                    self.dsn, kwargs=kwargs, min_size=1, max_size=self.pool_size, open=False, timeout=30
                )
                pool.open(wait=False)
                self._pool, self._pid = pool, os.getpid()
            return self._pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        from labledger.store.postgres.store_errors import database_error

        try:
            with self._open().connection() as conn:
                yield conn
        except Exception as e:
            error = database_error(e, self.location)
            if error is None:
                raise
            raise error from e

    def _run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        with self._connection() as conn:
            return fn(conn, *args, **kwargs)

    def close(self) -> None:
        """Close this process's connections (they reopen on next use)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close()

    def authenticate(self, token: str) -> Principal | None:
        """Who ``token`` belongs to, or None (unknown, revoked, expired, user disabled)."""
        from labledger.server.accounts import authenticate

        return self._run(authenticate, token)

    def experiment_exists(self, name: str) -> bool:
        """Whether experiment ``name`` exists (whoever may see it)."""
        from labledger.store.postgres.accounts import experiment_id

        return self._run(experiment_id, name) is not None

    def create_experiment(self, name: str, description: str | None, user: str) -> bool:
        """Create experiment ``name`` and give ``user`` the ``admin`` role on it, in one transaction;
        whether it was created (``False``: it existed, the caller's rights decide).

        Two users creating it at once: one creates it, the other waits and finds it.
        """
        from labledger.server.accounts import grant
        from labledger.store.postgres.accounts import experiment_id, lock_experiment_name
        from labledger.store.postgres.writes import ensure_experiment

        def create(conn: psycopg.Connection[Any]) -> bool:
            with conn.transaction():
                lock_experiment_name(conn, name)
                if experiment_id(conn, name) is not None:
                    return False
                ensure_experiment(conn, name, description)
                grant(conn, name, role="admin", user=user, granted_by=user)
                return True

        return self._run(create)

    def schema_version(self) -> int:
        """The database's schema version (0: not set up)."""
        from labledger.store.postgres.migrations import current_version

        return self._run(current_version)
