"""The built-in plugin serving labledger servers as stores: ``https://`` (and ``http://`` on loopback) URIs.

Registered like any plugin (see :data:`labledger.hooks.manager.DEFAULT_PLUGINS`), ``trylast`` so
another plugin may serve these URIs instead. One
:class:`~labledger.store.remote.client.RemoteStore` is opened per server URL in a process.

>>> import labledger as ll
>>> run = ll.start_run("digits", store="https://ledger.example.com:8443")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labledger.hooks.manager import hookimpl
from labledger.store.opened import OpenedStores

if TYPE_CHECKING:
    from labledger.store.remote.client import RemoteStore

__all__ = ["close_stores", "labledger_open_store", "open_remote", "open_stores"]

_opened: OpenedStores[RemoteStore] = OpenedStores()


def open_remote(url: str) -> RemoteStore:
    """The store of server ``url``, opened once per process (nothing is contacted here).

    >>> open_remote("https://ledger.example.com:8443")  # doctest: +SKIP
    <labledger RemoteStore https://ledger.example.com:8443>
    """
    from labledger.store.remote.client import RemoteStore
    from labledger.store.remote.transport import Transport

    return _opened.get(Transport(url).url, lambda: RemoteStore(url))


def open_stores() -> list[RemoteStore]:
    """The server stores this process has opened so far."""
    return _opened.all()


def close_stores() -> None:
    """Close and forget the server stores this process opened (the next open makes new ones)."""
    _opened.close_all()


@hookimpl(trylast=True)
def labledger_open_store(uri: str) -> RemoteStore | None:
    served = isinstance(uri, str) and uri[:8].lower().startswith(("http://", "https://"))
    return open_remote(uri) if served else None
