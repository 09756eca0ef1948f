"""Where runs are kept: the embedded SQLite store and its content-addressed artifacts."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from labledger.store.sqlite import Store

__all__ = ["Store", "default_store_path", "open_store"]

_open: dict[Path, Store] = {}
_lock = threading.Lock()


def default_store_path() -> Path:
    """``$LABLEDGER_STORE`` when set (and not empty), else ``./.labledger``."""
    env = os.environ.get("LABLEDGER_STORE", "").strip()
    return Path(env) if env else Path.cwd() / ".labledger"


def open_store(path: str | os.PathLike[str] | Store | None = None) -> Store:
    """Open (creating when needed) the store at ``path``; one instance per folder per process.

    >>> store = open_store("/tmp/ledger")          # doctest: +SKIP
    """
    if isinstance(path, Store):
        return path
    resolved = Path(path if path is not None else default_store_path()).expanduser().resolve()
    with _lock:
        store = _open.get(resolved)
        if store is None:
            store = _open[resolved] = Store(resolved)
        return store
