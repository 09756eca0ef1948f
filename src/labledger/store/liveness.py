"""Telling crashed runs from running ones.

A run records who runs it when it starts: the host, the pid, and the process's
identity — its start time (``/proc/<pid>/stat``, field 22), the inode of its
PID namespace and the boot it runs in (``/proc/sys/kernel/random/boot_id``).
A reader on the same host, boot and PID namespace asks whether a process with
that pid *and that start time* still exists, so a reused pid is not mistaken
for the run's process. Everywhere else — another host, another container,
another boot, or a run recorded without an identity — a running run counts as
crashed once its heartbeat is older than ``LABLEDGER_HEARTBEAT_TIMEOUT``
seconds (default 60).

Readers compute this when they read (:func:`crashed` is an SQL function of
their read-only connection) and never write; writers persist it
(:func:`persist_crashed`, called when a run starts).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from functools import lru_cache
from typing import Any

__all__ = ["crashed", "persist_crashed", "pid_alive", "process_identity", "stale_after"]

#: ``/proc`` cannot tell (another platform, or a ``/proc`` of another PID namespace).
_UNKNOWN = -1


def stale_after() -> float:
    """Seconds without a heartbeat after which a run judged by its heartbeat counts as crashed
    (``LABLEDGER_HEARTBEAT_TIMEOUT``, default 60; a bad value reads as the default here)."""
    from labledger import settings

    return settings.heartbeat_timeout(lenient=True)


def _proc_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks after boot; ``None`` when there is no such
    process, :data:`_UNKNOWN` when ``/proc`` cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else _UNKNOWN
    except OSError:
        return _UNKNOWN
    try:  # the command name (field 2) may hold spaces and parentheses: count from the last ')'
        return int(data[data.rindex(b")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return _UNKNOWN


@lru_cache(maxsize=4)
def _identity(pid: int) -> tuple[str, int | None, int | None, str | None]:
    """``(host, start time, PID namespace inode, boot id)`` of this process (``pid`` keys the cache,
    so a forked child computes its own)."""
    host = socket.gethostname()
    start = _proc_start(pid)
    if start is None or start == _UNKNOWN or _proc_pid() != pid:
        return host, None, None, None  # no /proc, or one that shows another PID namespace's numbers
    try:
        ns: int | None = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        ns = None
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot: str | None = f.read().strip() or None
    except OSError:
        boot = None
    return host, start, ns, boot


def _proc_pid() -> int:
    try:
        return int(os.readlink("/proc/self"))
    except (OSError, ValueError):
        return -1


def process_identity() -> dict[str, Any]:
    """This process's identity as recorded with a run: ``pid_start``, ``pid_ns``, ``boot_id``.

    Each is ``None`` where the platform cannot tell (no ``/proc``).

    >>> sorted(process_identity())
    ['boot_id', 'pid_ns', 'pid_start']
    """
    _host, start, ns, boot = _identity(os.getpid())
    return {"pid_start": start, "pid_ns": ns, "boot_id": boot}


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (on this host, in this PID namespace)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def crashed(
    host: str | None,
    pid: int | None,
    heartbeat: float | None,
    pid_start: int | None = None,
    pid_ns: int | None = None,
    boot_id: str | None = None,
    *,
    stale: float | None = None,
) -> bool:
    """Whether a run recorded as ``running`` with these process details has in fact crashed.

    ``stale`` overrides :func:`stale_after` (seconds without a heartbeat).
    """
    me_host, me_start, me_ns, me_boot = _identity(os.getpid())
    pid = int(pid or 0)
    local = pid > 0 and host == me_host and pid_ns == me_ns and boot_id == me_boot
    if local:
        if pid == os.getpid() and pid_start == me_start:
            return False
        if pid_start is not None:
            start = _proc_start(pid)
            if start != _UNKNOWN:
                return start != pid_start  # gone, or the pid now belongs to another process
        return not pid_alive(pid)
    if heartbeat is None:
        return True
    return float(heartbeat) < time.time() - (stale_after() if stale is None else stale)


def _crashed_sql(*args: Any) -> int:
    return int(crashed(*args))


def register(conn: sqlite3.Connection) -> None:
    """Make ``labledger_crashed(host, pid, heartbeat, pid_start, pid_ns, boot_id)`` callable in SQL."""
    conn.create_function("labledger_crashed", 6, _crashed_sql)


def crashed_ids(conn: sqlite3.Connection, stale: float | None = None) -> list[str]:
    """Ids of the runs recorded as ``running`` whose process is gone (read through ``conn``)."""
    cols = {r[1] for r in conn.execute("PRAGMA main.table_info(runs)")}
    extra = [c if c in cols else "NULL" for c in ("pid_start", "pid_ns", "boot_id")]
    rows = conn.execute(
        f"SELECT id, host, pid, heartbeat, {', '.join(extra)} FROM main.runs WHERE status = 'running'"
    ).fetchall()
    return [r[0] for r in rows if crashed(r[1], r[2], r[3], r[4], r[5], r[6], stale=stale)]


def persist_crashed(conn: sqlite3.Connection, stale: float | None = None) -> int:
    """Record as ``crashed`` the running runs whose process is gone; ``conn`` is inside a write.

    Returns how many runs were marked. Cheap: it reads only the runs recorded as running.
    """
    dead = crashed_ids(conn, stale)
    if dead:
        conn.executemany(
            "UPDATE runs SET status = 'crashed', end_time = coalesce(end_time, heartbeat) "
            "WHERE id = ? AND status = 'running'",
            [(d,) for d in dead],
        )
    return len(dead)
