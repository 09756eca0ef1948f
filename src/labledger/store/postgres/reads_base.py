"""What the PostgreSQL reads share: running a read and shaping its rows as the SQLite store does.

Times are ``timestamptz`` in PostgreSQL and epoch seconds in every row a read returns:
:func:`epoch` writes the conversion (exact to the microsecond PostgreSQL keeps). Text is
ordered by code point (``COLLATE "C"``), as SQLite orders it, whatever the database's collation.

>>> epoch("r.start_time", "start_time")
'extract(epoch FROM r.start_time)::float8 AS start_time'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labledger.errors import StoreError
from labledger.store.postgres.connection import describe, one_line

if TYPE_CHECKING:
    import psycopg

__all__ = ["dicts", "epoch", "fetch", "first"]


def epoch(column: str, alias: str) -> str:
    """The SQL of ``column`` (a ``timestamptz``) in epoch seconds, named ``alias``.

    >>> epoch("created_at", "created_at")
    'extract(epoch FROM created_at)::float8 AS created_at'
    """
    return f"extract(epoch FROM {column})::float8 AS {alias}"


def _execute(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any]) -> psycopg.Cursor[Any]:
    import psycopg

    try:
        return conn.execute(sql, params)
    except psycopg.Error as e:
        raise StoreError(describe(conn), f"cannot read the store: {one_line(e)}") from e


def fetch(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of a read as tuples; a database error raises :class:`~labledger.errors.StoreError`.

    >>> fetch(conn, "SELECT id FROM runs WHERE status = %s", ("failed",))  # doctest: +SKIP
    [('0123abcd',)]
    """
    return [tuple(r) for r in _execute(conn, sql, params).fetchall()]


def dicts(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The rows of a read as dicts keyed by column name (as :func:`fetch`, otherwise).

    >>> dicts(conn, "SELECT key, value FROM settings WHERE key = %s", ("ui.theme",))  # doctest: +SKIP
    [{'key': 'ui.theme', 'value': 'dark'}]
    """
    cur = _execute(conn, sql, params)
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def first(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    """The first row of a read, or None.

    >>> first(conn, "SELECT value FROM settings WHERE key = %s", ("ui.theme",))  # doctest: +SKIP
    ('dark',)
    """
    row = _execute(conn, sql, params).fetchone()
    return None if row is None else tuple(row)
