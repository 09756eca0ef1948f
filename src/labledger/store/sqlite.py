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

import json
import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.errors import StoreError, StoreVersionError
from labledger.store.blobs import BlobStore
from labledger.store.codec import encode_chunk
from labledger.store.schema import MIGRATIONS, SCHEMA_VERSION, statements

if TYPE_CHECKING:
    import sqlite_utils

    from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord

__all__ = ["DB_FILENAME", "Store"]

DB_FILENAME = "labledger.db"
BUSY_TIMEOUT_MS = 5_000
LOCK_RETRY_SECONDS = 300.0
_SQLITE_MAGIC = b"SQLite format 3\x00"


def dumps(value: Any) -> str:
    """JSON text that keeps NaN/inf (Python's json reads them back)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class Store:
    """A labledger store in a folder. Open with :func:`labledger.store.open_store`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().resolve()
        self.db_path = self.path / DB_FILENAME
        self.blobs = BlobStore(self.path / "artifacts")
        self._local = threading.local()
        self._key_ids: dict[str, int] = {}
        self._key_lock = threading.Lock()
        self._open_checked()

    def __repr__(self) -> str:
        return f"<labledger Store {self.path}>"

    # -- connections -----------------------------------------------------

    def _open_checked(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(
                str(self.path),
                "is a file, not a store folder. Point LABLEDGER_STORE or store= at a folder "
                "(it is created when missing), or move this file away.",
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                str(self.path), f"cannot create the store folder ({e}); check the path and permissions"
            ) from e
        if self.db_path.exists() and not self.db_path.is_file():
            raise StoreError(
                str(self.db_path), "is not a file, so this folder is not a labledger store; move it away."
            )
        if self.db_path.exists() and self.db_path.stat().st_size > 0:
            with open(self.db_path, "rb") as f:
                if f.read(16) != _SQLITE_MAGIC:
                    raise StoreError(
                        str(self.db_path),
                        "is not a labledger store (not an SQLite database). Point "
                        "LABLEDGER_STORE or store= at a store folder, or move this file away.",
                    )
        try:
            self._migrate()
        except sqlite3.DatabaseError as e:
            if not os.access(self.path, os.W_OK) or (
                self.db_path.exists() and not os.access(self.db_path, os.W_OK)
            ):
                raise StoreError(
                    str(self.db_path),
                    f"cannot be opened ({e}): the store is read-only. labledger needs write access "
                    "to the store folder, even to read it; fix the permissions or copy the store to "
                    "a writable place.",
                ) from e
            raise StoreError(
                str(self.db_path),
                f"cannot be read ({e}). The file may be truncated or corrupt; restore it from "
                "a backup or start a new store.",
            ) from e

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, reopened after fork)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn = self._connect()
            local.pid = os.getpid()
        conn: sqlite3.Connection = local.conn
        return conn

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
        from labledger import _lifecycle

        with _lifecycle.writer_paused(), self.write() as conn:
            self._local.bulk_depth = getattr(self._local, "bulk_depth", 0) + 1
            try:
                yield conn
            finally:
                self._local.bulk_depth -= 1

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, retried while another writer holds the lock."""
        if getattr(self._local, "bulk_depth", 0) and getattr(self._local, "pid", None) == os.getpid():
            yield from self._savepoint()
            return
        conn = self.conn
        deadline = time.monotonic() + LOCK_RETRY_SECONDS
        delay = 0.005
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise self._wrap(e) from e
                if time.monotonic() > deadline:
                    raise StoreError(str(self.db_path), f"stayed locked for {LOCK_RETRY_SECONDS:.0f}s") from e
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)
        try:
            yield conn
        except sqlite3.IntegrityError:  # a constraint or trigger refused the write: the caller's to handle
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        except sqlite3.DatabaseError as e:  # disk full, I/O error, read-only, corrupt: name the store
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._wrap(e) from e
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._wrap(e) from e

    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        name = f"labledger_{self._local.bulk_depth}_{id(conn)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
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

    def _migrate(self) -> None:
        conn = self.conn
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreVersionError(str(self.db_path), version, SCHEMA_VERSION)
        if version == SCHEMA_VERSION:
            return
        with self.write():
            version = self.schema_version()  # another process may have migrated meanwhile
            for target in range(version, SCHEMA_VERSION):
                for statement in statements(MIGRATIONS[target]):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (target + 1, time.time()),
                )

    def schema_version(self) -> int:
        """The version recorded in the store (0 for an empty file)."""
        conn = self.conn
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at REAL NOT NULL)"
        )
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query; rows support access by column name."""
        cur = self.conn.cursor()
        cur.row_factory = sqlite3.Row
        try:
            return cur.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
            raise self._wrap(e) from e

    # -- writes ------------------------------------------------------------

    def ensure_experiment(self, name: str, description: str | None = None) -> int:
        """The id of experiment ``name``, created when missing."""
        rows = self.query("SELECT id FROM experiments WHERE name = ?", (name,))
        if rows:
            return int(rows[0]["id"])
        with self.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO experiments (name, description, created_at) VALUES (?, ?, ?)",
                (name, description, time.time()),
            )
        return int(self.query("SELECT id FROM experiments WHERE name = ?", (name,))[0]["id"])

    def insert_run(self, row: dict[str, Any]) -> str:
        """Insert a run; a taken name gets a ``-2``, ``-3``… suffix. Returns the name used."""
        base = row["name"]
        for attempt in range(1, 10_000):
            name = base if attempt == 1 else f"{base}-{attempt}"
            try:
                with self.write() as conn:
                    conn.execute(
                        "INSERT INTO runs (id, experiment_id, name, parent_id, status, kind, start_time, "
                        "heartbeat, author, hypothesis, host, pid, source, environment, reproduction_of) "
                        "VALUES "
                        "(:id, :experiment_id, :name, :parent_id, 'running', :kind, :start_time, "
                        ":start_time, :author, :hypothesis, :host, :pid, :source, :environment, "
                        ":reproduction_of)",
                        {**row, "name": name},
                    )
                return name
            except sqlite3.IntegrityError as e:
                if "runs.experiment_id, runs.name" not in str(e):
                    raise self._wrap(e) from e
        raise StoreError(str(self.db_path), f"no free run name for {base!r}")

    def insert_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Record params; keys already present are left as they are (they are immutable)."""
        with self.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, k, dumps(v)) for k, v in params.items()],
            )

    def set_tags(self, run_id: str, tags: dict[str, str], when: float) -> None:
        """Set tags and append each change to the tag history."""
        with self.write() as conn:
            conn.executemany(
                "INSERT INTO tags (run_id, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                [(run_id, k, v, when) for k, v in tags.items()],
            )
            conn.executemany(
                "INSERT INTO tag_history (run_id, key, value, changed_at) VALUES (?, ?, ?, ?)",
                [(run_id, k, v, when) for k, v in tags.items()],
            )

    def add_note(self, run_id: str, text: str, when: float) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO notes (run_id, created_at, text) VALUES (?, ?, ?)", (run_id, when, text)
            )

    def _key_id(self, conn: sqlite3.Connection, key: str) -> int:
        kid = self._key_ids.get(key)
        if kid is None:
            conn.execute("INSERT OR IGNORE INTO metric_keys (name) VALUES (?)", (key,))
            kid = int(conn.execute("SELECT id FROM metric_keys WHERE name = ?", (key,)).fetchone()[0])
            with self._key_lock:
                self._key_ids[key] = kid
        return kid

    def write_metrics(self, batch: MetricBatch) -> None:
        """Append one batch: a chunk per key plus the updated per-key summaries."""
        chunks = []
        summaries = []
        for key, s in batch.series.items():
            n = len(s.values)
            if n == 0:
                continue
            # columns can differ in length only if logging was interrupted mid-point
            n = min(n, len(s.steps), len(s.epochs), len(s.timestamps))
            values = s.values if n == len(s.values) else s.values[:n]
            chunk = encode_chunk(s.steps[:n], s.epochs[:n], s.timestamps[:n], values)
            finite = [v for v in values if v == v]
            last = values[-1]
            summaries.append(
                (
                    batch.run_id,
                    key,
                    n,
                    n - len(finite),
                    None if math.isnan(last) else last,
                    s.steps[n - 1],
                    s.timestamps[n - 1],
                    min(finite) if finite else None,
                    max(finite) if finite else None,
                )
            )
            chunks.append((key, n, chunk))
        if not chunks:
            return
        with self.write() as conn:
            conn.executemany(
                "INSERT INTO metric_chunks (run_id, key_id, seq, count, data) VALUES (?, ?, ?, ?, ?)",
                [(batch.run_id, self._key_id(conn, k), batch.seq, n, c) for k, n, c in chunks],
            )
            conn.executemany(
                "INSERT INTO metric_summary (run_id, key, count, nan_count, last, last_step, "
                "last_time, min, max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET count = count + excluded.count, "
                "nan_count = nan_count + excluded.nan_count, last = excluded.last, "
                "last_step = excluded.last_step, last_time = excluded.last_time, "
                "min = CASE WHEN min IS NULL THEN excluded.min WHEN excluded.min IS NULL THEN min "
                "ELSE min(min, excluded.min) END, "
                "max = CASE WHEN max IS NULL THEN excluded.max WHEN excluded.max IS NULL THEN max "
                "ELSE max(max, excluded.max) END",
                summaries,
            )
            conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), batch.run_id))

    def heartbeat(self, run_id: str) -> None:
        """Mark a run alive (a crashed-looking run whose process still writes is revived)."""
        with self.write() as conn:
            conn.execute(
                "UPDATE runs SET heartbeat = ?, status = CASE WHEN status = 'crashed' THEN "
                "'running' ELSE status END WHERE id = ?",
                (time.time(), run_id),
            )

    def put_artifact(self, source: Path) -> tuple[str, int, Path, list[tuple[str, str, int]] | None]:
        """Copy a file or directory into the blob area: ``(sha256, size, local path, files)``."""
        if source.is_dir():
            sha, size, files = self.blobs.put_directory(source)
            return sha, size, self.blobs.path_for(sha), files
        sha, size = self.blobs.put_file(source)
        return sha, size, self.blobs.path_for(sha), None

    def artifact_sha(self, run_id: str, name: str) -> str | None:
        rows = self.query("SELECT sha256 FROM artifacts WHERE run_id = ? AND name = ?", (run_id, name))
        return str(rows[0]["sha256"]) if rows else None

    def insert_artifact(self, run_id: str, art: ArtifactRecord) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO artifacts (run_id, name, kind, sha256, size, media_type, "
                "metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    art.name,
                    art.kind,
                    art.sha256,
                    art.size,
                    art.media_type,
                    dumps(art.metadata),
                    art.created_at,
                ),
            )

    def insert_dataset(self, run_id: str, ds: DatasetRecord) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO datasets (run_id, name, role, fingerprint, summary, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, ds.name, ds.role, ds.fingerprint, dumps(ds.summary), ds.created_at),
            )

    def insert_folds(
        self, run_id: str, key: str, split: str, values: list[float], stats: dict[str, float | None]
    ) -> None:
        """Record per-fold values (NaN stored as NULL) and their statistics."""
        with self.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO folds (run_id, key, split, fold, value) VALUES (?, ?, ?, ?, ?)",
                [(run_id, key, split, i, None if v != v else v) for i, v in enumerate(values)],
            )
            conn.execute(
                "INSERT OR IGNORE INTO fold_stats (run_id, key, split, n, mean, std, min, max) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, key, split, len(values), stats["mean"], stats["std"], stats["min"], stats["max"]),
            )

    def record_lineage(self, run_id: str, lineage: dict[str, Any], packages: dict[str, str] | None) -> None:
        """Merge lineage sections into the run's lineage; store a package set once per digest."""
        with self.write() as conn:
            if packages is not None and "packages_sha256" in lineage:
                conn.execute(
                    "INSERT OR IGNORE INTO package_sets (sha256, packages, created_at) VALUES (?, ?, ?)",
                    (lineage["packages_sha256"], dumps(packages), time.time()),
                )
                conn.execute(
                    "UPDATE runs SET packages_sha = ? WHERE id = ?", (lineage["packages_sha256"], run_id)
                )
            conn.execute(
                "UPDATE runs SET lineage = json_patch(coalesce(lineage, '{}'), ?) WHERE id = ?",
                (json.dumps(lineage, allow_nan=False, default=str), run_id),
            )

    def insert_pipeline(self, run_id: str, pipe: PipelineRecord) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO pipelines (run_id, name, version, structure, text, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, pipe.name, pipe.version, dumps(pipe.structure), pipe.text, pipe.created_at),
            )

    def packages(self, sha256: str) -> dict[str, str]:
        rows = self.query("SELECT packages FROM package_sets WHERE sha256 = ?", (sha256,))
        return dict(json.loads(rows[0]["packages"])) if rows else {}

    def end_run(self, run_id: str, status: str, end_time: float, error: str | None) -> None:
        with self.write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, end_time = ?, heartbeat = ?, error = ? "
                "WHERE id = ? AND status IN ('running', 'crashed')",
                (status, end_time, end_time, error, run_id),
            )

    def reap_crashed(self, stale_after: float) -> int:
        """Mark as ``crashed`` the running runs whose process is gone or whose heartbeat is stale.

        See :func:`labledger.store.liveness.reap_crashed`.
        """
        from labledger.store.liveness import reap_crashed

        return reap_crashed(self, stale_after)
