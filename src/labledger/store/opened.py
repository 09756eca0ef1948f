"""The stores a process has opened, one per location: what the store plugins hand out again.

>>> opened: OpenedStores[object] = OpenedStores()
>>> opened.get("a", object) is opened.get("a", object)
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["OpenedStores"]

_S = TypeVar("_S")


class OpenedStores(Generic[_S]):
    """Stores by location key, each opened once per process (thread-safe)."""

    def __init__(self) -> None:
        self._open: dict[str, _S] = {}
        self._lock = threading.Lock()

    def get(self, key: str, open_one: Callable[[], _S]) -> _S:
        """The store of ``key``, made by ``open_one()`` the first time."""
        with self._lock:
            store = self._open.get(key)
            if store is None:
                store = self._open[key] = open_one()
            return store

    def all(self) -> list[_S]:
        """The stores opened so far."""
        with self._lock:
            return list(self._open.values())

    def close_all(self) -> None:
        """Close and forget every store (the next :meth:`get` opens anew)."""
        with self._lock:
            stores = list(self._open.values())
            self._open.clear()
        for store in stores:
            close = getattr(store, "close", None)
            if callable(close):
                close()
