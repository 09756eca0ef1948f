"""Metric batches in PostgreSQL (COPY, summaries, batch ids), against a real throw-away cluster,
compared with what the SQLite store makes of the same batches."""

from __future__ import annotations

import math
import random
import struct
import threading
import time

import psycopg
import pytest

from labledger.errors import RunFinishedError, RunNotFoundError
from labledger.records import MetricBatch, Series
from labledger.store.codec import decode_chunk_lists
from labledger.store.postgres import connect, upgrade
from labledger.store.postgres.metrics import COPY_CHUNKS, encode_batch, read_chunks, summaries, write_batch
from labledger.store.sqlite import Store

RUN = "0123456789abcdef0123456789abcdef"
KEYS = ("loss", "val/acc", "lr")
SPECIALS = (math.nan, math.inf, -math.inf, -0.0, 0.0)


def _start(conn: psycopg.Connection, run_id: str = RUN) -> None:
    conn.execute("INSERT INTO experiments (name) VALUES (%s) ON CONFLICT DO NOTHING", ("exp",))
    conn.execute(
        "INSERT INTO runs (id, experiment_id, name, status, start_time, heartbeat) "
        "SELECT %s, id, %s, %s, now(), now() FROM experiments WHERE name = %s",
        (run_id, run_id[-8:], "running", "exp"),
    )


def _end(conn: psycopg.Connection, run_id: str = RUN) -> None:
    conn.execute("UPDATE runs SET status = %s, end_time = now() WHERE id = %s", ("finished", run_id))


def _sqlite_store(tmp_path, run_id: str = RUN) -> Store:
    store = Store(tmp_path / "sqlite")
    store.create()
    row = dict.fromkeys(("parent_id", "author", "hypothesis", "host", "pid", "source", "environment"))
    row |= {"id": run_id, "experiment_id": store.ensure_experiment("exp"), "name": "r", "kind": "offline"}
    store.insert_run({**row, "reproduction_of": None, "start_time": time.time()})
    return store


def _batch(seq: int, n: int = 10_000, keys: tuple[str, ...] = KEYS, seed: int = 0, run_id: str = RUN):
    """``n`` points a key from step ``seq * n``: specials sprinkled in, epochs sometimes missing."""
    rng = random.Random(seed * 1000 + seq)
    series = {}
    for k, key in enumerate(keys):
        first = seq * n
        values = [rng.gauss(k, 1.0) for _ in range(n)]
        for i, special in enumerate(SPECIALS):
            values[(i + 1) * n // 7 + k] = special
        series[key] = Series(
            list(range(first, first + n)),
            [None if i % 5 == 0 else (first + i) // 100 for i in range(n)],
            [1.7e9 + 0.0123 * (first + i) + rng.random() * 1e-3 for i in range(n)],
            values,
        )
    return MetricBatch(run_id, seq, series)


def _bits(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


def _same_summaries(pg_rows: list[tuple], sqlite_rows: list[tuple]) -> None:
    """Equal row by row (NaN equal to NaN, -0.0 to 0.0); ``last_time`` to the microsecond PostgreSQL keeps."""
    assert len(pg_rows) == len(sqlite_rows)
    for pg_row, sqlite_row in zip(sorted(pg_rows), sorted(sqlite_rows), strict=True):
        *pg_fields, pg_time = pg_row
        *sqlite_fields, sqlite_time = sqlite_row
        assert [repr(v) for v in pg_fields] == [repr(v) for v in sqlite_fields]
        assert pg_time == pytest.approx(sqlite_time, abs=1e-6)


def _pg_chunks(conn, run_id: str = RUN) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for key, _, data in read_chunks(conn, run_id):
        out.setdefault(key, []).append(data)
    return out


def _sqlite_chunks(store: Store, run_id: str = RUN) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for key, _, data in store.metric_chunks(run_id):
        out.setdefault(key, []).append(bytes(data))
    return out


def test_a_batch_round_trips_bit_for_bit_as_in_the_sqlite_store(pg_conn, tmp_path):
    upgrade(pg_conn)
    _start(pg_conn)
    batch = _batch(0)
    assert write_batch(pg_conn, batch, batch_id="b-0") is True
    store = _sqlite_store(tmp_path)
    store.write_metrics(batch)

    stored = _pg_chunks(pg_conn)
    assert stored == _sqlite_chunks(store)  # the same codec, the same chunking: the same bytes
    assert sorted(stored) == sorted(KEYS)
    for key in KEYS:
        (chunk,) = stored[key]
        cols = decode_chunk_lists(chunk)
        given = batch.series[key]
        assert _bits(cols["value"]) == _bits(given.values)
        assert cols["step"] == given.steps and cols["epoch"] == given.epochs
        assert cols["timestamp"] == [int(t * 1000.0) / 1000.0 for t in given.timestamps]
        assert [(k, n) for k, n, _ in read_chunks(pg_conn, RUN, key)] == [(key, len(given.steps))]
    _same_summaries(summaries(pg_conn, [RUN]), store.summaries_of([RUN]))
    assert [r[:6] for r in summaries(pg_conn, [RUN])] == summaries(pg_conn, [RUN], brief=True)


def test_the_same_batch_id_stores_once(pg_conn):
    upgrade(pg_conn)
    _start(pg_conn)
    batch = _batch(0, n=500)
    assert write_batch(pg_conn, batch, batch_id="client-1:7") is True
    before = summaries(pg_conn, [RUN])
    assert write_batch(pg_conn, batch, batch_id="client-1:7") is False
    assert summaries(pg_conn, [RUN]) == before
    assert [r[5] for r in before] == [500] * len(KEYS)
    assert pg_conn.execute("SELECT count(*) FROM metric_chunks").fetchone() == (len(KEYS),)
    assert pg_conn.execute("SELECT batch_id FROM ingested_batches").fetchall() == [("client-1:7",)]
    # without a batch id, the run's sequence number tells a batch sent again
    assert write_batch(pg_conn, batch) is False
    assert summaries(pg_conn, [RUN]) == before


def test_batches_in_sequence_continue_steps_and_summaries_as_in_sqlite(pg_conn, tmp_path):
    upgrade(pg_conn)
    _start(pg_conn)
    store = _sqlite_store(tmp_path)
    first, second = _batch(0, n=2_000, seed=1), _batch(1, n=2_000, seed=2)
    second.series["loss"].values[-1] = math.nan  # a NaN last value
    second.series["lr"].values[:] = [math.nan] * 2_000  # a batch of NaN only: min and max stay
    second.series["val/acc"].values[:] = [0.5] * 2_000  # within the range so far
    second.series["only-later"] = Series([3], [None], [1.8e9], [2.5])
    second.series["empty"] = Series()
    for i, batch in enumerate((first, second)):
        assert write_batch(pg_conn, batch, batch_id=f"b-{i}") is True
        store.write_metrics(batch)
        _same_summaries(summaries(pg_conn, [RUN]), store.summaries_of([RUN]))
    stored = _pg_chunks(pg_conn)
    assert stored == _sqlite_chunks(store)
    steps = [s for c in stored["loss"] for s in decode_chunk_lists(c)["step"]]
    assert steps == list(range(4_000))
    rows = {r[1]: r for r in summaries(pg_conn, [RUN])}
    assert rows["loss"][2] is None and rows["loss"][5] == 4_000
    assert rows["val/acc"][2:5] == (0.5, -math.inf, math.inf)
    assert rows["lr"][3:5] == (-math.inf, math.inf) and rows["only-later"][2:6] == (2.5, 2.5, 2.5, 1)
    assert rows["lr"][6] == 2_000 + 1  # every NaN of both batches counted (one special in the first)
    assert "empty" not in rows


def test_concurrent_writers_of_different_runs_all_land(pg_dsn, pg_conn):
    upgrade(pg_conn)
    runs = [f"{i:032x}" for i in range(1, 5)]
    for run_id in runs:
        _start(pg_conn, run_id)
    start = threading.Barrier(len(runs))
    errors: list[BaseException] = []

    def writer(run_id: str) -> None:
        try:
            with connect(pg_dsn) as conn:
                start.wait()
                for seq in range(10):  # the same new keys in every run: created once
                    batch = _batch(seq, n=1_000, keys=("loss", "acc", f"own-{run_id[-1]}"), run_id=run_id)
                    assert write_batch(conn, batch, batch_id=f"{run_id}:{seq}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(run_id,)) for run_id in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    counts = {(r[0], r[1]): r[5] for r in summaries(pg_conn, runs)}
    assert len(counts) == 3 * len(runs) and set(counts.values()) == {10_000}
    assert pg_conn.execute("SELECT count(*) FROM metric_keys").fetchone() == (2 + len(runs),)
    assert pg_conn.execute("SELECT count(*) FROM ingested_batches").fetchone() == (10 * len(runs),)


def test_a_write_after_the_run_ended_is_refused(pg_conn):
    upgrade(pg_conn)
    _start(pg_conn)
    assert write_batch(pg_conn, _batch(0, n=100), batch_id="b-0")
    _end(pg_conn)
    with pytest.raises(RunFinishedError, match=f"run {RUN} has ended with status 'finished'") as info:
        write_batch(pg_conn, _batch(1, n=100), batch_id="b-1")
    assert info.value.status == "finished"
    assert isinstance(info.value.__cause__, psycopg.Error)  # the database's trigger refused it
    assert pg_conn.execute("SELECT count(*) FROM metric_chunks").fetchone() == (len(KEYS),)
    assert pg_conn.execute("SELECT batch_id FROM ingested_batches").fetchall() == [("b-0",)]
    # a batch stored before the end, sent again, is acknowledged
    assert write_batch(pg_conn, _batch(0, n=100), batch_id="b-0") is False
    with pytest.raises(RunNotFoundError):
        write_batch(pg_conn, _batch(0, n=10, run_id="f" * 32))


def test_chunks_travel_by_copy(pg_conn, monkeypatch):
    upgrade(pg_conn)
    _start(pg_conn)
    copied: list[str] = []
    original = psycopg.Cursor.copy

    def spy(self, statement, *args, **kwargs):
        copied.append(str(statement))
        return original(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", spy)
    assert write_batch(pg_conn, _batch(0, n=100))
    assert copied == [COPY_CHUNKS]
    assert pg_conn.execute("SELECT count(*) FROM metric_chunks").fetchone() == (len(KEYS),)


def test_a_million_points_in_a_hundred_batches(pg_conn):
    """Throughput of one writer: prints points/s, end to end and with the encoding apart."""
    upgrade(pg_conn)
    _start(pg_conn)
    batches = [_batch(seq, n=2_500, keys=("loss", "acc", "lr", "grad_norm"), seed=3) for seq in range(100)]
    assert sum(len(b) for b in batches) == 1_000_000
    began = time.perf_counter()
    for batch in batches[:10]:
        encode_batch(batch)
    encoding = (time.perf_counter() - began) * 10
    began = time.perf_counter()
    for seq, batch in enumerate(batches):
        assert write_batch(pg_conn, batch, batch_id=f"b-{seq}")
    took = time.perf_counter() - began
    print(
        f"\n1M points in 100 batches: {1e6 / took:,.0f} points/s end to end ({took:.2f} s); "
        f"encoding alone ~{1e6 / encoding:,.0f} points/s"
    )
    assert {r[5] for r in summaries(pg_conn, [RUN])} == {250_000}
