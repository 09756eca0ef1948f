"""Reading records back: the rows run views, listings and exports are built from.

Mixed into :class:`labledger.store.sqlite.Store`, which provides the read
connection (see :attr:`~labledger.store.sqlite.Store.read_conn`: it never
writes nor waits for a writer). One run's records come as dicts; the records
of many runs as tuples, run id first, read by joining the ids (a JSON list)
against each table's primary key. JSON fields come back as text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from labledger.errors import StoreError

__all__ = ["RUN_SELECT", "ReadsMixin"]

#: A run's row with its experiment's name.
RUN_SELECT = "SELECT r.*, e.name AS experiment FROM runs r JOIN experiments e ON e.id = r.experiment_id"
_IDS = "(SELECT value AS run_id FROM json_each(?)) j"


class ReadsMixin:
    """The reads of :class:`labledger.store.backend.Backend` over SQLite."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:  # provided by Store
        raise NotImplementedError

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:  # provided by Store
        raise NotImplementedError

    def _cursor(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:  # provided by Store
        raise NotImplementedError

    def _wrap(self, e: sqlite3.Error) -> StoreError:  # provided by Store
        raise NotImplementedError

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.query(sql, params)]

    # -- runs and experiments ----------------------------------------------------

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        rows = self._dicts(RUN_SELECT + " WHERE r.id = ?", (run_id,))
        return rows[0] if rows else None

    def run_row_by_name(self, experiment: str, name: str) -> dict[str, Any] | None:
        rows = self._dicts(RUN_SELECT + " WHERE e.name = ? AND r.name = ?", (experiment, name))
        return rows[0] if rows else None

    def run_rows_by_prefix(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        return self._dicts(
            RUN_SELECT + " WHERE r.id >= ? AND r.id < ? ORDER BY r.id LIMIT ?",
            (prefix, prefix + "\U0010ffff", limit),
        )

    def child_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts(RUN_SELECT + " WHERE r.parent_id = ? ORDER BY r.id", (run_id,))

    def experiment_rows(self) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT e.name, e.description, e.created_at, count(r.id) AS runs, "
            "sum(r.status = 'running') AS running, max(r.start_time) AS last_run "
            "FROM experiments e LEFT JOIN runs r ON r.experiment_id = e.id GROUP BY e.id ORDER BY e.name"
        )

    def run_ids(self) -> list[str]:
        return [r[0] for r in self._fetch("SELECT id FROM main.runs ORDER BY id")]

    def runs_version(self) -> int:
        return int(self._fetch("SELECT max(rowid) FROM main.runs")[0][0] or 0)

    def latest_reproduction(self, run_id: str, since: float) -> str | None:
        rows = self._fetch(
            "SELECT id FROM runs WHERE reproduction_of = ? AND start_time >= ? "
            "ORDER BY start_time DESC LIMIT 1",
            (run_id, since),
        )
        return str(rows[0][0]) if rows else None

    # -- records of many runs ------------------------------------------------------

    def _of(self, run_ids: Sequence[str], sql: str) -> list[tuple[Any, ...]]:
        return self._fetch(sql.format(ids=_IDS), (json.dumps(list(run_ids)),))

    def params_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._of(
            run_ids, "SELECT p.run_id, p.key, p.value FROM {ids} JOIN params p ON p.run_id = j.run_id"
        )

    def tags_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._of(
            run_ids, "SELECT t.run_id, t.key, t.value FROM {ids} JOIN tags t ON t.run_id = j.run_id"
        )

    def summaries_of(self, run_ids: Sequence[str], brief: bool = False) -> list[tuple[Any, ...]]:
        more = "" if brief else ", m.nan_count, m.last_step, m.last_time"
        return self._of(
            run_ids,
            f"SELECT m.run_id, m.key, m.last, m.min, m.max, m.count{more} "
            "FROM {ids} JOIN metric_summary m ON m.run_id = j.run_id",
        )

    def fold_stats_of(self, run_ids: Sequence[str], brief: bool = False) -> list[tuple[Any, ...]]:
        more = "" if brief else ", f.min, f.max"
        return self._of(
            run_ids,
            f"SELECT f.run_id, f.key, f.split, f.n, f.mean, f.std{more} "
            "FROM {ids} JOIN fold_stats f ON f.run_id = j.run_id",
        )

    def keys_of(self, run_ids: Sequence[str]) -> list[tuple[str, str, str | None]]:
        """``(kind, key, split)``: every distinct param, metric, fold (with its split) and tag key
        the runs have (``split`` is None but for folds)."""
        return self._fetch(
            "WITH j AS (SELECT value AS run_id FROM json_each(?)) "
            "SELECT DISTINCT 'params', p.key, NULL FROM j JOIN params p ON p.run_id = j.run_id "
            "UNION SELECT DISTINCT 'metrics', m.key, NULL FROM j "
            "JOIN metric_summary m ON m.run_id = j.run_id "
            "UNION SELECT DISTINCT 'folds', f.key, f.split FROM j JOIN fold_stats f ON f.run_id = j.run_id "
            "UNION SELECT DISTINCT 'tags', t.key, NULL FROM j JOIN tags t ON t.run_id = j.run_id",
            (json.dumps(list(run_ids)),),
        )

    def folds_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._of(
            run_ids,
            "SELECT f.run_id, f.key, f.split, f.fold, f.value FROM {ids} JOIN folds f ON f.run_id = j.run_id "
            "ORDER BY f.run_id, f.key, f.split, f.fold",
        )

    def datasets_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._of(
            run_ids,
            "SELECT d.run_id, d.name, d.role, d.fingerprint, d.summary, d.created_at "
            "FROM {ids} JOIN datasets d ON d.run_id = j.run_id ORDER BY d.created_at",
        )

    # -- one run's records ---------------------------------------------------------

    def tag_history_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT key, value, changed_at FROM tag_history WHERE run_id = ? ORDER BY id", (run_id,)
        )

    def note_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT created_at, text, author FROM notes WHERE run_id = ? ORDER BY id", (run_id,)
        )

    def artifact_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT name, kind, sha256, size, media_type, metadata, created_at FROM artifacts "
            "WHERE run_id = ? ORDER BY id",
            (run_id,),
        )

    def pipeline_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT name, version, structure, text, created_at FROM pipelines WHERE run_id = ? ORDER BY name",
            (run_id,),
        )

    def artifact_by_content(self, sha256: str, name: str) -> tuple[str, str] | None:
        rows = self._fetch(  # identical bytes under several names: the given name first
            "SELECT run_id, name FROM artifacts WHERE sha256 = ? "
            "ORDER BY name != ?, kind != 'checkpoint', created_at LIMIT 1",
            (sha256, name),
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def package_set(self, sha256: str) -> str | None:
        rows = self._fetch("SELECT packages FROM package_sets WHERE sha256 = ?", (sha256,))
        return rows[0][0] if rows else None

    def setting(self, key: str) -> str | None:
        rows = self._fetch("SELECT value FROM settings WHERE key = ?", (key,))
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def settings(self, prefix: str) -> dict[str, str]:
        rows = self._fetch("SELECT key, value FROM settings WHERE substr(key, 1, length(?1)) = ?1", (prefix,))
        return {str(k): str(v) for k, v in rows}

    # -- metric histories ------------------------------------------------------------

    def metric_sizes(self, run_id: str, key: str | None = None) -> list[tuple[str, int]]:
        sql = (
            "SELECT k.name, sum(c.count) FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id "
            "WHERE c.run_id = ?"
        )
        if key is not None:
            return [(n, c) for n, c in self._fetch(sql + " AND k.name = ? GROUP BY c.key_id", (run_id, key))]
        return [(n, c) for n, c in self._fetch(sql + " GROUP BY c.key_id", (run_id,))]

    def metric_chunks(self, run_id: str, key: str | None = None) -> Iterator[tuple[str, int, bytes]]:
        if key is not None:
            for count, data in self._cursor(
                "SELECT c.count, c.data FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id "
                "WHERE c.run_id = ? AND k.name = ? ORDER BY c.seq",
                (run_id, key),
            ):
                yield key, count, data
            return
        names = dict(
            self._fetch(
                "SELECT k.id, k.name FROM metric_keys k WHERE k.id IN "
                "(SELECT DISTINCT key_id FROM metric_chunks WHERE run_id = ?)",
                (run_id,),
            )
        )
        for key_id, count, data in self._cursor(
            "SELECT key_id, count, data FROM metric_chunks WHERE run_id = ? ORDER BY key_id, seq", (run_id,)
        ):
            name = names.get(key_id)
            if name is None:  # a key first written since (outside a snapshot)
                found = self._fetch("SELECT name FROM metric_keys WHERE id = ?", (key_id,))
                name = names[key_id] = found[0][0]
            yield name, count, data
