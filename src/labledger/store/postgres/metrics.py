"""Metric batches in a PostgreSQL database: chunks bulk-copied, summaries upserted, batches once.

A batch is stored as the SQLite store stores it — one chunk a key in the codec of
:mod:`labledger.store.codec`, under the batch's sequence number, and the per-key summaries
updated — but the chunks travel with ``COPY ... FROM STDIN`` (binary) instead of one
``INSERT`` each. A batch a client names (its *batch id*) is recorded in ``ingested_batches``
in the same transaction: sent again after a failure, it is recognised and nothing is stored
twice. A write to a run that has ended is refused by the database's trigger and raised as
:class:`~labledger.errors.RunFinishedError`.

>>> from labledger.records import MetricBatch, Series
>>> from labledger.store.postgres import connect
>>> batch = MetricBatch("0123abcd", 0, {"loss": Series([0, 1], [None, None], [1.7e9, 1.7e9 + 1], [0.9, 0.7])})
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     write_batch(conn, batch, batch_id="c0ffee-0"), write_batch(conn, batch, batch_id="c0ffee-0")
...     [(key, n) for key, n, _ in read_chunks(conn, "0123abcd")]
(True, False)
[('loss', 2)]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from labledger.errors import RunFinishedError, RunNotFoundError, StoreError
from labledger.store.batches import encode_batch
from labledger.store.postgres.connection import describe, one_line
from labledger.store.postgres.v1 import RUN_ENDED_SQLSTATE

if TYPE_CHECKING:
    import psycopg

    from labledger.records import MetricBatch

__all__ = ["COPY_CHUNKS", "encode_batch", "read_chunks", "summaries", "write_batch"]

#: The bulk path of a batch's chunks (binary ``COPY``; the column types follow in :data:`_COPY_TYPES`).
COPY_CHUNKS = "COPY metric_chunks (run_id, key_id, seq, count, data) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = ("text", "int8", "int8", "int4", "bytea")
#: What :class:`~labledger.errors.RunFinishedError` says was refused.
_ACTION = "log metrics"

_LOCK_RUN = "SELECT status FROM runs WHERE id = %s FOR NO KEY UPDATE"
_RECORD_BATCH = (
    "INSERT INTO ingested_batches (run_id, batch_id) VALUES (%s, %s) "
    "ON CONFLICT (run_id, batch_id) DO NOTHING"
)
_KEY_IDS = "SELECT name, id FROM metric_keys WHERE name = ANY(%s)"
# sorted names: writers adding the same new keys take their index locks in one order (no deadlock)
_ADD_KEYS = (
    "INSERT INTO metric_keys (name) SELECT n FROM unnest(%s::text[]) AS n ORDER BY n "
    "ON CONFLICT (name) DO NOTHING"
)
_HELD = "SELECT 1 FROM metric_chunks WHERE run_id = %s AND key_id = %s AND seq = %s"
# min and max skip NULL (a batch of NaN only) as LEAST and GREATEST do; the last value is the batch's
_UPSERT_SUMMARY = (
    "INSERT INTO metric_summary AS m (run_id, key, count, nan_count, last, last_step, last_time, min, max) "
    "VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s), %s, %s) "
    "ON CONFLICT (run_id, key) DO UPDATE SET count = m.count + excluded.count, "
    "nan_count = m.nan_count + excluded.nan_count, last = excluded.last, last_step = excluded.last_step, "
    "last_time = excluded.last_time, min = LEAST(m.min, excluded.min), max = GREATEST(m.max, excluded.max)"
)
_HEARTBEAT = "UPDATE runs SET heartbeat = now() WHERE id = %s"
_CHUNKS = (
    "SELECT k.name, c.count, c.data FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id "
    "WHERE c.run_id = %s ORDER BY k.name, c.seq"
)
_KEY_CHUNKS = (
    "SELECT k.name, c.count, c.data FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id "
    "WHERE c.run_id = %s AND k.name = %s ORDER BY c.seq"
)
_BRIEF = (
    "SELECT run_id, key, last, min, max, count FROM metric_summary "
    "WHERE run_id = ANY(%s) ORDER BY run_id, key"
)
_SUMMARIES = (
    "SELECT run_id, key, last, min, max, count, nan_count, last_step, extract(epoch FROM last_time)::float8 "
    "FROM metric_summary WHERE run_id = ANY(%s) ORDER BY run_id, key"
)


def _key_ids(conn: psycopg.Connection[Any], names: list[str]) -> dict[str, int]:
    """The ids of metric keys ``names``, the missing ones created."""
    ids = dict(conn.execute(_KEY_IDS, (names,)).fetchall())
    missing = sorted(set(names) - set(ids))
    if missing:
        conn.execute(_ADD_KEYS, (missing,))
        ids.update(conn.execute(_KEY_IDS, (missing,)).fetchall())
    return {str(name): int(kid) for name, kid in ids.items()}


def write_batch(conn: psycopg.Connection[Any], batch: MetricBatch, batch_id: str | None = None) -> bool:
    """Store a metric batch in one transaction; ``False`` when it was stored before (nothing changes).

    A batch is known by ``batch_id`` when given (recorded in ``ingested_batches``), and in any
    case by the run's sequence number (``batch.seq``), as the SQLite store knows it. The chunks are
    encoded before the transaction opens and sent with one binary ``COPY``; the summaries are
    upserted with one statement; the run's heartbeat is renewed. Writers of one run queue on the
    run's row. Raises :class:`~labledger.errors.RunFinishedError` when the run has ended,
    :class:`~labledger.errors.RunNotFoundError` when there is no such run, and
    :class:`~labledger.errors.StoreError` when the database fails (nothing is stored then).

    >>> write_batch(conn, batch, batch_id="host-17:run-3:batch-42")  # doctest: +SKIP
    True
    """
    import psycopg

    chunks, sums = encode_batch(batch)
    run_id = batch.run_id
    status = "ended"
    try:
        with conn.transaction():
            row = conn.execute(_LOCK_RUN, (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(run_id)
            status = str(row[0])
            if batch_id is not None and conn.execute(_RECORD_BATCH, (run_id, batch_id)).rowcount == 0:
                return False
            if not chunks:
                return True
            ids = _key_ids(conn, [key for key, _, _ in chunks])
            if conn.execute(_HELD, (run_id, ids[chunks[0][0]], batch.seq)).fetchone():
                return False  # a batch is all there or not at all: its first chunk tells
            with conn.cursor() as cur, cur.copy(COPY_CHUNKS) as copy:
                copy.set_types(list(_COPY_TYPES))
                for key, n, data in chunks:
                    copy.write_row((run_id, ids[key], batch.seq, n, data))
            with conn.cursor() as cur:
                cur.executemany(_UPSERT_SUMMARY, [(run_id, *s) for s in sums])
            conn.execute(_HEARTBEAT, (run_id,))
    except psycopg.Error as e:
        if e.sqlstate == RUN_ENDED_SQLSTATE:
            raise RunFinishedError(run_id, status, _ACTION) from e
        raise StoreError(describe(conn), f"cannot store metrics of run {run_id}: {one_line(e)}") from e
    return True


def read_chunks(
    conn: psycopg.Connection[Any], run_id: str, key: str | None = None
) -> Iterator[tuple[str, int, bytes]]:
    """``(key, points, chunk)`` of a run's metric chunks (one key, or all by name), in logging order,
    as :meth:`labledger.store.backend.Backend.metric_chunks` gives them.

    Decode a chunk with :func:`labledger.store.codec.decode_chunk_lists` or
    :func:`~labledger.store.codec.decode_chunk`.

    >>> from labledger.store.codec import decode_chunk_lists
    >>> [decode_chunk_lists(c)["value"] for _, _, c in read_chunks(conn, run_id, "loss")]  # doctest: +SKIP
    [[0.9, 0.7]]
    """
    sql, params = (_CHUNKS, (run_id,)) if key is None else (_KEY_CHUNKS, (run_id, key))
    with conn.cursor(binary=True) as cur:
        for name, count, data in cur.stream(sql, params):
            yield str(name), int(count), bytes(data)


def summaries(
    conn: psycopg.Connection[Any], run_ids: Sequence[str], brief: bool = False
) -> list[tuple[Any, ...]]:
    """``(run_id, key, last, min, max, count, nan_count, last_step, last_time)`` per metric of the
    runs (the first six when ``brief``), as :meth:`labledger.store.backend.Backend.summaries_of`
    gives them: ``last_time`` in epoch seconds (PostgreSQL keeps microseconds).

    >>> summaries(conn, [run_id], brief=True)  # doctest: +SKIP
    [('0123abcd', 'loss', 0.7, 0.7, 0.9, 2)]
    """
    rows = conn.execute(_BRIEF if brief else _SUMMARIES, (list(run_ids),)).fetchall()
    return [tuple(r) for r in rows]
