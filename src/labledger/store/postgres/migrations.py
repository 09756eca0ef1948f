"""Bringing a PostgreSQL database to the schema this labledger knows.

:func:`upgrade` applies the pending migrations of :mod:`labledger.store.postgres.schema`,
each in its own transaction together with its ``schema_version`` row, so a database
is always at a version the code knows. Every transaction first takes a transaction-scoped
advisory lock (:data:`LOCK_KEY`): servers starting at once migrate one after the other,
and the later ones find the work done. A database newer than this labledger is refused
with :class:`~labledger.store.postgres.errors.DatabaseVersionError`.

>>> from labledger.store.postgres import connect, upgrade
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     upgrade(conn)
(0, 1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labledger.errors import StoreError
from labledger.store.postgres.connection import describe, one_line
from labledger.store.postgres.errors import DatabaseVersionError
from labledger.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION, TABLES, VERSION_TABLE

if TYPE_CHECKING:
    import psycopg

__all__ = ["LOCK_KEY", "current_version", "upgrade"]

#: The advisory lock serialising migrations (per database): the first 8 bytes of
#: SHA-256("labledger schema migrations") as a signed 64-bit integer.
LOCK_KEY = 5215540924473642165


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The database's schema version: 0 when labledger never upgraded it.

    >>> current_version(conn)  # doctest: +SKIP
    1
    """
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", ("schema_version",)).fetchone()
    if not found or not found[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def _foreign_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """labledger's table names already taken in the current schema of a version-0 database."""
    rows = conn.execute(
        "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "
        "AND tablename = ANY(%s) ORDER BY tablename",
        (list(TABLES),),
    ).fetchall()
    return [r[0] for r in rows]


def upgrade(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Apply the pending migrations, one transaction each; return ``(from, to)`` versions.

    Idempotent: a database at :data:`~labledger.store.postgres.schema.SCHEMA_VERSION`
    is left as it is (``from == to``). Safe when several processes call it at once.
    Call it with no transaction open on ``conn``. Raises
    :class:`~labledger.store.postgres.errors.DatabaseVersionError` for a database a newer
    labledger upgraded, and :class:`~labledger.errors.StoreError` when a migration
    fails (nothing of that migration is kept).

    >>> from labledger.store.postgres import connect
    >>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
    ...     upgrade(conn), upgrade(conn)
    ((0, 1), (1, 1))
    """
    import psycopg

    import labledger

    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError(
            "upgrade() commits each migration in its own transaction: call it with no transaction "
            "open on the connection (commit or roll back first)"
        )
    where = describe(conn)
    start: int | None = None
    while True:
        target = None
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                version = current_version(conn)
                start = version if start is None else start
                if version > SCHEMA_VERSION:
                    raise DatabaseVersionError(where, version, SCHEMA_VERSION)
                if version == SCHEMA_VERSION:
                    return start, version
                if version == 0 and (taken := _foreign_tables(conn)):
                    raise StoreError(
                        where,
                        f"the database already holds tables labledger would create ({', '.join(taken)}) "
                        "but no labledger schema version: give labledger a database (or schema) of its own.",
                    )
                target = version + 1
                conn.execute(VERSION_TABLE)
                conn.execute(MIGRATIONS[version])
                conn.execute(
                    "INSERT INTO schema_version (version, labledger) VALUES (%s, %s)",
                    (target, labledger.__version__),
                )
        except psycopg.Error as e:
            if target is None:
                raise StoreError(where, f"cannot read the schema version: {one_line(e)}") from e
            raise StoreError(
                where, f"upgrading to schema version {target} failed, nothing of it was kept: {one_line(e)}"
            ) from e
