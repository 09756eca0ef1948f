"""The built-in plugin serving labledger servers as stores: ``https://`` (and ``http://`` on loopback) URIs.

Registered like any plugin (see :data:`labledger.hooks.manager.DEFAULT_PLUGINS`), ``trylast`` so
another plugin may serve these URIs instead. One
:class:`~labledger.store.remote.client.RemoteStore` is opened per server URL in a process.

>>> import labledger as ll
>>> run = ll.start_run("digits", store="https://ledger.example.com:8443")  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from labledger.hooks.manager import hookimpl

if TYPE_CHECKING:
    from labledger.store.remote.client import RemoteStore

__all__ = ["close_stores", "labledger_open_store", "open_remote", "open_stores"]

_open: dict[str, RemoteStore] = {}
_lock = threading.Lock()


def open_remote(url: str) -> RemoteStore:
    """The store of server ``url``, opened once per process (nothing is contacted here).

    >>> open_remote("https://ledger.example.com:8443")  # doctest: +SKIP
    <labledger RemoteStore https://ledger.example.com:8443>
    """
    from labledger.store.remote.client import RemoteStore
    from labledger.store.remote.transport import Transport

    key = Transport(url).url
    with _lock:
        store = _open.get(key)
        if store is None:
            store = _open[key] = RemoteStore(url)
        return store


def open_stores() -> list[RemoteStore]:
    """The server stores this process has opened so far."""
    with _lock:
        return list(_open.values())


def close_stores() -> None:
    """Close and forget the server stores this process opened (the next open makes new ones)."""
    with _lock:
        stores = list(_open.values())
        _open.clear()
    for store in stores:
        store.close()


@hookimpl(trylast=True)
def labledger_open_store(uri: str) -> RemoteStore | None:
    served = isinstance(uri, str) and uri[:8].lower().startswith(("http://", "https://"))
    return open_remote(uri) if served else None
