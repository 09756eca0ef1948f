"""Reading run records from PostgreSQL: of many runs (tuples, run id first) and of one run (dicts).

The reads of many runs take the run ids as one ``text[]`` parameter (``run_id = ANY(%s)``); each
run's records come once however often its id is given. Where the SQLite store gives no order,
these give the rows by run id and key; JSON fields come back as text, times in epoch seconds.

>>> from labledger.store.postgres import connect
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     params_of(conn, ["0123abcd"])
[('0123abcd', 'lr', '0.1')]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labledger.store.postgres.metrics import summaries
from labledger.store.postgres.reads_base import dicts, epoch, fetch

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "artifact_rows",
    "datasets_of",
    "fold_stats_of",
    "folds_of",
    "keys_of",
    "note_rows",
    "params_of",
    "pipeline_rows",
    "summaries_of",
    "tag_history_rows",
    "tags_of",
]

_BY_KEY = 'ORDER BY run_id COLLATE "C", key COLLATE "C"'
_PARAMS = f"SELECT run_id, key, value FROM params WHERE run_id = ANY(%s) {_BY_KEY}"
_TAGS = f"SELECT run_id, key, value FROM tags WHERE run_id = ANY(%s) {_BY_KEY}"
_FOLD_STATS = (
    "SELECT run_id, key, split, n, mean, std{more} FROM fold_stats WHERE run_id = ANY(%s) "
    f'{_BY_KEY}, split COLLATE "C"'
)
_FOLDS = (
    "SELECT run_id, key, split, fold, value FROM folds WHERE run_id = ANY(%s) "
    f'{_BY_KEY}, split COLLATE "C", fold'
)
_DATASETS = (
    f"SELECT run_id, name, role, fingerprint, summary, {epoch('created_at', 'created_at')} "
    'FROM datasets WHERE run_id = ANY(%s) ORDER BY datasets.created_at, run_id COLLATE "C"'
)
_KEYS = (
    "SELECT DISTINCT 'params', key, NULL::text FROM params WHERE run_id = ANY(%s) "
    "UNION SELECT DISTINCT 'metrics', key, NULL FROM metric_summary WHERE run_id = ANY(%s) "
    "UNION SELECT DISTINCT 'folds', key, split FROM fold_stats WHERE run_id = ANY(%s) "
    "UNION SELECT DISTINCT 'tags', key, NULL FROM tags WHERE run_id = ANY(%s)"
)
_TAG_HISTORY = (
    f"SELECT key, value, {epoch('changed_at', 'changed_at')} FROM tag_history WHERE run_id = %s ORDER BY id"
)
_NOTES = f"SELECT {epoch('created_at', 'created_at')}, text, author FROM notes WHERE run_id = %s ORDER BY id"
_ARTIFACTS = (
    f"SELECT name, kind, sha256, size, media_type, metadata, {epoch('created_at', 'created_at')} "
    "FROM artifacts WHERE run_id = %s ORDER BY id"
)
_PIPELINES = (
    f"SELECT name, version, structure, text, {epoch('created_at', 'created_at')} "
    'FROM pipelines WHERE run_id = %s ORDER BY name COLLATE "C"'
)


def _ids(run_ids: Sequence[str]) -> list[str]:
    return [str(i) for i in run_ids]


# -- records of many runs ------------------------------------------------------------


def params_of(conn: psycopg.Connection[Any], run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """``(run_id, key, value JSON)`` of the runs' params.

    >>> params_of(conn, ["0123abcd"])  # doctest: +SKIP
    [('0123abcd', 'lr', '0.1')]
    """
    return fetch(conn, _PARAMS, (_ids(run_ids),))


def tags_of(conn: psycopg.Connection[Any], run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """``(run_id, key, value)`` of the runs' tags.

    >>> tags_of(conn, ["0123abcd"])  # doctest: +SKIP
    [('0123abcd', 'stage', 'tuning')]
    """
    return fetch(conn, _TAGS, (_ids(run_ids),))


def summaries_of(
    conn: psycopg.Connection[Any], run_ids: Sequence[str], brief: bool = False
) -> list[tuple[Any, ...]]:
    """``(run_id, key, last, min, max, count, nan_count, last_step, last_time)`` per metric of the
    runs (``brief``: the first six).

    >>> summaries_of(conn, ["0123abcd"], brief=True)  # doctest: +SKIP
    [('0123abcd', 'loss', 0.7, 0.7, 0.9, 2)]
    """
    return summaries(conn, _ids(run_ids), brief)


def fold_stats_of(
    conn: psycopg.Connection[Any], run_ids: Sequence[str], brief: bool = False
) -> list[tuple[Any, ...]]:
    """``(run_id, key, split, n, mean, std, min, max)`` of the runs' cross-validated metrics
    (``brief``: the first six).

    >>> fold_stats_of(conn, ["0123abcd"], brief=True)  # doctest: +SKIP
    [('0123abcd', 'f1', 'test', 3, 0.85, 0.04)]
    """
    sql = _FOLD_STATS.format(more="" if brief else ", min, max")
    return fetch(conn, sql, (_ids(run_ids),))


def folds_of(conn: psycopg.Connection[Any], run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """``(run_id, key, split, fold, value)`` by run id, key, split, fold (value None: a failed fold).

    >>> folds_of(conn, ["0123abcd"])[:1]  # doctest: +SKIP
    [('0123abcd', 'f1', 'test', 0, 0.8)]
    """
    return fetch(conn, _FOLDS, (_ids(run_ids),))


def datasets_of(conn: psycopg.Connection[Any], run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """``(run_id, name, role, fingerprint, summary JSON, created_at)`` of the runs' datasets, by time.

    >>> [d[1:3] for d in datasets_of(conn, ["0123abcd"])]  # doctest: +SKIP
    [('digits', 'train')]
    """
    return fetch(conn, _DATASETS, (_ids(run_ids),))


def keys_of(conn: psycopg.Connection[Any], run_ids: Sequence[str]) -> list[tuple[str, str, str | None]]:
    """``(kind, key, split)``: every distinct param, metric, fold (with its split) and tag key the
    runs have (``split`` is None but for folds), in no particular order.

    >>> sorted(keys_of(conn, ["0123abcd"]))  # doctest: +SKIP
    [('folds', 'f1', 'test'), ('metrics', 'loss', None), ('params', 'lr', None)]
    """
    return [(str(k), str(key), split) for k, key, split in fetch(conn, _KEYS, (_ids(run_ids),) * 4)]


# -- one run's records -----------------------------------------------------------------


def tag_history_rows(conn: psycopg.Connection[Any], run_id: str) -> list[dict[str, Any]]:
    """A run's tag changes in order: key, value, changed_at.

    >>> [(t["key"], t["value"]) for t in tag_history_rows(conn, "0123abcd")]  # doctest: +SKIP
    [('stage', 'draft'), ('stage', 'tuning')]
    """
    return dicts(conn, _TAG_HISTORY, (run_id,))


def note_rows(conn: psycopg.Connection[Any], run_id: str) -> list[dict[str, Any]]:
    """A run's notes in order: created_at, text, author.

    >>> [n["text"] for n in note_rows(conn, "0123abcd")]  # doctest: +SKIP
    ['lr too high?']
    """
    return dicts(conn, _NOTES, (run_id,))


def artifact_rows(conn: psycopg.Connection[Any], run_id: str) -> list[dict[str, Any]]:
    """A run's artifacts in order: name, kind, sha256, size, media_type, metadata JSON, created_at.

    >>> [(a["name"], a["kind"]) for a in artifact_rows(conn, "0123abcd")]  # doctest: +SKIP
    [('model', 'model')]
    """
    return dicts(conn, _ARTIFACTS, (run_id,))


def pipeline_rows(conn: psycopg.Connection[Any], run_id: str) -> list[dict[str, Any]]:
    """A run's pipelines by name: name, version, structure JSON, text, created_at.

    >>> [p["name"] for p in pipeline_rows(conn, "0123abcd")]  # doctest: +SKIP
    ['pipeline']
    """
    return dicts(conn, _PIPELINES, (run_id,))
