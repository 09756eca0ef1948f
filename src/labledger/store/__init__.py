"""Where runs are kept: whichever plugin serves the store's location; built in, the embedded
SQLite store and its content-addressed artifacts. Every store implements
:class:`~labledger.store.backend.Backend`, the only way the rest of labledger reads and writes.

>>> from labledger.store import open_store
>>> open_store("/tmp/ledger")                       # doctest: +SKIP
<labledger Store /tmp/ledger>
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TypeVar, overload

from labledger import settings
from labledger.errors import StorePluginDisabledError, StoreURIError
from labledger.hooks.bypass import only_builtin_plugins
from labledger.store.backend import Backend
from labledger.store.blobs import BlobStore
from labledger.store.location import local_folder, scheme
from labledger.store.sqlite import Store

__all__ = [
    "SQLITE_PLUGIN",
    "Backend",
    "Store",
    "default_store_path",
    "open_local",
    "open_store",
    "open_stores",
]

#: The built-in plugin serving folders (and ``file:`` URIs) with the SQLite store.
SQLITE_PLUGIN = "labledger.store.sink"

#: The built-in plugin's stores, one per folder in a process.
_open: dict[Path, Store] = {}
_lock = threading.Lock()


def default_store_path() -> Path:
    """``$LABLEDGER_STORE`` when set (and not empty), else ``./.labledger``."""
    env = settings.store()
    return Path(env) if env else Path.cwd() / ".labledger"


_B = TypeVar("_B", bound=Backend)


@overload
def open_store(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> Store: ...
@overload
def open_store(path: _B, *, create: bool = True) -> _B: ...
def open_store(path: str | os.PathLike[str] | Backend | None = None, *, create: bool = True) -> Backend:
    """Open the store at ``path`` (a folder or a URI): the plugin answering
    ``labledger_open_store`` serves it (built in: SQLite, one instance per folder per process).

    :param path: a folder, a ``file:`` URI or a URI a plugin serves (``postgresql://...``);
        default ``$LABLEDGER_STORE`` or ``./.labledger``. A store object is returned as it is.
    :param create: create the store when it does not exist yet. Readers pass
        ``False``: reading never creates, changes or waits for a store (a missing
        store reads as empty). An existing store is upgraded by its first writer.
    :returns: a :class:`~labledger.store.backend.Backend` (built in: :class:`Store`).
    :raises StoreURIError: no plugin serves the URI's scheme.
    :raises StorePluginDisabledError: the built-in store is disabled and no plugin serves the folder.

    >>> store = open_store("/tmp/ledger")          # doctest: +SKIP
    >>> open_store("/tmp/elsewhere", create=False).run_ids()  # doctest: +SKIP
    []
    """
    if path is not None and not isinstance(path, str | os.PathLike):
        return path  # already a store
    location = os.fspath(path) if path is not None else settings.store() or os.fspath(default_store_path())
    folder = local_folder(location) if only_builtin_plugins() else None
    store: Backend | None
    if folder is not None:  # the built-in plugin's answer, without building the plugin manager
        store = open_local(folder)
    else:
        from labledger.hooks import manager as plugins

        store = plugins.get_plugin_manager().hook.labledger_open_store(uri=location)
    if store is None:
        raise _unserved(location)
    if create:
        store.create()
    return store


def _unserved(location: str) -> Exception:
    from labledger.hooks import manager as plugins

    pm = plugins.get_plugin_manager()
    if local_folder(location) is not None and not pm.has_plugin(SQLITE_PLUGIN):
        return StorePluginDisabledError(SQLITE_PLUGIN, location)
    return StoreURIError(location, scheme(location) or "path")


def open_local(folder: Path) -> Store:
    """The SQLite store in ``folder`` (absolute), opened once per process; its artifact bytes
    go where the plugin answering ``labledger_artifact_store`` keeps them.

    The built-in plugin's answer to ``labledger_open_store`` for folders and ``file:`` URIs.
    """
    with _lock:
        store = _open.get(folder)
    if store is not None:
        return store
    if only_builtin_plugins():  # the built-in plugin's answer (labledger.store.sink)
        blobs: BlobStore | None = BlobStore(folder / "artifacts")
    else:
        from labledger.hooks import manager as plugins

        blobs = plugins.get_plugin_manager().hook.labledger_artifact_store(uri=folder.as_uri())
    if blobs is None:
        raise StoreURIError(folder.as_uri(), "file", "labledger_artifact_store", "artifact store")
    opened = Store(folder, blobs=blobs)
    with _lock:
        return _open.setdefault(folder, opened)


def open_stores() -> list[Store]:
    """The SQLite stores this process has opened so far.

    >>> [str(s.path) for s in open_stores()]  # doctest: +SKIP
    ['/home/me/project/.labledger']
    """
    with _lock:
        return list(_open.values())
