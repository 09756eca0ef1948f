"""A run's records in a PostgreSQL database — params, tags, notes, folds, datasets, pipelines,
artifacts — written as the SQLite store writes them.

Every write is one transaction and idempotent, as there: params, folds, pipelines and artifacts
already stored are kept as they are (a different value is ignored: the run refuses it before it
reaches the store), a dataset is replaced, a note or tag change sent again is not added twice.
Writes to a run that has ended raise :class:`~labledger.errors.RunFinishedError` (tags may change
after the end, and artifacts of kind ``code`` may be stored then); writes to a run that does not
exist raise :class:`~labledger.errors.RunNotFoundError`. JSON is stored as the SQLite store's text
(:func:`labledger.store.writes.dumps`), NaN as NULL, times (epoch seconds) as ``timestamptz``.

>>> from labledger.store.postgres import connect
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     insert_params(conn, "0123abcd", {"C": 1.0})
...     set_tags(conn, "0123abcd", {"stage": "baseline"}, time.time())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labledger.errors import RunNotFoundError
from labledger.store.postgres.writes_common import check_open, nan_as_null, refusing
from labledger.store.writes import dumps

if TYPE_CHECKING:
    import psycopg

    from labledger.records import ArtifactRecord, DatasetRecord, PipelineRecord

__all__ = [
    "add_note",
    "insert_artifact",
    "insert_dataset",
    "insert_folds",
    "insert_params",
    "insert_pipeline",
    "set_tags",
]

_INSERT_PARAMS = (
    "INSERT INTO params (run_id, key, value) SELECT %s, k, v FROM unnest(%s::text[], %s::text[]) AS p(k, v) "
    "ON CONFLICT (run_id, key) DO NOTHING"
)
_UPSERT_TAGS = (
    "INSERT INTO tags (run_id, key, value, updated_at) "
    "SELECT %s, k, v, to_timestamp(%s) FROM unnest(%s::text[], %s::text[]) AS t(k, v) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)
# a retried write adds no second entry; entries are numbered in the order of the tags given
_ADD_TAG_HISTORY = (
    "INSERT INTO tag_history (run_id, key, value, changed_at) "
    "SELECT %(run)s, t.k, t.v, to_timestamp(%(when)s) "
    "FROM unnest(%(keys)s::text[], %(values)s::text[]) WITH ORDINALITY AS t(k, v, i) "
    "WHERE NOT EXISTS (SELECT 1 FROM tag_history h WHERE h.run_id = %(run)s AND h.key = t.k "
    "AND h.value = t.v AND h.changed_at = to_timestamp(%(when)s)) ORDER BY t.i"
)
_RUN_EXISTS = "SELECT 1 FROM runs WHERE id = %s"
_ADD_NOTE = (
    "INSERT INTO notes (run_id, created_at, text, author) SELECT %(run)s, to_timestamp(%(when)s), %(text)s, "
    "%(author)s "
    "WHERE NOT EXISTS (SELECT 1 FROM notes WHERE run_id = %(run)s "
    "AND created_at = to_timestamp(%(when)s) AND text = %(text)s)"
)
_INSERT_FOLDS = (
    "INSERT INTO folds (run_id, key, split, fold, value) "
    "SELECT %s, %s, %s, f.i - 1, f.v FROM unnest(%s::float8[]) WITH ORDINALITY AS f(v, i) "
    "ON CONFLICT (run_id, key, split, fold) DO NOTHING"
)
_INSERT_FOLD_STATS = (
    "INSERT INTO fold_stats (run_id, key, split, n, mean, std, min, max) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, key, split) DO NOTHING"
)
_UPSERT_DATASET = (
    "INSERT INTO datasets (run_id, name, role, fingerprint, summary, created_at) "
    "VALUES (%s, %s, %s, %s, %s, to_timestamp(%s)) ON CONFLICT (run_id, name, role) DO UPDATE SET "
    "fingerprint = excluded.fingerprint, summary = excluded.summary, created_at = excluded.created_at"
)
_INSERT_PIPELINE = (
    "INSERT INTO pipelines (run_id, name, version, structure, text, created_at) "
    "VALUES (%s, %s, %s, %s, %s, to_timestamp(%s)) ON CONFLICT (run_id, name) DO NOTHING"
)
# an artifact stored before takes no id (ids count up as the SQLite store's do)
_INSERT_ARTIFACT = (
    "INSERT INTO artifacts (run_id, name, kind, sha256, size, media_type, metadata, created_at) "
    "SELECT %(run)s, %(name)s, %(kind)s, %(sha)s, %(size)s, %(media)s, %(meta)s, to_timestamp(%(when)s) "
    "WHERE NOT EXISTS (SELECT 1 FROM artifacts WHERE run_id = %(run)s AND name = %(name)s) "
    "ON CONFLICT (run_id, name) DO NOTHING"
)


def insert_params(conn: psycopg.Connection[Any], run_id: str, params: dict[str, Any]) -> None:
    """Record params (values as JSON text); a key already recorded keeps its value.

    Params are immutable: sending a key again with the same value changes nothing, and with another
    value changes nothing either (the run raises :class:`~labledger.errors.ParamConflictError`
    before the store sees it), as in the SQLite store.

    >>> insert_params(conn, run_id, {"C": 1.0, "kernel": "rbf"})  # doctest: +SKIP
    """
    if not params:
        return
    keys = list(params)
    with refusing(conn, run_id, "log params"), conn.transaction():
        check_open(conn, run_id, "log params")
        conn.execute(_INSERT_PARAMS, (run_id, keys, [dumps(params[k]) for k in keys]))


def set_tags(conn: psycopg.Connection[Any], run_id: str, tags: dict[str, str], when: float) -> None:
    """Set tags at ``when`` (epoch seconds) and append each to the tag history (once, however often sent).

    Tags may change after the run has ended.

    >>> set_tags(conn, run_id, {"stage": "baseline"}, time.time())  # doctest: +SKIP
    """
    if not tags:
        return
    keys = list(tags)
    values = [tags[k] for k in keys]
    with refusing(conn, run_id, "set tags"), conn.transaction():
        conn.execute(_UPSERT_TAGS, (run_id, when, keys, values))
        conn.execute(_ADD_TAG_HISTORY, {"run": run_id, "when": when, "keys": keys, "values": values})


def add_note(
    conn: psycopg.Connection[Any], run_id: str, text: str, when: float, author: str | None = None
) -> None:
    """Append a note written at ``when`` (epoch seconds), also to an ended run; the same note sent
    again is not added twice.

    >>> add_note(conn, run_id, "val acc plateaus after epoch 6", time.time(), "ada")  # doctest: +SKIP
    """
    with refusing(conn, run_id, "add a note"), conn.transaction():
        if conn.execute(_RUN_EXISTS, (run_id,)).fetchone() is None:
            raise RunNotFoundError(run_id)
        conn.execute(_ADD_NOTE, {"run": run_id, "when": when, "text": text, "author": author})


def insert_folds(
    conn: psycopg.Connection[Any],
    run_id: str,
    key: str,
    split: str,
    values: list[float],
    stats: dict[str, float | None],
) -> None:
    """Record a cross-validated metric's per-fold values and their statistics (NaN stored as NULL).

    ``stats`` holds ``mean``, ``std``, ``min`` and ``max`` as
    :func:`labledger.tracking.cv_design.fold_stats` computes them. Folds already recorded for
    ``(key, split)`` are kept as they are.

    >>> from labledger.tracking.cv_design import fold_stats
    >>> values = [0.91, 0.93, 0.92]
    >>> insert_folds(conn, run_id, "accuracy", "test", values, fold_stats(values))  # doctest: +SKIP
    """
    folds = [nan_as_null(v) for v in values]
    figures = [nan_as_null(stats[s]) for s in ("mean", "std", "min", "max")]
    with refusing(conn, run_id, "log folds"), conn.transaction():
        if folds:
            check_open(conn, run_id, "log folds")
            conn.execute(_INSERT_FOLDS, (run_id, key, split, folds))
        conn.execute(_INSERT_FOLD_STATS, (run_id, key, split, len(values), *figures))


def insert_dataset(conn: psycopg.Connection[Any], run_id: str, ds: DatasetRecord) -> None:
    """Record a dataset's fingerprint and summary; one recorded before under its name and role is replaced.

    >>> insert_dataset(conn, run_id, DatasetRecord("digits", "train", "9f2c...", {"rows": 1797}, time.time()))
    ... # doctest: +SKIP
    """
    with refusing(conn, run_id, "log a dataset"), conn.transaction():
        check_open(conn, run_id, "log a dataset")
        conn.execute(
            _UPSERT_DATASET, (run_id, ds.name, ds.role, ds.fingerprint, dumps(ds.summary), ds.created_at)
        )


def insert_pipeline(conn: psycopg.Connection[Any], run_id: str, pipe: PipelineRecord) -> None:
    """Record a feature pipeline; one recorded before under its name is kept.

    >>> insert_pipeline(conn, run_id, PipelineRecord("features", "a1b2", {"steps": []}, None, time.time()))
    ... # doctest: +SKIP
    """
    row = (run_id, pipe.name, pipe.version, dumps(pipe.structure), pipe.text, pipe.created_at)
    with refusing(conn, run_id, "log a pipeline"), conn.transaction():
        check_open(conn, run_id, "log a pipeline")
        conn.execute(_INSERT_PIPELINE, row)


def insert_artifact(conn: psycopg.Connection[Any], run_id: str, art: ArtifactRecord) -> None:
    """Record an artifact whose bytes are in the artifact store; one recorded before under its name is kept.

    Artifacts of kind ``code`` (the uncommitted diff captured at the start) may be stored after
    the run has ended; others raise :class:`~labledger.errors.RunFinishedError` then.

    >>> insert_artifact(conn, run_id, record)  # doctest: +SKIP
    """
    row = {
        "run": run_id,
        "name": art.name,
        "kind": art.kind,
        "sha": art.sha256,
        "size": art.size,
        "media": art.media_type,
        "meta": dumps(art.metadata),
        "when": art.created_at,
    }
    with refusing(conn, run_id, "log an artifact"), conn.transaction():
        if art.kind != "code":
            check_open(conn, run_id, "log an artifact")
        conn.execute(_INSERT_ARTIFACT, row)
