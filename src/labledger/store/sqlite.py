"""The embedded store: one SQLite file (WAL) plus content-addressed artifacts.

Layout of a store folder::

    <store>/labledger.db        runs, params, metrics (chunked), tags, ...
    <store>/artifacts/ab/cdef…  artifact bytes by SHA-256

The logging path speaks to SQLite through the standard ``sqlite3`` module
(sqlite-utils, offered by :meth:`Store.db` for inspection, imports pandas).
Every write is one ``BEGIN IMMEDIATE`` transaction, retried while another
process holds the write lock, so a batch is either all there or not at all.
Connections are per thread and per process (a forked child opens its own).
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.errors import StoreBusyError, StoreError
from labledger.store.blobs import BlobStore
from labledger.store.reads import ReadsMixin
from labledger.store.selection import SelectionMixin
from labledger.store.writes import WritesMixin, dumps

if TYPE_CHECKING:
    import sqlite_utils

    from labledger.store.backend import Backend


__all__ = ["DB_FILENAME", "Store", "dumps"]

DB_FILENAME = "labledger.db"
BUSY_TIMEOUT_MS = 5_000
LOCK_RETRY_SECONDS = 300.0
WRITER_BUSY_TIMEOUT_MS = 250


#: The lock-retry back-off's jitter: a generator of its own, never the user's ``random`` stream.
_jitter = random.Random()


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open (SQLite may already have rolled back after an I/O error)."""
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class Store(WritesMixin, ReadsMixin, SelectionMixin):
    """A labledger store in a folder. Open with :func:`labledger.store.open_store`.

    The built-in :class:`~labledger.store.backend.Backend`: SQLite in WAL mode.

    :param blobs: where artifact bytes go (default: ``<path>/artifacts``).
    """

    def __init__(self, path: str | os.PathLike[str], blobs: BlobStore | None = None) -> None:
        self.path = Path(path).expanduser().resolve()
        self.db_path = self.path / DB_FILENAME
        self.blobs = blobs if blobs is not None else BlobStore(self.path / "artifacts")
        self._local = threading.local()
        self._key_ids: dict[str, int] = {}
        self._key_lock = threading.Lock()
        self._setup_lock = threading.Lock()
        self._ready_pid: int | None = None  # the process that has made the store ready for writes
        self._generation = 0  # bumped when this process creates or upgrades the store: readers reopen
        self._persisted_at = -math.inf
        self._package_json: tuple[str, str] | None = None
        self._open_checked()

    def __repr__(self) -> str:
        return f"<labledger Store {self.path}>"

    @property
    def uri(self) -> str:
        """The store's location as a URI (``file:///...`` for a store folder)."""
        return self.path.as_uri()

    @property
    def location(self) -> str:
        """What error messages name as the store: its database file."""
        return str(self.db_path)

    # -- connections -----------------------------------------------------

    def _open_checked(self) -> None:
        """Check the store without changing anything (a missing store is not created here)."""
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(
                str(self.path),
                "is a file, not a store folder. Point LABLEDGER_STORE or store= at a folder "
                "(it is created when missing), or move this file away.",
            )
        self._reader  # noqa: B018 - opens this thread's read-only connection: refuses foreign or damaged files

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's write connection (opened on first use, reopened after fork).

        The first one in a process creates the store, or upgrades its schema, when needed.
        """
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            self._prepare_for_writes()
            local.conn = self._connect()
            local.pid = os.getpid()
        conn: sqlite3.Connection = local.conn
        return conn

    def create(self) -> None:
        """Create the store when it does not exist yet (an existing one is left as it is)."""
        from labledger.store.connections import check_file

        if self._ready_pid != os.getpid() and not check_file(self.db_path):
            self._prepare_for_writes()

    def _prepare_for_writes(self) -> None:
        from labledger.store.connections import prepare_for_writes

        with self._setup_lock:
            if self._ready_pid == os.getpid():
                return
            prepare_for_writes(self.path, self.db_path)
            self._generation += 1  # readers opened before may stand in for a store that now exists
            self._ready_pid = os.getpid()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.db_path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @property
    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection: it never writes and never waits for a writer.

        Runs whose process is gone read as ``crashed`` through it; a store that does
        not exist yet reads as empty (opening it for reading does not create it).
        """
        from labledger.store.connections import thread_reader

        handle = thread_reader(self._local, self.db_path, self._generation)
        conn: sqlite3.Connection = handle.conn
        return conn

    def db(self) -> sqlite_utils.Database:
        """This thread's connection as a ``sqlite_utils.Database``, for ad-hoc inspection.

        labledger's own writes use the ``sqlite3`` module directly: importing
        sqlite-utils also imports pandas and NumPy, which the logging path avoids.

        >>> store.db().table_names()  # doctest: +SKIP
        """
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Group this thread's writes into one transaction (bulk recording, e.g. a search's candidates).

        Writes inside join it (each as a savepoint, so a refused write undoes only
        itself); the background writer pauses meanwhile so it never waits on this
        thread's lock.

        >>> with store.transaction():            # doctest: +SKIP
        ...     for params in candidates:
        ...         ll.start_run("exp", parent=search_run).end()
        """
        from labledger.tracking import lifecycle as _lifecycle

        with _lifecycle.writer_paused(), self.write() as conn:
            self._local.bulk_depth = getattr(self._local, "bulk_depth", 0) + 1
            try:
                yield conn
            finally:
                self._local.bulk_depth -= 1

    def in_transaction(self) -> bool:
        """Whether this thread holds a bulk transaction (:meth:`transaction`) on the store."""
        local = self._local
        return bool(getattr(local, "bulk_depth", 0)) and getattr(local, "pid", None) == os.getpid()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, retried while another writer holds the lock.

        Whatever leaves the block — an error, a refused write, ``KeyboardInterrupt``
        or ``SystemExit`` from a signal, even one raised right after ``BEGIN`` —
        rolls the transaction back, so the connection is never left inside one.
        Caches (metric key ids) learn what the transaction created only after it commits.
        """
        local = self._local
        if getattr(local, "bulk_depth", 0) and getattr(local, "pid", None) == os.getpid():
            yield from self._savepoint()
            return
        conn = self.conn
        committed = False
        try:
            if conn.in_transaction:  # left open by a write a signal interrupted between two steps
                _rollback(conn)
            self._begin(conn)
            yield conn
            conn.execute("COMMIT")
            committed = True
        except sqlite3.IntegrityError:  # a constraint or trigger refused the write: the caller's to handle
            _rollback(conn)
            raise
        except sqlite3.DatabaseError as e:  # disk full, I/O error, read-only, corrupt: name the store
            _rollback(conn)
            raise self._wrap(e) from e
        except BaseException:
            _rollback(conn)
            raise
        finally:
            new_keys = local.__dict__.pop("new_keys", None)
            if committed and new_keys:
                self._key_ids.update(new_keys)

    def _begin(self, conn: sqlite3.Connection) -> None:
        from labledger.tracking import lifecycle as _lifecycle

        if _lifecycle.in_background() and not getattr(self._local, "short_wait", False):
            # background threads wait in short steps, to notice a bulk transaction of their own process
            conn.execute(f"PRAGMA busy_timeout = {WRITER_BUSY_TIMEOUT_MS}")
            self._local.short_wait = True
        deadline = time.monotonic() + LOCK_RETRY_SECONDS
        delay = 0.005
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise self._wrap(e) from e
                if _lifecycle.in_background() and _lifecycle.bulk_open():
                    raise StoreBusyError(
                        str(self.db_path), "a bulk transaction of this process holds the write lock"
                    ) from e
                if time.monotonic() > deadline:
                    raise StoreError(str(self.db_path), f"stayed locked for {LOCK_RETRY_SECONDS:.0f}s") from e
                time.sleep(delay * (1 + _jitter.random()))
                delay = min(delay * 2, 0.5)

    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        name = f"labledger_{self._local.bulk_depth}_{id(conn)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            # key ids created inside the savepoint are gone with it: look them up again
            self._local.__dict__.pop("new_keys", None)
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")

    def _wrap(self, e: sqlite3.Error) -> StoreError:
        msg = str(e)
        if "malformed" in msg or "not a database" in msg:
            return StoreError(
                str(self.db_path),
                f"is damaged ({msg}). Restore it from a backup, or move it away to start a new "
                "store (`sqlite3 labledger.db .recover` may rescue what it holds)",
            )
        if "disk" in msg or "full" in msg or "readonly" in msg or "read-only" in msg:
            return StoreError(
                str(self.db_path), f"cannot be written ({msg}); check free space and permissions"
            )
        return StoreError(str(self.db_path), msg)

    def schema_version(self) -> int:
        """The version recorded in the store (0 when there is no store yet)."""
        self._reader  # noqa: B018 - (re)opens the reader when the store changed
        return int(self._local.reader.version)

    @property
    def read_conn(self) -> sqlite3.Connection:
        """The connection reads go through: this thread's read-only one, which never writes
        and never waits for a writer (runs whose process is gone read as ``crashed``; a
        store that does not exist yet reads as empty). Inside :meth:`transaction` it is the
        thread's write connection, so the transaction sees its own uncommitted rows.

        >>> store.read_conn.execute("SELECT count(*) FROM runs").fetchone()  # doctest: +SKIP
        """
        local = self._local
        if getattr(local, "bulk_depth", 0) and getattr(local, "pid", None) == os.getpid():
            return self.conn
        pinned = getattr(local, "pinned", None)
        if pinned is not None and local.pinned_pid == os.getpid():
            return pinned  # inside a snapshot: the connection holding it
        return self._reader

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Make this thread's reads inside the block see one state of the store (a read transaction,
        unless the thread's connection is already inside one).

        >>> with store.snapshot():                  # doctest: +SKIP
        ...     sizes = store.metric_sizes(run_id)
        ...     chunks = list(store.metric_chunks(run_id))
        """
        local = self._local
        if getattr(local, "pinned", None) is not None and local.pinned_pid == os.getpid():
            yield
            return
        try:
            conn = self.read_conn
            began = not conn.in_transaction
            if began:
                conn.execute("BEGIN")
        except sqlite3.Error as e:
            raise self._wrap(e) from e
        local.pinned, local.pinned_pid = conn, os.getpid()
        try:
            yield
        finally:
            local.pinned = None
            if began and conn.in_transaction:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as e:
                    raise self._wrap(e) from e

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query; rows support access by column name.

        >>> store.query("SELECT id, status FROM runs WHERE status = ?", ("crashed",))  # doctest: +SKIP
        """
        cur = self.read_conn.cursor()
        cur.row_factory = sqlite3.Row
        try:
            return cur.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
            raise self._wrap(e) from e

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of a read query as tuples (errors name the store)."""
        try:
            return self.read_conn.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise self._wrap(e) from e

    def _cursor(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """The rows of a read query as tuples, one at a time (errors name the store)."""
        try:
            yield from self.read_conn.execute(sql, params)
        except sqlite3.Error as e:
            raise self._wrap(e) from e


if TYPE_CHECKING:

    def _implements_backend(store: Store) -> Backend:
        return store  # the type checker holds Store to the Backend protocol
