"""The errors of the PostgreSQL store, rooted at :class:`labledger.errors.LabledgerError`.

>>> raise DatabaseVersionError("postgresql://db.example.com/ledger", 3, 1)  # doctest: +SKIP
"""

from __future__ import annotations

from labledger.errors import LabledgerError, StoreError, StoreVersionError

__all__ = ["DatabaseConnectionError", "DatabaseVersionError", "PostgresDriverMissingError"]

#: How to install what the PostgreSQL store needs.
INSTALL_HINT = 'pip install "labledger[server]"'


class PostgresDriverMissingError(LabledgerError, ImportError):
    """psycopg 3, which the PostgreSQL store talks through, is not installed."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(
            f"PostgreSQL databases need psycopg 3, which cannot be imported ({problem}). "
            f"Install the server extra: {INSTALL_HINT}"
        )


class DatabaseConnectionError(StoreError):
    """The PostgreSQL server cannot be reached, or refused the connection.

    ``path`` is the database (without its password), ``problem`` the server's or the
    driver's answer on one line.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, f"cannot connect: {problem}")


class DatabaseVersionError(StoreVersionError):
    """The database's schema is newer than this labledger knows: a newer release upgraded it.

    ``found`` is the database's version, ``supported`` the newest this labledger knows.
    """

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        StoreError.__init__(
            self,
            path,
            f"schema version {found} is newer than this labledger knows ({supported}): a newer "
            "labledger upgraded the database. Upgrade labledger on this machine "
            '(pip install -U "labledger[server]") to use it; a database is never downgraded.',
        )
