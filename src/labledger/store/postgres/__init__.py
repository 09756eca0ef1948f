"""The PostgreSQL database of a team's labledger server: its schema and its migrations.

The database holds the same records as the embedded SQLite store (metric series in
the same chunk codec), and the server's users, groups, API tokens and experiment
permissions. psycopg 3 (``pip install "labledger[server]"``) is imported only when a
connection is made, never by ``import labledger``.

>>> from labledger.store.postgres import connect, upgrade
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     upgrade(conn)
(0, 1)
"""

from __future__ import annotations

from labledger.store.postgres.connection import connect, is_postgres, redact
from labledger.store.postgres.errors import (
    DatabaseConnectionError,
    DatabaseVersionError,
    PostgresDriverMissingError,
)
from labledger.store.postgres.migrations import current_version, upgrade
from labledger.store.postgres.schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "DatabaseConnectionError",
    "DatabaseVersionError",
    "PostgresDriverMissingError",
    "connect",
    "current_version",
    "is_postgres",
    "redact",
    "upgrade",
]
