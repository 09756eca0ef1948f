"""Sending spooled records to the server: the background sender thread and the replay of a folder.

The sender is a daemon thread per :class:`~labledger.store.remote.client.RemoteStore` in a
process. It sends the process's own spool in order (and the folders of processes that are
gone) while the server takes them, waits with jittered back-off while it cannot be reached,
and once the spool is empty lets the store write to the server directly again. A record the
server refuses for good (4xx but 401/403) is moved to the folder's ``rejected/`` with a warning;
every other record is sent exactly in order, and sending one twice stores it once (the server's
writes are idempotent).

>>> sent, rejected = replay(store, folder)  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError, StoreError
from labledger.hooks.reporting import LabledgerWarning
from labledger.store.objects.errors import ObjectStoreError
from labledger.store.remote.errors import RemoteError, ServerUnreachableError, TokenRefusedError
from labledger.store.remote.spool import SpoolFolder
from labledger.store.remote.transport import backoff

if TYPE_CHECKING:
    from labledger.store.remote.client import RemoteStore

__all__ = ["Blocked", "RemoteWarning", "Sender", "deliver", "replay", "warn"]

#: Seconds the idle sender sleeps between looks at the spool (it is woken by every spooled record).
IDLE_SECONDS = 5.0


class RemoteWarning(LabledgerWarning):
    """Records for a labledger server wait on disk or in memory, or were refused by it."""


def warn(message: str) -> None:
    """Warn (or print to standard error when warnings are errors: never break the caller)."""
    try:
        warnings.warn(message, RemoteWarning, stacklevel=3)
    except Warning:
        print(f"labledger: {message}", file=sys.stderr)


class Blocked(Exception):
    """The server cannot take records now (unreachable, 5xx, token or permission refused)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        super().__init__(str(error))


def _blocking(error: BaseException) -> bool:
    if isinstance(error, ServerUnreachableError | TokenRefusedError | ObjectStoreError):
        return True
    return isinstance(error, RemoteError) and error.status == 403


def deliver(store: RemoteStore, meta: dict[str, Any], body: bytes) -> None:
    """Send one record to the store's server now: a write call, or cached artifact bytes
    (uploaded unless the server has them).

    :raises ServerUnreachableError: the server cannot take it now.
    :raises LabledgerError: the server refused it (the error its answer names), or the cached
        bytes of an upload are gone.
    """
    from labledger.store.remote import wire

    kind = meta.get("kind")
    if kind == "object":
        from labledger.store.objects.errors import ObjectMissingError

        sha, cached = str(meta["sha"]), Path(str(meta["path"]))
        if not cached.is_file():
            raise ObjectMissingError(sha, str(cached))
        objects = store.objects()
        if not objects.exists(sha):
            objects.put_file(cached)
        return
    if kind != "call":
        raise StoreError(store.url, f"a spooled record of unknown kind {kind!r}")
    method = str(meta["method"])
    content = wire.BATCH_TYPE if method == "write_metrics" else "application/json"
    store.transport.call("POST", f"/api/v1/write/{method}", body, content, write=True)


def replay(store: RemoteStore, folder: SpoolFolder) -> tuple[int, int]:
    """Send a folder's records in order; returns ``(sent, rejected)``.

    :raises Blocked: the server cannot take them now (the records not sent stay in the folder).
    """
    sent = rejected = 0
    for record in folder.records():
        try:
            store.deliver(record.meta, record.body)
        except (LabledgerError, StoreError) as e:
            if _blocking(e):
                raise Blocked(e) from e
            where = folder.reject(record)
            rejected += 1
            warn(
                f"the labledger server {store.url} refused a spooled record "
                f"({record.meta.get('method', record.meta.get('kind'))}) for good: {e}. "
                f"It is kept in {where}; the records after it were sent."
            )
            continue
        folder.remove(record)
        sent += 1
    return sent, rejected


class Sender:
    """The daemon thread sending a store's spool (see the module's documentation)."""

    def __init__(self, store: RemoteStore) -> None:
        self.store = store
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.failures = 0
        self.last_error: BaseException | None = None

    def start(self) -> None:
        """Start the thread unless it runs (again in a forked child)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="labledger-remote-sender", daemon=True
                )
                self._thread.start()

    def wake(self, urgent: bool = False) -> None:
        """Look at the spool now (``urgent``: try the server now even while it was unreachable)."""
        self._wake.set()
        if urgent:
            self._urgent.set()

    def reset_after_fork(self) -> None:
        self._thread = None
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._lock = threading.Lock()

    def _loop(self) -> None:
        from labledger.tracking import lifecycle

        lifecycle.mark_background()
        while True:
            try:
                busy = self.store.send_round()
                self.failures = 0
                self.last_error = None
            except Blocked as e:
                self.failures += 1
                self.last_error = e.error
                self._urgent.wait(backoff(self.failures, cap=5.0))
                self._urgent.clear()
                continue
            except Exception as e:  # keep the sender alive whatever happens
                self.failures += 1
                self.last_error = e
                if self.failures == 1:
                    print(f"labledger: the sender of {self.store.url} failed: {e!r}", file=sys.stderr)
                self._wait(backoff(self.failures))
                continue
            if not busy:
                self._wait(IDLE_SECONDS)

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()
