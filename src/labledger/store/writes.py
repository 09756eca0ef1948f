"""The store's records: one write method per kind of record, each one transaction.

Mixed into :class:`labledger.store.sqlite.Store`, which provides the
connections and :meth:`~labledger.store.sqlite.Store.write`. Every write is
idempotent, so a record retried after an interruption (the transaction may or
may not have committed) is stored once: params, folds, artifacts and pipelines
are ``INSERT OR IGNORE``, notes and tag changes are not added twice, and a
metric batch already stored under its sequence number is skipped.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.errors import RunFinishedError, RunNotFoundError, StoreError
from labledger.store.batches import encode_batch

if TYPE_CHECKING:
    from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord
    from labledger.store.blobs import BlobStore

__all__ = ["WritesMixin", "dumps"]

#: What the store's triggers answer a write to a run that has ended (schema.py).
_ENDED = "run has ended and is read-only"


def dumps(value: Any) -> str:
    """JSON text that keeps NaN/inf (Python's json reads them back)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class WritesMixin:
    """Recording runs, params, metrics, tags, notes, artifacts, datasets, folds, lineage, settings."""

    db_path: Path
    blobs: BlobStore
    _local: threading.local
    _key_ids: dict[str, int]
    _persisted_at: float
    _package_json: tuple[str, str] | None  # the last package set written: (sha256, JSON)

    def write(self) -> AbstractContextManager[sqlite3.Connection]:  # provided by Store
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:  # provided by Store
        raise NotImplementedError

    def _wrap(self, e: sqlite3.Error) -> StoreError:  # provided by Store
        raise NotImplementedError

    @contextmanager
    def _run_write(self, run_id: str, action: str) -> Iterator[sqlite3.Connection]:
        """One write of run ``run_id``'s records, as :meth:`write`; the database refusing it
        because the run has ended (elsewhere: another process, or by hand) is raised as
        :class:`~labledger.errors.RunFinishedError` naming the run, its status and ``action``."""
        try:
            with self.write() as conn:
                yield conn
        except sqlite3.IntegrityError as e:
            if _ENDED not in str(e):
                raise
            rows = self.query("SELECT status FROM runs WHERE id = ?", (run_id,))
            raise RunFinishedError(run_id, str(rows[0]["status"]) if rows else "ended", action) from e

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
        """Insert a run; a taken name gets a ``-2``, ``-3``… suffix. Returns the name used.

        The run's process identity (see :mod:`labledger.store.liveness`) is recorded
        with it; runs found crashed meanwhile are marked so in the same transaction.
        """
        from labledger.store.liveness import process_identity

        identity = process_identity() if row.get("pid") == os.getpid() else {}
        base = row["name"]
        for attempt in range(1, 10_000):
            name = base if attempt == 1 else f"{base}-{attempt}"
            try:
                with self.write() as conn:
                    conn.execute(
                        "INSERT INTO runs (id, experiment_id, name, parent_id, status, kind, start_time, "
                        "heartbeat, author, hypothesis, host, pid, source, environment, reproduction_of, "
                        "pid_start, pid_ns, boot_id) VALUES "
                        "(:id, :experiment_id, :name, :parent_id, 'running', :kind, :start_time, "
                        ":start_time, :author, :hypothesis, :host, :pid, :source, :environment, "
                        ":reproduction_of, :pid_start, :pid_ns, :boot_id)",
                        {"pid_start": None, "pid_ns": None, "boot_id": None, **identity, **row, "name": name},
                    )
                    self._persist_crashed(conn)
                return name
            except sqlite3.IntegrityError as e:
                if "runs.experiment_id, runs.name" not in str(e):
                    raise self._wrap(e) from e
        raise StoreError(str(self.db_path), f"no free run name for {base!r}")

    def _persist_crashed(self, conn: sqlite3.Connection, every: float = 10.0) -> None:
        """Record the runs readers see as crashed (at most every ``every`` seconds per process)."""
        from labledger.store.liveness import persist_crashed

        now = time.monotonic()
        if now - self._persisted_at >= every:
            self._persisted_at = now
            persist_crashed(conn)

    def insert_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Record params; keys already present are left as they are (they are immutable)."""
        with self._run_write(run_id, "log params") as conn:
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
            conn.executemany(  # a retried write adds no second entry
                "INSERT INTO tag_history (run_id, key, value, changed_at) SELECT ?1, ?2, ?3, ?4 "
                "WHERE NOT EXISTS (SELECT 1 FROM tag_history WHERE run_id = ?1 AND key = ?2 "
                "AND value = ?3 AND changed_at = ?4)",
                [(run_id, k, v, when) for k, v in tags.items()],
            )

    def add_note(self, run_id: str, text: str, when: float, author: str | None = None) -> None:
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise RunNotFoundError(run_id)
            conn.execute(  # a retried write adds no second note
                "INSERT INTO notes (run_id, created_at, text, author) SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS "
                "(SELECT 1 FROM notes WHERE run_id = ?1 AND created_at = ?2 AND text = ?3)",
                (run_id, when, text, author),
            )

    def _key_id(self, conn: sqlite3.Connection, key: str) -> int:
        kid = self._key_ids.get(key)
        if kid is None:
            new_keys: dict[str, int] = self._local.__dict__.setdefault("new_keys", {})
            kid = new_keys.get(key)
            if kid is None:
                conn.execute("INSERT OR IGNORE INTO metric_keys (name) VALUES (?)", (key,))
                kid = int(conn.execute("SELECT id FROM metric_keys WHERE name = ?", (key,)).fetchone()[0])
                new_keys[key] = kid  # cached for every thread once the transaction commits
        return kid

    def write_metrics(self, batch: MetricBatch) -> None:
        """Append one batch: a chunk per key plus the updated per-key summaries."""
        chunks, sums = encode_batch(batch)
        summaries = [(batch.run_id, *s) for s in sums]
        if not chunks:
            return
        with self._run_write(batch.run_id, "log metrics") as conn:
            rows = [(batch.run_id, self._key_id(conn, k), batch.seq, n, c) for k, n, c in chunks]
            if conn.execute(
                "SELECT 1 FROM metric_chunks WHERE run_id = ? AND key_id = ? AND seq = ?", rows[0][:3]
            ).fetchone():
                return  # a retried batch the store already holds (a batch is all there or not at all)
            conn.executemany(
                "INSERT INTO metric_chunks (run_id, key_id, seq, count, data) VALUES (?, ?, ?, ?, ?)", rows
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
        with self._run_write(run_id, "log an artifact") as conn:
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
        with self._run_write(run_id, "log a dataset") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO datasets (run_id, name, role, fingerprint, summary, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, ds.name, ds.role, ds.fingerprint, dumps(ds.summary), ds.created_at),
            )

    def insert_folds(
        self, run_id: str, key: str, split: str, values: list[float], stats: dict[str, float | None]
    ) -> None:
        """Record per-fold values (NaN stored as NULL) and their statistics."""
        with self._run_write(run_id, "log folds") as conn:
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
        sha = lineage.get("packages_sha256") if packages is not None else None
        text = None
        if sha is not None:  # every run of a process has the same set: its JSON is made once
            known = self._package_json
            text = known[1] if known is not None and known[0] == sha else dumps(packages)
            self._package_json = (sha, text)
        with self.write() as conn:
            if sha is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO package_sets (sha256, packages, created_at) VALUES (?, ?, ?)",
                    (sha, text, time.time()),
                )
                conn.execute("UPDATE runs SET packages_sha = ? WHERE id = ?", (sha, run_id))
            conn.execute(
                "UPDATE runs SET lineage = json_patch(coalesce(lineage, '{}'), ?) WHERE id = ?",
                (json.dumps(lineage, allow_nan=False, default=str), run_id),
            )

    def insert_pipeline(self, run_id: str, pipe: PipelineRecord) -> None:
        with self._run_write(run_id, "log a pipeline") as conn:
            conn.execute(
                "INSERT OR IGNORE INTO pipelines (run_id, name, version, structure, text, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, pipe.name, pipe.version, dumps(pipe.structure), pipe.text, pipe.created_at),
            )

    def packages(self, sha256: str) -> dict[str, str]:
        rows = self.query("SELECT packages FROM package_sets WHERE sha256 = ?", (sha256,))
        return dict(json.loads(rows[0]["packages"])) if rows else {}

    def set_setting(self, key: str, value: str) -> None:
        """Store a store-wide setting (e.g. a metric's direction)."""
        with self.write() as conn:
            conn.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, value, time.time()),
            )

    def end_run(self, run_id: str, status: str, end_time: float, error: str | None) -> None:
        with self.write() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, end_time = ?, heartbeat = ?, error = ? "
                "WHERE id = ? AND status IN ('running', 'crashed')",
                (status, end_time, end_time, error, run_id),
            )

    def reap_crashed(self, stale_after: float | None = None) -> int:
        """Record as ``crashed`` the running runs whose process is gone; returns how many.

        Readers need not call it (they see crashed runs as such); a writer does it when
        a run starts. ``stale_after`` overrides ``LABLEDGER_HEARTBEAT_TIMEOUT``.

        >>> store.reap_crashed()  # doctest: +SKIP
        """
        from labledger.store.liveness import persist_crashed

        with self.write() as conn:
            return persist_crashed(conn, stale_after)
