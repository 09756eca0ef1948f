"""Telling crashed runs from running ones: process liveness on this host, heartbeats elsewhere."""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING

from labledger.errors import StoreError

if TYPE_CHECKING:
    from labledger.store.sqlite import Store


def reap_crashed(store: Store, stale_after: float) -> int:
    """Mark as ``crashed`` the running runs whose process is gone or whose heartbeat is stale.

    A run started on this host whose process no longer exists is crashed at
    once; any other running run is crashed when its heartbeat is older than
    ``stale_after`` seconds. Returns how many runs were marked.
    """
    now = time.time()
    host = socket.gethostname()
    rows = store.query("SELECT id, host, pid, heartbeat FROM runs WHERE status = 'running'")
    dead = [
        r["id"]
        for r in rows
        if (not pid_alive(int(r["pid"] or 0)) if r["host"] == host else r["heartbeat"] < now - stale_after)
    ]
    if not dead:
        return 0
    try:
        with store.write() as conn:
            conn.executemany(
                "UPDATE runs SET status = 'crashed', end_time = coalesce(end_time, heartbeat) "
                "WHERE id = ? AND status = 'running'",
                [(d,) for d in dead],
            )
    except StoreError:
        return 0  # a full or read-only disk: reading must still work; they are marked next time
    return len(dead)


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
