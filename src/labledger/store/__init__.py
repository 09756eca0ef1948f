"""Where runs are kept: the embedded SQLite store and its content-addressed artifacts."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from labledger import settings
from labledger.store.sqlite import Store

__all__ = ["Store", "default_store_path", "open_store", "open_stores"]

_open: dict[Path, Store] = {}
_lock = threading.Lock()


def default_store_path() -> Path:
    """``$LABLEDGER_STORE`` when set (and not empty), else ``./.labledger``."""
    env = settings.store()
    return Path(env) if env else Path.cwd() / ".labledger"


def open_store(path: str | os.PathLike[str] | Store | None = None, *, create: bool = True) -> Store:
    """Open the store at ``path``; one instance per folder per process.

    :param create: create the store when it does not exist yet. Readers pass
        ``False``: reading never creates, changes or waits for a store (a missing
        store reads as empty). An existing store is upgraded by its first writer.

    >>> store = open_store("/tmp/ledger")          # doctest: +SKIP
    >>> open_store("/tmp/elsewhere", create=False).query("SELECT count(*) FROM runs")[0][0]  # doctest: +SKIP
    0
    """
    if isinstance(path, Store):
        return path
    resolved = Path(path if path is not None else default_store_path()).expanduser().resolve()
    with _lock:
        store = _open.get(resolved)
        if store is None:
            store = _open[resolved] = Store(resolved)
    if create:
        store.create()
    return store


def open_stores() -> list[Store]:
    """The stores this process has opened so far.

    >>> [str(s.path) for s in open_stores()]  # doctest: +SKIP
    ['/home/me/project/.labledger']
    """
    with _lock:
        return list(_open.values())
