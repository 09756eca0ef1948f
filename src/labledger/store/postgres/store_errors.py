"""How :class:`~labledger.store.postgres.store.PostgresStore` names itself in errors.

The functions it calls name the database as the connection describes it; the store names it by
its connection string without password (:attr:`~labledger.store.postgres.store.PostgresStore.location`),
so that every error of one store carries the same ``path``. A database that labledger never
set up says so, and how to set it up.

>>> renamed(StoreError("postgresql://u@h:5432/db", "cannot read the store: boom"), "postgresql://u@h/db").path
'postgresql://u@h/db'
"""

from __future__ import annotations

import sys

from labledger.errors import StoreError
from labledger.store.postgres.connection import one_line
from labledger.store.postgres.errors import DatabaseConnectionError, DatabaseVersionError

__all__ = ["NO_SCHEMA", "database_error", "read_only", "renamed"]

#: What a database without labledger's tables is told.
NO_SCHEMA = (
    "holds no labledger store yet. Start a run against it (ll.start_run(store=...)) or start "
    "`labledger server` on it to create one"
)
_UNDEFINED_TABLE = "42P01"
_READ_ONLY = ("42501", "25006")  # insufficient_privilege, read_only_sql_transaction


def _sqlstate(error: BaseException | None) -> str | None:
    while error is not None:
        state = getattr(error, "sqlstate", None)
        if state:
            return str(state)
        error = error.__cause__
    return None


def read_only(error: StoreError) -> bool:
    """Whether the database refused a write because this user or transaction may only read."""
    return _sqlstate(error) in _READ_ONLY


def renamed(error: StoreError, location: str) -> StoreError:
    """``error`` naming the store ``location`` (``error`` itself when it does, or is not the database's)."""
    if _sqlstate(error) == _UNDEFINED_TABLE:
        return StoreError(location, NO_SCHEMA)
    if error.path == location:
        return error
    if type(error) is StoreError:
        return StoreError(location, error.problem)
    if isinstance(error, DatabaseVersionError):
        return DatabaseVersionError(location, error.found, error.supported)
    if type(error) is DatabaseConnectionError:
        return DatabaseConnectionError(location, error.problem.removeprefix("cannot connect: "))
    return error


def database_error(error: BaseException, location: str) -> StoreError | None:
    """A psycopg error (a commit, a stream) as a :class:`StoreError` naming ``location``; None for others."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(error, psycopg.Error):
        return None
    if getattr(error, "sqlstate", None) == _UNDEFINED_TABLE:
        return StoreError(location, NO_SCHEMA)
    if type(error) is psycopg.OperationalError:  # the connection broke (not a cancelled statement)
        return DatabaseConnectionError(location, one_line(error))
    return StoreError(location, one_line(error))
