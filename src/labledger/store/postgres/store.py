"""The PostgreSQL store: a :class:`~labledger.store.backend.Backend` over a team's database.

Open it as any store, by its URI (``ll.start_run(store="postgresql://...")``,
``LABLEDGER_STORE=postgresql://...``, ``labledger runs --store postgresql://...``); the built-in
plugin :mod:`labledger.store.postgres.plugin` serves ``postgresql://`` and ``postgres://``. Every
method runs the function of :mod:`~labledger.store.postgres.writes` or
:mod:`~labledger.store.postgres.reads` of the same name on a pooled connection
(:mod:`~labledger.store.postgres.store_connections`). Artifact bytes go to an object store
(:mod:`labledger.store.objects.cached`), cached under :attr:`PostgresStore.path`.

>>> store = PostgresStore("postgresql://labledger@db.example.com/ledger", artifacts="s3://ledger/artifacts")
>>> store.create()  # doctest: +SKIP
>>> store.uri
'postgresql://labledger@db.example.com/ledger'
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from labledger import settings
from labledger.errors import StoreBusyError, StoreError
from labledger.store.postgres import reads, selection, writes
from labledger.store.postgres.metrics import write_batch
from labledger.store.postgres.reads_base import fetch
from labledger.store.postgres.store_connections import POOL_SIZE, Connections
from labledger.store.postgres.store_errors import database_error, read_only, renamed
from labledger.store.postgres.store_reads import RecordReads

if TYPE_CHECKING:
    import psycopg

    from labledger.query.filter_syntax import Field
    from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord
    from labledger.store.backend import Backend, RunSelection
    from labledger.store.blobs import BlobStore
    from labledger.store.objects.base import ObjectStore

__all__ = ["ARTIFACTS_SETTING", "PostgresStore", "cache_folder"]

#: The store-wide setting naming where artifact bytes go (``labledger server --artifacts`` sets it).
ARTIFACTS_SETTING = "server.artifacts"
_T = TypeVar("_T")
_RUNNING = (
    "SELECT host, pid, extract(epoch FROM heartbeat)::float8, pid_start, pid_ns, boot_id "
    "FROM runs WHERE status = 'running'"
)


def cache_folder(location: str) -> Path:
    """The local folder of a database's caches and spool files (not created here):
    ``$LABLEDGER_CACHE/<digest>``, else ``~/.cache/labledger/postgres/<digest>``, the digest
    that of the connection string without its password.

    >>> len(cache_folder("postgresql://labledger@db.example.com/ledger").name)
    16
    """
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    base = settings.cache()
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "labledger" / "postgres"
    return root.resolve() / digest


class PostgresStore(RecordReads):
    """A labledger store in a PostgreSQL database. Open with :func:`labledger.store.open_store`.

    :param dsn: the database (``postgresql://user:password@host:port/db``, or ``key=value`` form).
    :param artifacts: where artifact bytes go (``s3://bucket/prefix`` or a shared folder);
        default the store's ``server.artifacts`` setting, else ``$LABLEDGER_ARTIFACTS``.
    :param pool_size: connections kept open at most by each process.

    >>> store = PostgresStore("postgresql://alice:secret@db.example.com/ledger")
    >>> store.location
    'postgresql://alice:***@db.example.com/ledger'
    """

    def __init__(self, dsn: str, *, artifacts: str | None = None, pool_size: int = POOL_SIZE) -> None:
        self._conns = Connections(dsn, pool_size)
        self._artifacts = artifacts
        self.path = cache_folder(self.location)
        self._blobs: BlobStore | None = None
        self._ready = False
        self._setup_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<labledger PostgresStore {self.location}>"

    @property
    def uri(self) -> str:
        """The database's connection string without its password."""
        return self._conns.location

    @property
    def location(self) -> str:
        """What error messages name as the store: the connection string without its password."""
        return self._conns.location

    # -- lifecycle -----------------------------------------------------------------------

    def create(self) -> None:
        """Create the store's tables, or upgrade them, when needed (once per process).

        :raises DatabaseVersionError: a newer labledger upgraded the database.
        :raises DatabaseConnectionError: the database cannot be reached.
        """
        if self._ready:
            return
        from labledger.store.postgres.migrations import upgrade

        with self._setup_lock:
            if self._ready:
                return
            with self._naming(), self._conns.borrow(pinned=False) as conn:
                upgrade(conn)
            self._ready = True

    def close(self) -> None:
        """Close this process's connections (they reopen on next use)."""
        self._conns.close()

    # -- errors --------------------------------------------------------------------------

    @contextmanager
    def _naming(self) -> Iterator[None]:
        """Raise the database's errors inside the block as :class:`StoreError` naming this store."""
        try:
            yield
        except StoreError as e:
            named = renamed(e, self.location)
            if named is e:
                raise
            raise named from e
        except Exception as e:
            error = database_error(e, self.location)
            if error is None:
                raise
            raise error from e

    def _read(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(conn, *args)`` on this thread's connection, else a pooled one (again on another
        when the server had dropped it: a restart leaves every pooled connection closed)."""
        with self._naming():
            pin = self._conns.current()
            if pin is not None:
                return fn(pin.conn, *args)
            attempts = self._conns.size + 1
            for attempt in range(1, attempts + 1):
                with self._conns.borrow() as conn:
                    try:
                        return fn(conn, *args)
                    except StoreError:
                        if attempt == attempts or not conn.closed:
                            raise
            raise AssertionError("unreachable")

    def _write(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(conn, *args)`` inside this thread's transaction, else on a pooled connection."""
        from labledger.tracking import lifecycle

        with self._naming():
            pin = self._conns.writer()
            if pin is not None:
                return fn(pin.conn, *args)
            if lifecycle.in_background() and lifecycle.bulk_open():
                raise StoreBusyError(self.location, "a bulk transaction of this process is open")
            with self._conns.borrow(pinned=False) as conn:
                return fn(conn, *args)

    def _borrow(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self._conns.borrow()

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """Group this thread's writes into one transaction (bulk recording); reads inside see them.

        Writes inside are savepoints of it (a refused write undoes only itself); the background
        writer steps back meanwhile.

        >>> with store.transaction():            # doctest: +SKIP
        ...     for params in candidates:
        ...         ll.start_run("exp", parent=search_run).end()
        """
        from labledger.tracking import lifecycle

        held = self._conns.writer()
        with self._naming():
            if held is not None:  # nested: a savepoint of the thread's transaction
                with held.conn.transaction(), self._conns.pinned("write", held.conn) as pin:
                    yield pin.conn
                return
            with lifecycle.writer_paused(), self._conns.pinned("write") as pin, pin.conn.transaction():
                yield pin.conn

    def in_transaction(self) -> bool:
        """Whether this thread holds a :meth:`transaction`."""
        return self._conns.holds("write")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Make this thread's reads inside the block see one state of the database (a repeatable-read,
        read-only transaction; inside :meth:`transaction` or another snapshot, theirs).

        >>> with store.snapshot():                  # doctest: +SKIP
        ...     sizes = store.metric_sizes(run_id)
        ...     chunks = list(store.metric_chunks(run_id))
        """
        if self._conns.current() is not None:
            yield
            return
        with self._naming(), self._conns.pinned("read") as pin, pin.conn.transaction():
            pin.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    # -- artifacts -----------------------------------------------------------------------

    @property
    def blobs(self) -> BlobStore:
        """Where artifact bytes go: the artifacts location's object store, cached under ``path``."""
        if self._blobs is None:
            from labledger.store.objects.cached import CachedBlobs

            self._blobs = CachedBlobs(self.path / "artifacts", self._objects, self.location)
        return self._blobs

    @blobs.setter
    def blobs(self, value: BlobStore) -> None:
        self._blobs = value

    def _objects(self) -> ObjectStore | None:
        from labledger.store.objects import open_objects

        where = self._artifacts or self.setting(ARTIFACTS_SETTING) or settings.artifacts()
        return open_objects(where) if where else None

    # -- crashed runs --------------------------------------------------------------------

    def reap_crashed(self, stale_after: float | None = None) -> int:
        """Record as ``crashed`` the running runs whose process is gone; returns how many.

        >>> store.reap_crashed()  # doctest: +SKIP
        0
        """
        return self._write(writes.reap_crashed, stale_after)

    def _reap(self) -> None:
        """Before runs are read: record the crashed ones (one query when none is; not inside a
        transaction or snapshot; a database this user may only read is left as it is)."""
        from labledger.store.liveness import crashed

        if self._conns.current() is not None:
            return
        try:
            running = self._read(fetch, _RUNNING)
            if any(crashed(*row) for row in running):
                self.reap_crashed()
        except StoreBusyError:
            return
        except StoreError as e:
            if not read_only(e):
                raise

    # -- writes --------------------------------------------------------------------------

    def ensure_experiment(self, name: str, description: str | None = None) -> int:
        return self._write(writes.ensure_experiment, name, description)

    def insert_run(self, row: dict[str, Any]) -> str:
        return self._write(writes.insert_run, row)

    def end_run(self, run_id: str, status: str, end_time: float, error: str | None) -> None:
        self._write(writes.end_run, run_id, status, end_time, error)

    def heartbeat(self, run_id: str) -> None:
        self._write(writes.heartbeat, run_id)

    def insert_params(self, run_id: str, params: dict[str, Any]) -> None:
        self._write(writes.insert_params, run_id, params)

    def set_tags(self, run_id: str, tags: dict[str, str], when: float) -> None:
        self._write(writes.set_tags, run_id, tags, when)

    def add_note(self, run_id: str, text: str, when: float, author: str | None = None) -> None:
        self._write(writes.add_note, run_id, text, when, author)

    def write_metrics(self, batch: MetricBatch) -> None:
        self._write(write_batch, batch)

    def insert_folds(
        self, run_id: str, key: str, split: str, values: list[float], stats: dict[str, float | None]
    ) -> None:
        self._write(writes.insert_folds, run_id, key, split, values, stats)

    def insert_dataset(self, run_id: str, ds: DatasetRecord) -> None:
        self._write(writes.insert_dataset, run_id, ds)

    def record_lineage(self, run_id: str, lineage: dict[str, Any], packages: dict[str, str] | None) -> None:
        self._write(writes.record_lineage, run_id, lineage, packages)

    def insert_pipeline(self, run_id: str, pipe: PipelineRecord) -> None:
        self._write(writes.insert_pipeline, run_id, pipe)

    def insert_artifact(self, run_id: str, art: ArtifactRecord) -> None:
        self._write(writes.insert_artifact, run_id, art)

    def set_setting(self, key: str, value: str) -> None:
        self._write(writes.set_setting, key, value)

    # -- reads: runs and experiments -----------------------------------------------------

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        self._reap()
        return self._read(reads.run_row, run_id)

    def run_row_by_name(self, experiment: str, name: str) -> dict[str, Any] | None:
        self._reap()
        return self._read(reads.run_row_by_name, experiment, name)

    def run_rows_by_prefix(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        self._reap()
        return self._read(reads.run_rows_by_prefix, prefix, limit)

    def child_rows(self, run_id: str) -> list[dict[str, Any]]:
        self._reap()
        return self._read(reads.child_rows, run_id)

    def select_runs(self, selection_: RunSelection) -> list[dict[str, Any]]:
        self._reap()
        return self._read(selection.select_runs, selection_)

    def field_values(self, run_ids: Sequence[str], field: Field) -> dict[str, Any]:
        return self._read(selection.field_values, run_ids, field)

    def experiment_rows(self) -> list[dict[str, Any]]:
        self._reap()
        return self._read(reads.experiment_rows)

    def run_ids(self) -> list[str]:
        return self._read(reads.run_ids)

    def runs_version(self) -> int:
        return self._read(reads.runs_version)

    def latest_reproduction(self, run_id: str, since: float) -> str | None:
        return self._read(reads.latest_reproduction, run_id, since)


if TYPE_CHECKING:

    def _implements_backend(store: PostgresStore) -> Backend:
        return store  # the type checker holds PostgresStore to the Backend protocol
