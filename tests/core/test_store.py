"""The store file itself: schema versions, WAL, chunk encoding, foreign and damaged files."""

from __future__ import annotations

import math
import random
import sqlite3
import time

import pytest

import labledger as ll
from labledger.errors import StoreError, StoreVersionError
from labledger.store import Store
from labledger.store.codec import decode_chunk, decode_chunk_lists, encode_chunk
from labledger.store.schema import SCHEMA_VERSION
from labledger.store.sqlite import DB_FILENAME


def test_new_store_is_wal_with_a_schema_version(store_path):
    store = Store(store_path)
    db = store.db()
    assert db.journal_mode == "wal"
    assert {
        "experiments",
        "runs",
        "params",
        "metric_chunks",
        "metric_summary",
        "tags",
        "tag_history",
        "artifacts",
        "datasets",
        "notes",
        "folds",
        "schema_version",
    } <= set(db.table_names())
    assert store.schema_version() == SCHEMA_VERSION


@pytest.mark.sqlite_only
def test_store_from_a_newer_release_is_refused_clearly(store_path):
    Store(store_path).conn  # noqa: B018 - the first write connection creates the store
    conn = sqlite3.connect(store_path / DB_FILENAME)
    conn.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION + 1, time.time()))
    conn.commit()
    conn.close()
    with pytest.raises(StoreVersionError, match="Upgrade labledger") as info:
        Store(store_path)
    assert info.value.found == SCHEMA_VERSION + 1


@pytest.mark.sqlite_only
def test_a_file_that_is_not_sqlite_is_refused_clearly(store_path):
    store_path.mkdir()
    (store_path / DB_FILENAME).write_text("this is not a database, just some text\n" * 10)
    with pytest.raises(StoreError, match="not an SQLite database"):
        ll.start_run("x", store=store_path)


def test_a_truncated_store_is_refused_clearly(tmp_path):
    source = tmp_path / "good"
    with ll.start_run("x", store=source) as run:
        for i in range(5000):
            run.log_metric("m", float(i))
    store = ll.open_store(source)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = (source / DB_FILENAME).read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / DB_FILENAME).write_bytes(data[: len(data) // 3])
    with pytest.raises(StoreError, match=r"truncated or corrupt|cannot be read|malformed"):
        Store(broken)
        ll.runs(store=broken)


@pytest.mark.parametrize("n", [1, 7, 5000])
def test_chunks_round_trip_bit_for_bit(n):
    rng = random.Random(n)
    steps = sorted(rng.randrange(-(2**40), 2**40) for _ in range(n))
    epochs = [None if rng.random() < 0.3 else rng.randrange(0, 1000) for _ in range(n)]
    ts = [1.7e9 + i * 0.013 for i in range(n)]
    values = [rng.choice([math.nan, math.inf, -math.inf, -0.0, rng.uniform(-1e300, 1e300)]) for _ in range(n)]
    blob = encode_chunk(steps, epochs, ts, values)
    lists = decode_chunk_lists(blob)
    assert lists["step"] == steps and lists["epoch"] == epochs
    assert all(abs(a - b) < 1e-3 for a, b in zip(lists["timestamp"], ts, strict=True))
    assert [repr(v) for v in lists["value"]] == [repr(v) for v in values]
    arrays = decode_chunk(blob)
    assert arrays["step"].tolist() == steps
    assert [None if e == -1 else e for e in arrays["epoch"].tolist()] == epochs


@pytest.mark.sqlite_only
def test_a_training_loop_stores_under_24_bytes_per_point(store_path):
    with ll.start_run("size", store=store_path) as run:
        for step in range(2000):
            run.log_metrics({f"m{j}": math.sin(step * 0.01 + j) for j in range(20)}, step=step)
    store = ll.open_store(store_path)
    blob_bytes = store.conn.execute("SELECT sum(length(data)) FROM metric_chunks").fetchone()[0]
    assert blob_bytes / 40_000 < 24
