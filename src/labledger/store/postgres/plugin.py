"""The built-in plugin serving PostgreSQL stores: ``postgresql://`` and ``postgres://`` URIs.

Registered like any plugin (see :data:`labledger.hooks.manager.DEFAULT_PLUGINS`), ``trylast`` so
another plugin may serve these URIs instead. One
:class:`~labledger.store.postgres.store.PostgresStore` is opened per connection string in a
process, as the SQLite store is per folder. psycopg is imported on first use of the store.

>>> import labledger as ll
>>> run = ll.start_run("digits", store="postgresql://labledger@db.example.com/ledger")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labledger.hooks.manager import hookimpl
from labledger.store.opened import OpenedStores
from labledger.store.postgres.connection import is_postgres

if TYPE_CHECKING:
    from labledger.store.postgres.store import PostgresStore

__all__ = ["close_stores", "labledger_open_store", "open_postgres", "open_stores"]

_opened: OpenedStores[PostgresStore] = OpenedStores()


def open_postgres(dsn: str) -> PostgresStore:
    """The store of database ``dsn``, opened once per process (nothing is contacted here).

    >>> open_postgres("postgresql://labledger@db.example.com/ledger")  # doctest: +SKIP
    <labledger PostgresStore postgresql://labledger@db.example.com/ledger>
    """
    from labledger.store.postgres.store import PostgresStore

    return _opened.get(dsn, lambda: PostgresStore(dsn))


def open_stores() -> list[PostgresStore]:
    """The PostgreSQL stores this process has opened so far."""
    return _opened.all()


def close_stores() -> None:
    """Close the PostgreSQL stores this process opened and forget them (the next open makes new ones).

    >>> close_stores()
    """
    _opened.close_all()


@hookimpl(trylast=True)
def labledger_open_store(uri: str) -> PostgresStore | None:
    return open_postgres(uri) if is_postgres(uri) else None
