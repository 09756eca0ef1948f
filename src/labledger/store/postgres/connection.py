"""Connecting to PostgreSQL through psycopg 3, imported only when a connection is made.

>>> conn = connect("postgresql://labledger@db.example.com/ledger")  # doctest: +SKIP
>>> redact("postgresql://alice:secret@db.example.com/ledger")
'postgresql://alice:***@db.example.com/ledger'
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from labledger.store.location import scheme
from labledger.store.postgres.errors import DatabaseConnectionError, PostgresDriverMissingError

if TYPE_CHECKING:
    import psycopg

__all__ = ["SCHEMES", "connect", "describe", "is_postgres", "one_line", "redact"]

#: The URI schemes of PostgreSQL connection strings.
SCHEMES = ("postgresql", "postgres")
#: Seconds to wait for the server when the connection string does not say.
CONNECT_TIMEOUT = 10

_URI_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@/]*@")
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def is_postgres(location: str) -> bool:
    """Whether ``location`` is a PostgreSQL connection URI (``postgresql://`` or ``postgres://``)."""
    return scheme(location) in SCHEMES


def redact(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***``, fit for messages and logs."""
    return _KEYWORD_PASSWORD.sub(r"\1***", _URI_PASSWORD.sub(r"\1:***@", dsn))


def one_line(error: BaseException) -> str:
    """An error's message on one line (the server's and libpq's run over several)."""
    return " ".join(str(error).split()) or type(error).__name__


def describe(conn: psycopg.Connection[Any]) -> str:
    """The database a connection is on, as a URI without password: ``postgresql://user@host:port/db``."""
    info = conn.info
    if info.host.startswith("/"):  # a Unix socket's folder
        return f"postgresql://{info.user}@:{info.port}/{info.dbname}?host={info.host}"
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as e:
        raise PostgresDriverMissingError(str(e)) from e
    return psycopg


def connect(dsn: str, *, autocommit: bool = True, **options: Any) -> psycopg.Connection[Any]:
    """Open a connection to the PostgreSQL database ``dsn`` (a URI or ``key=value`` string).

    The connection is in autocommit mode unless asked otherwise: labledger opens its
    transactions explicitly (``with conn.transaction():``). ``options`` go to
    :func:`psycopg.connect`. Raises :class:`PostgresDriverMissingError` without psycopg and
    :class:`DatabaseConnectionError` (one line, no password) when the server cannot be reached.

    >>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
    ...     conn.execute("SELECT 1").fetchone()
    (1,)
    """
    pg = _psycopg()
    try:
        given = pg.conninfo.conninfo_to_dict(dsn)
        if "connect_timeout" not in given:
            options.setdefault("connect_timeout", CONNECT_TIMEOUT)
        options.setdefault("application_name", "labledger")
        conn: psycopg.Connection[Any] = pg.connect(dsn, autocommit=autocommit, **options)
    except pg.Error as e:
        raise DatabaseConnectionError(redact(dsn), one_line(e)) from e
    return conn
