"""Connections to a store's database: read-only ones for readers, and preparing it for writers.

Readers never write and never wait for writers. They open the file with
``mode=ro`` (WAL readers run beside a writer), or, when the WAL's ``-shm``
file cannot be created (a read-only folder), with ``immutable=1`` — or on a
private copy of the database and its WAL when that WAL holds commits, which
``immutable`` would not see. Nothing in the database changes, not even the
journal mode (SQLite may create the empty ``-wal``/``-shm`` companions). What
a reader sees is computed at read time: a ``running`` run whose process is gone
reads as ``crashed`` (a temporary view ``runs``, see :mod:`labledger.store.liveness`),
and a store written by an older release reads with what it lacks shown empty.

A file is checked before anything touches it: a foreign SQLite database is
refused unchanged. Writers create the store (its current schema in one
transaction) or migrate it on their first write in a process, retried like
every write while another process holds the lock; a lock is never damage.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import stat
import tempfile
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

from labledger.errors import StoreError, StoreVersionError
from labledger.store import liveness, schema
from labledger.store.schema import SCHEMA_VERSION

__all__ = ["Reader", "open_reader", "prepare_for_writes", "thread_reader"]

BUSY_TIMEOUT_MS = 5_000
LOCK_RETRY_SECONDS = 300.0
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 5, 6, 8, 14, 26
_rng = random.Random()  # back-off jitter; never the module-level generator a user may have seeded

T = TypeVar("T")


@dataclass
class Reader:
    """A thread's read-only connection and what it was opened on."""

    conn: sqlite3.Connection
    version: int  # schema version of the file; 0 when there is no store yet
    placeholder: bool  # no store yet: an empty in-memory store answers every query
    cookie: int | None  # SQLite's schema cookie when opened on an older schema (re-checked per query)
    immutable: bool = False
    probe: sqlite3.Connection | None = None  # a placeholder's empty database: has it become a store?


def is_lock(e: sqlite3.Error) -> bool:
    """Whether ``e`` means another connection holds a lock (retry), not damage."""
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(e) or "busy" in str(e)


def retry_locked(fn: Callable[[], T], seconds: float = LOCK_RETRY_SECONDS) -> T:
    """Call ``fn`` until it stops failing on a lock (``seconds`` at most)."""
    deadline = time.monotonic() + seconds
    delay = 0.002
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if not is_lock(e) or time.monotonic() > deadline:
                raise
        time.sleep(delay * (1 + _rng.random()))
        delay = min(delay * 2, 0.25)


def _damaged(db_path: Path, e: sqlite3.Error) -> StoreError:
    return StoreError(
        str(db_path),
        f"cannot be read ({e}). The file may be truncated or corrupt; restore it from a backup or "
        "move it away to start a new store (`sqlite3 labledger.db .recover` may rescue what it holds).",
    )


def check_file(db_path: Path) -> bool:
    """Check the file without opening it: ``False`` when there is no store yet (no file, or empty).

    The file is never opened outside SQLite: closing another descriptor of a
    database file drops the locks SQLite's connections in this process hold on it.
    """
    try:
        st = db_path.stat()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise StoreError(str(db_path), f"cannot be read ({e}); check the path and permissions") from e
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(
            str(db_path), "is not a file, so this folder is not a labledger store; move it away."
        )
    return st.st_size > 0


def _unreadable(db_path: Path, e: sqlite3.Error) -> StoreError:
    """The error for a file SQLite cannot read (a lock is never reported as damage)."""
    code = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF
    if code == _SQLITE_NOTADB:
        return StoreError(
            str(db_path),
            f"is not a labledger store ({e}): not an SQLite database, or one damaged beyond reading. "
            "Point LABLEDGER_STORE or store= at a store folder; restore the file from a backup, or "
            "move this file away to start a new store.",
        )
    if is_lock(e):
        return StoreError(str(db_path), f"stayed locked ({e}); try again when the writers are done")
    return _damaged(db_path, e)


def stored_version(conn: sqlite3.Connection, db_path: Path) -> int:
    """The schema version of a labledger database (0: empty), refusing a foreign or newer one."""
    tables = {r[0] for r in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
    tables.discard("sqlite_sequence")
    if not tables:
        return 0
    version = 0
    if "schema_version" in tables:
        version = int(conn.execute("SELECT max(version) FROM main.schema_version").fetchone()[0] or 0)
    if version == 0 and tables - {"schema_version"}:
        shown = ", ".join(sorted(tables)[:6]) + (", ..." if len(tables) > 6 else "")
        raise StoreError(
            str(db_path),
            f"is not a labledger store: it is an SQLite database of something else (tables {shown}). "
            "It was left unchanged. Point LABLEDGER_STORE or store= at a store folder, or move this "
            "file away.",
        )
    if version > SCHEMA_VERSION:
        raise StoreVersionError(str(db_path), version, SCHEMA_VERSION)
    return version


# -- readers ---------------------------------------------------------------


@lru_cache(maxsize=1)
def _template() -> tuple[bytes, dict[str, list[str]]]:
    """An empty store built once per process from the current schema: its image, table -> columns."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(schema.SCHEMA)
    image, columns = conn.serialize(), _columns(conn)
    conn.close()
    return image, columns


def _columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Table -> columns of the database's main schema (one query)."""
    columns: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT m.name, p.name FROM main.sqlite_master m, pragma_table_info(m.name, 'main') p "
        "WHERE m.type = 'table' ORDER BY m.rowid, p.cid"
    ):
        columns.setdefault(table, []).append(column)
    return columns


def _reference_schema() -> dict[str, list[str]]:
    return _template()[1]  # table -> columns of the current schema


def _install_views(conn: sqlite3.Connection, current: bool = True) -> None:
    """Temporary views over the stored tables: computed run status, and what an older schema lacks
    (a store at the current version lacks nothing: only ``runs`` is checked, and no template built)."""
    liveness.register(conn)
    if current:
        have = reference = {"runs": [r[1] for r in conn.execute("PRAGMA main.table_info(runs)")]}
    else:
        have, reference = _columns(conn), _reference_schema()
        for table, columns in reference.items():
            stored = set(have.get(table, ()))
            if table == "runs":
                continue
            if not stored:
                nulls = ", ".join(f"NULL AS {c}" for c in columns)
                conn.execute(f"CREATE TEMP VIEW {table} AS SELECT {nulls} WHERE 0")
            elif stored != set(columns):
                cols = ", ".join(c if c in stored else f"NULL AS {c}" for c in columns)
                conn.execute(f"CREATE TEMP VIEW {table} AS SELECT {cols} FROM main.{table}")
    stored = set(have.get("runs", ()))

    def col(c: str) -> str:
        return c if c in stored else "NULL"

    dead = (
        f"status = 'running' AND labledger_crashed(host, pid, heartbeat, {col('pid_start')}, "
        f"{col('pid_ns')}, {col('boot_id')})"
    )
    computed = {
        "status": f"CASE WHEN {dead} THEN 'crashed' ELSE status END",
        "end_time": f"CASE WHEN {dead} THEN coalesce(end_time, heartbeat) ELSE end_time END",
    }
    select = [f"{computed.get(c, col(c))} AS {c}" for c in reference["runs"]]
    conn.execute(f"CREATE TEMP VIEW runs AS SELECT {', '.join(select)} FROM main.runs")


def _uri(db_path: Path, flag: str) -> str:
    return f"file:{urllib.parse.quote(str(db_path))}?{flag}"


class _Empty(sqlite3.Connection):
    """An empty store in memory, copied from the template on the first query (execute() comes too)."""

    _built = False

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        if not self._built:
            self._built = True
            self.deserialize(_template()[0])
            _install_views(self)
        return super().cursor(*args, **kwargs)


def _placeholder(probe: sqlite3.Connection | None = None) -> Reader:
    """A stand-in for a store not created yet: every query reads an empty store."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False, factory=_Empty)
    return Reader(conn, 0, True, None, probe=probe)


def open_reader(db_path: Path) -> Reader:
    """A read-only connection to the store's database (an empty stand-in when there is none yet);
    changes nothing on disk. Raises :class:`StoreError` for a foreign, damaged or unreadable file and
    :class:`StoreVersionError` for a store from a newer release."""
    if not check_file(db_path):
        return _placeholder()
    try:
        return _open_reader(_uri(db_path, "mode=ro"), db_path)
    except sqlite3.DatabaseError as e:
        code = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF
        if code not in (_SQLITE_CANTOPEN, _SQLITE_READONLY):
            raise _unreadable(db_path, e) from e
    # The WAL's -shm file cannot be created here (a read-only folder): read the file as it is,
    # or, when its WAL holds commits, a private snapshot of both (immutable would miss them).
    wal = db_path.with_name(db_path.name + "-wal")
    try:
        if not wal.exists() or wal.stat().st_size == 0:
            return _open_reader(_uri(db_path, "immutable=1"), db_path, immutable=True)
        return _snapshot_reader(db_path, wal)
    except sqlite3.DatabaseError as e:
        raise _unreadable(db_path, e) from e


def _open_reader(uri: str, db_path: Path, immutable: bool = False) -> Reader:
    """Open ``uri`` read-only and check it (SQLite errors propagate; store errors are raised)."""
    conn = sqlite3.connect(
        uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        version = retry_locked(partial(stored_version, conn, db_path), 30.0)
        if version == 0:  # an empty database: a store once a writer creates it
            return _placeholder(probe=conn)
        _install_views(conn, version == SCHEMA_VERSION)
        cookie = None
        if version < SCHEMA_VERSION:
            cookie = int(conn.execute("PRAGMA main.schema_version").fetchone()[0])
    except BaseException:
        conn.close()
        raise
    return Reader(conn, version, False, cookie, immutable=immutable)


def _snapshot_reader(db_path: Path, wal: Path) -> Reader:
    """Copy the database and its WAL to a private folder and read the copy."""
    folder = Path(tempfile.mkdtemp(prefix="labledger-read-"))
    try:
        shutil.copyfile(db_path, folder / db_path.name)
        shutil.copyfile(wal, folder / wal.name)
        reader = _open_reader(_uri(folder / db_path.name, "mode=ro"), db_path, immutable=True)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    weakref.finalize(reader, shutil.rmtree, folder, True)
    return reader


def thread_reader(local: threading.local, db_path: Path, generation: int) -> Reader:
    """The thread's :class:`Reader` kept in ``local``, (re)opened after a fork, when the store
    appeared or was upgraded, or when this process created or upgraded it (``generation``)."""
    handle: Reader | None = getattr(local, "reader", None)
    mine = getattr(local, "reader_pid", None) == os.getpid()
    if (
        handle is None
        or not mine
        or local.reader_generation != generation
        or reader_is_stale(handle, db_path)
    ):
        if handle is not None and mine:
            handle.conn.close()
            if handle.probe is not None:
                handle.probe.close()
        local.reader_generation = generation
        handle = local.reader = open_reader(db_path)
        local.reader_pid = os.getpid()
    return handle


def reader_is_stale(reader: Reader, db_path: Path) -> bool:
    """Whether a reader must be reopened: the store appeared, or its schema was upgraded since."""
    if reader.placeholder:  # the store may have been created since (by another process too)
        if reader.probe is None:
            return check_file(db_path)
        try:
            return stored_version(reader.probe, db_path) > 0
        except sqlite3.Error:
            return True
    if reader.cookie is not None:
        try:
            return int(reader.conn.execute("PRAGMA main.schema_version").fetchone()[0]) != reader.cookie
        except sqlite3.Error:
            return True
    return False


# -- writers ---------------------------------------------------------------


def _read_only_store(path: Path, db_path: Path) -> bool:
    if db_path.exists():
        return not os.access(db_path, os.W_OK) or not os.access(path, os.W_OK)
    return path.exists() and not os.access(path, os.W_OK)


def prepare_for_writes(path: Path, db_path: Path) -> bool:
    """Create the store or bring its schema up to date; returns whether anything changed.

    Safe when many processes create one store at the same moment: every step
    is retried while another process holds the lock.
    """
    if _read_only_store(path, db_path):
        raise StoreError(
            str(db_path),
            "cannot be written: the store is read-only. Reading it works; to log runs, fix the "
            "permissions or copy the store to a writable place.",
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(
            str(path), f"cannot create the store folder ({e}); check the path and permissions"
        ) from e
    check_file(db_path)
    try:
        conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as e:
        raise StoreError(str(db_path), f"cannot be opened ({e}); check the path and permissions") from e
    try:
        return retry_locked(lambda: _prepare(conn, db_path))
    except StoreError:
        raise
    except sqlite3.OperationalError as e:
        if is_lock(e):
            raise StoreError(
                str(db_path), f"stayed locked for {LOCK_RETRY_SECONDS:.0f}s while creating it"
            ) from e
        msg = str(e)
        if "readonly" in msg or "read-only" in msg or "disk" in msg or "full" in msg:
            raise StoreError(
                str(db_path), f"cannot be written ({msg}); check free space and permissions"
            ) from e
        raise _unreadable(db_path, e) from e
    except sqlite3.DatabaseError as e:
        raise _unreadable(db_path, e) from e
    finally:
        conn.close()


def _prepare(conn: sqlite3.Connection, db_path: Path) -> bool:
    current = stored_version(conn, db_path) == SCHEMA_VERSION  # checked before changing anything
    wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    if current and wal:
        return False
    conn.execute("PRAGMA synchronous = NORMAL")
    if not current:
        conn.execute("BEGIN IMMEDIATE")
        try:
            schema.upgrade(conn, stored_version(conn, db_path))  # another process may have migrated meanwhile
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    if not wal:  # after the schema: a new store's empty WAL costs no checkpoint when this closes
        conn.execute("PRAGMA journal_mode = WAL")
    return True
