"""A store written by an older release opens, upgraded in place, in this one."""

from __future__ import annotations

import math
import re
import shutil
import sqlite3
import struct
import time
from pathlib import Path

import numpy as np
import pytest

import labledger as ll
from labledger.store import Store
from labledger.store.codec import VERSION as CODEC_VERSION
from labledger.store.codec import decode_chunk_lists
from labledger.store.fsck import fsck
from labledger.store.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, V5, migrate

from ..chunks_v1 import v1_chunk

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store-v1"


def test_v1_fixture_store_is_migrated_and_fully_readable(tmp_path):
    store_path = tmp_path / "store"
    shutil.copytree(FIXTURE, store_path)
    store = Store(store_path)
    assert store.schema_version() == 1  # opening reads; the first write connection upgrades the store
    versions = [r[0] for r in store.conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert store.schema_version() == SCHEMA_VERSION

    view = ll.get_run("legacy-exp/v1-run", store=store_path)
    assert view.status == "finished" and view.hypothesis == "written by schema v1"
    assert view.params == {"C": 1.0, "kernel": "rbf", "layers": [64, 32]}
    assert view.tags == {"team": "core"}
    loss = view.metric("loss")
    assert loss["step"].tolist() == list(range(101)) and math.isnan(loss["value"].iloc[-1])
    assert view.summary["acc"]["count"] == 100 and view.summary["loss"]["nan_count"] == 1
    assert view.fold_stats[("accuracy", "test")]["n"] == 3
    (art,) = view.artifacts
    with art.open("r") as fh:
        assert fh.read() == "a v1 model\n"
    assert view.datasets[0]["fingerprint"] == "abc123"
    failed = ll.get_run("legacy-exp/v1-failed", store=store_path)
    assert failed.status == "failed" and "RuntimeError: v1 failure" in failed.error

    # the upgraded store takes new runs next to the old ones, and the kinds of artifact added since
    config = tmp_path / "config.yaml"
    config.write_text("trainer:\n  max_epochs: 3\n")
    with ll.start_run("legacy-exp", store=store_path) as run:
        run.log_metric("loss", 0.1)
        run.log_artifact(config, kind="config")
    assert len(ll.runs("legacy-exp", store=store_path)) == 3
    assert [(a.name, a.kind) for a in ll.get_run(run.id, store=store_path).artifacts] == [
        ("config.yaml", "config")
    ]
    assert [a.name for a in ll.get_run("legacy-exp/v1-run", store=store_path).artifacts] == [art.name]
    # the rebuilt artifacts table still refuses writes to ended runs
    other = tmp_path / "late.txt"
    other.write_text("late")
    with pytest.raises(sqlite3.IntegrityError, match="read-only"), store.write() as conn:
        conn.execute(
            "INSERT INTO artifacts (run_id, name, kind, sha256, size, media_type, metadata, created_at) "
            "VALUES (?, 'late.txt', 'other', ?, 4, 'text/plain', '{}', 0)",
            (run.id, "0" * 64),
        )


def test_migrations_are_numbered_from_an_empty_file(tmp_path):
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 2
    store = Store(tmp_path / "fresh")
    cols = {r[1] for r in store.conn.execute("PRAGMA table_info(runs)")}
    assert {"lineage", "packages_sha", "reproduction_of"} <= cols


# -- v4 -> v5: metric chunks re-encoded -------------------------------------------------------------

FIXTURE_V4 = Path(__file__).resolve().parents[1] / "fixtures" / "store-v4"
# tests/fixtures/store-v4 was written by labledger at schema v4 (codec version 1): run "legacy-v4/v4-run"
# logged 600 steps of loss (float32-valued), acc and special (NaN, inf, -inf, -0.0 and numbers), all with
# epochs, and 200 points of sparse without epochs, flushed every 150 steps (several chunks per key), then
# 3 test and 3 train folds of accuracy; "legacy-v4/v4-failed" logged loss = inf and failed.


def _chunks(db: Path) -> dict[tuple[str, str, int], tuple[int, bytes]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT c.run_id, k.name, c.seq, c.count, c.data FROM metric_chunks c "
        "JOIN metric_keys k ON k.id = c.key_id"
    ).fetchall()
    conn.close()
    return {(run_id, key, seq): (count, bytes(data)) for run_id, key, seq, count, data in rows}


def _points(blob: bytes) -> dict[str, list[object]]:
    """A chunk's points, values as their bits (NaN payloads and -0.0 compare exactly)."""
    cols = decode_chunk_lists(blob)
    cols["value"] = [struct.pack("<d", v) for v in cols["value"]]
    return cols


def _history(view: ll.RunView, key: str) -> tuple[list[int], list[int], list[float], bytes]:
    cols = view.metric(key, as_="numpy")
    return (
        cols["step"].tolist(),
        cols["epoch"].tolist(),
        cols["timestamp"].tolist(),
        cols["value"].tobytes(),
    )


def test_v4_fixture_is_migrated_to_v5_every_chunk_reencoded_bit_for_bit(tmp_path):
    store_path = tmp_path / "store"
    shutil.copytree(FIXTURE_V4, store_path)
    db = store_path / "labledger.db"
    before = _chunks(db)
    assert len(before) >= 15 and {blob[0] for _, blob in before.values()} == {1}
    assert len({key for _, key, _ in before}) == 4 and max(seq for _, _, seq in before) >= 3
    points = {where: _points(blob) for where, (_, blob) in before.items()}
    run_id = next(run_id for run_id, key, _ in before if key == "sparse")
    keys = ("loss", "acc", "special", "sparse")
    old = {key: _history(ll.get_run(run_id, store=store_path), key) for key in keys}  # read as v4

    store = Store(store_path)
    assert store.schema_version() == 4
    versions = [r[0] for r in store.conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [1, 2, 3, 4, 5, 6] and store.schema_version() == SCHEMA_VERSION == 6

    after = _chunks(db)
    assert after.keys() == before.keys()
    for where, (count, blob) in after.items():
        assert blob[0] == CODEC_VERSION, where
        assert count == before[where][0] and _points(blob) == points[where], where
    assert sum(len(blob) for _, blob in after.values()) < 0.7 * sum(len(blob) for _, blob in before.values())

    view = ll.get_run("legacy-v4/v4-run", store=store_path)
    assert view.status != "running"  # v6: an ended run takes a note, with its author
    ll.add_note(view.id, "read again after the upgrade", author="ada", store=store_path)
    assert ll.get_run(view.id, store=store_path).notes[-1] == {
        "created_at": pytest.approx(time.time(), abs=60),
        "text": "read again after the upgrade",
        "author": "ada",
    }
    assert {key: _history(view, key) for key in keys} == old
    special = view.metric("special")["value"].to_numpy()
    assert np.isnan(special).any() and np.isposinf(special).any() and np.isneginf(special).any()
    assert (np.signbit(special) & (special == 0)).any()  # -0.0 kept
    assert view.metric("loss")["epoch"].iloc[-1] == 5 and view.metric("sparse")["epoch"].isna().all()
    assert view.status == "finished" and view.hypothesis == "written by schema v4"
    assert view.params == {"lr": 0.01, "optimizer": "adam", "layers": [128, 64]}
    assert view.fold_stats[("accuracy", "test")]["n"] == 3
    failed = ll.get_run("legacy-v4/v4-failed", store=store_path)
    assert failed.status == "failed" and "RuntimeError: v4 failure" in failed.error
    assert math.isinf(failed.metric("loss")["value"].iloc[0])
    assert not [p for p in fsck(store_path).problems if p.kind == "damaged chunk"]

    with ll.start_run("legacy-v4", store=store_path) as run:  # the migrated store takes new runs
        run.log_metric("loss", 0.5, step=1)
    assert ll.get_run(run.id, store=store_path).metric("loss")["value"].tolist() == [0.5]


def test_a_v4_store_opened_read_only_is_read_without_being_migrated(tmp_path):
    store_path = tmp_path / "store"
    shutil.copytree(FIXTURE_V4, store_path)
    db = store_path / "labledger.db"
    image = db.read_bytes()
    before = _chunks(db)
    store_path.chmod(0o555)
    db.chmod(0o444)
    try:
        view = ll.get_run("legacy-v4/v4-run", store=store_path)
        for key in ("loss", "acc", "special", "sparse"):
            wanted = [
                _points(blob)
                for (run_id, name, _), (_, blob) in sorted(before.items())
                if run_id == view.id and name == key
            ]
            step, epoch, timestamp, value = _history(view, key)
            assert step == [s for w in wanted for s in w["step"]]
            assert epoch == [-1 if e is None else e for w in wanted for e in w["epoch"]]
            assert timestamp == [t for w in wanted for t in w["timestamp"]]
            assert value == b"".join(v for w in wanted for v in w["value"])
        assert ll.open_store(store_path, create=False).schema_version() == 4
    finally:
        store_path.chmod(0o755)
        db.chmod(0o644)
    assert db.read_bytes() == image


def test_the_creation_script_is_the_migrations_replayed():
    def schema_of(conn: sqlite3.Connection) -> set[tuple[str, str, str, str]]:
        def normal(sql: str) -> str:  # whitespace and quoting aside
            return re.sub(r"\s*([(),])\s*", r"\1", re.sub(r"\s+", " ", sql.replace('"', ""))).strip()

        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return {(kind, name, table, normal(sql)) for kind, name, table, sql in rows}

    replayed = sqlite3.connect(":memory:")
    for step in MIGRATIONS:
        migrate(replayed, step)
    created = sqlite3.connect(":memory:")
    created.executescript(SCHEMA)
    assert schema_of(created) == schema_of(replayed)
    assert any(callable(step) for step in MIGRATIONS) and all(isinstance(s, str) for s in MIGRATIONS[:4])


def test_v5_reencodes_in_bounded_batches_and_leaves_a_damaged_chunk_as_it_is():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE metric_chunks (count INTEGER, data BLOB)")
    blobs = [
        v1_chunk(
            list(range(i, i + n)), [None] * n, [1.7e9 + j for j in range(n)], [1 / (j + 1) for j in range(n)]
        )
        for i, n in enumerate((1, 50, 3000, 7, 0, 400))
    ]
    conn.executemany("INSERT INTO metric_chunks VALUES (?, ?)", [(1, b) for b in blobs])
    conn.execute("INSERT INTO metric_chunks VALUES (?, x'01020304')", (3,))
    V5(conn, batch_bytes=1000, batch_rows=2)  # several batches, one chunk larger than a batch
    rows = conn.execute("SELECT data FROM metric_chunks ORDER BY rowid").fetchall()
    assert [bytes(r[0])[0] for r in rows[:-1]] == [CODEC_VERSION] * len(blobs)
    assert [_points(bytes(r[0])) for r in rows[:-1]] == [_points(b) for b in blobs]
    assert bytes(rows[-1][0]) == b"\x01\x02\x03\x04"
    V5(conn)  # nothing left to do
    assert conn.execute("SELECT count(*) FROM metric_chunks WHERE substr(data, 1, 1) = x'01'").fetchone() == (
        1,
    )
