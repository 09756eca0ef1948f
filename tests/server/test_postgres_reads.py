"""The reads of a PostgreSQL store give what the SQLite store gives for the same records.

A SQLite store is filled by labledger itself (runs with params, tags, notes, metrics in several
chunks, folds, datasets, a pipeline, artifacts, a child, a failed run, a reproduction), copied
table by table into a fresh PostgreSQL database, and every read is asked of both.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sklearn.preprocessing import StandardScaler

import labledger as ll
from labledger.errors import StoreError
from labledger.store import open_store
from labledger.store.codec import decode_chunk_lists
from labledger.store.postgres import reads, upgrade
from labledger.store.postgres.schema import TABLES as SCHEMA_TABLES
from labledger.store.sqlite import Store

#: The run-record tables in an order their references allow (the schema lists them so), and the
#: columns holding times.
TABLES = SCHEMA_TABLES[: SCHEMA_TABLES.index("settings") + 1]
TIMES = {"created_at", "start_time", "end_time", "heartbeat", "updated_at", "changed_at", "last_time"}


def copy_store(db: Path, conn: psycopg.Connection) -> None:
    """Copy every record of the SQLite database ``db`` into PostgreSQL with plain INSERTs.

    Runs go in open (records of ended runs are refused) and get their status at the end.
    """
    source = sqlite3.connect(db)
    source.row_factory = sqlite3.Row
    try:
        with conn.transaction():
            for table in TABLES:
                order = " ORDER BY rowid" if table == "runs" else ""  # parents before their children
                for row in source.execute(f"SELECT * FROM {table}{order}"):
                    values = dict(row)
                    if table == "runs":
                        values |= {"status": "running", "end_time": None}
                    holders = ", ".join("to_timestamp(%s)" if c in TIMES else "%s" for c in values)
                    conn.execute(
                        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({holders})",
                        list(values.values()),
                    )
            for run_id, status, end_time in source.execute("SELECT id, status, end_time FROM runs"):
                conn.execute(
                    "UPDATE runs SET status = %s, end_time = to_timestamp(%s) WHERE id = %s",
                    (status, end_time, run_id),
                )
    finally:
        source.close()


def same(pg: Any, lite: Any, where: str = "result") -> None:
    """Equal values of equal types (dict keys in the same order: a row's columns); floats to the
    microsecond (NaN equal to NaN)."""
    if lite is None or pg is None:
        assert pg is lite, f"{where}: {pg!r} != {lite!r}"
        return
    assert type(pg) is type(lite), f"{where}: {type(pg).__name__} != {type(lite).__name__} ({pg!r}, {lite!r})"
    if isinstance(lite, float):
        assert (math.isnan(pg) and math.isnan(lite)) or pg == pytest.approx(lite, abs=1e-6), where
    elif isinstance(lite, dict):
        assert list(pg) == list(lite), f"{where}: keys {list(pg)} != {list(lite)}"
        for k in lite:
            same(pg[k], lite[k], f"{where}[{k!r}]")
    elif isinstance(lite, list | tuple):
        assert len(pg) == len(lite), f"{where}: {pg!r} != {lite!r}"
        for i, (a, b) in enumerate(zip(pg, lite, strict=True)):
            same(a, b, f"{where}[{i}]")
    else:
        assert pg == lite, f"{where}: {pg!r} != {lite!r}"


def by_key(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows in a fixed order (for reads that promise none); None sorts first."""
    return sorted(rows, key=lambda r: tuple((v is not None, v) for v in r))


@dataclass
class Ledger:
    store: Store
    conn: psycopg.Connection
    base: str
    child: str
    failed: str
    repro: str
    sha: str


@pytest.fixture
def ledger(tmp_path: Path, pg_conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    folder = tmp_path / "ledger"
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    params = {"lr": 0.1, "layers": [64, 32]}
    run = ll.start_run("exp-a", name="base", params=params, tags={"stage": "a"}, hypothesis="h", store=folder)
    run.set_tag("stage", "b")
    run.note("lr looks high")
    for step in range(5):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.flush()
    for step in range(5, 9):
        run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 10, "bad": math.nan}, step=step)
    run.flush()
    run.log_folds("f1", [0.8, 0.9, math.nan])
    run.log_folds("f1", [0.7, 0.75], split="valid")
    run.log_dataset("digits", fingerprint="d1g1t5", role="train", rows=1437)
    run.log_dataset("digits", fingerprint="d1g1t5-t", role="test", rows=360)
    run.log_pipeline(StandardScaler(), name="scaler")
    sha = run.log_artifact(model, kind="model", name="model").sha256
    run.log_artifact(model, kind="checkpoint", name="epoch-9")
    child = ll.start_run("exp-a", name="child", parent=run, store=folder, params={"fold": 1})
    child.end()
    run.end()
    failed = ll.start_run("exp-b", name="broken", store=folder)
    failed.end("failed", error="ValueError: boom")
    monkeypatch.setenv("LABLEDGER_REPRODUCTION_OF", run.id)
    repro = ll.start_run("exp-a", name="again", store=folder)
    repro.end()
    store = open_store(folder)
    assert isinstance(store, Store)
    store.ensure_experiment("empty", "no runs yet")
    store.set_setting("ui.theme", "dark")
    store.set_setting("ui.width", "120")
    store.set_setting("direction.loss", "min")
    upgrade(pg_conn)
    copy_store(store.path / "labledger.db", pg_conn)
    return Ledger(store, pg_conn, run.id, child.id, failed.id, repro.id, sha)


def test_the_copy_holds_every_record(ledger: Ledger) -> None:
    """The fixture exercises each table, and metrics in more than one chunk."""
    for table in TABLES:
        assert ledger.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
    chunks = ledger.conn.execute("SELECT count(*) FROM metric_chunks WHERE run_id = %s", (ledger.base,))
    assert chunks.fetchone()[0] > 2


def test_runs_and_experiments(ledger: Ledger) -> None:
    conn, store = ledger.conn, ledger.store
    for run_id in (ledger.base, ledger.child, ledger.failed, ledger.repro, "nope"):
        same(reads.run_row(conn, run_id), store.run_row(run_id), run_id)
        same(reads.child_rows(conn, run_id), store.child_rows(run_id), run_id)
    assert reads.run_row(conn, ledger.failed)["error"] == "ValueError: boom"
    for experiment, name in (("exp-a", "base"), ("exp-a", "child"), ("exp-b", "broken"), ("exp-b", "base")):
        same(reads.run_row_by_name(conn, experiment, name), store.run_row_by_name(experiment, name), name)
    for prefix in ("", ledger.base[:4], ledger.failed[:12], ledger.repro, "zz", "0"):
        for limit in (1, 2, 10):
            same(
                reads.run_rows_by_prefix(conn, prefix, limit), store.run_rows_by_prefix(prefix, limit), prefix
            )
    same(reads.experiment_rows(conn), store.experiment_rows())
    empty = reads.experiment_rows(conn)[0]
    assert (empty["name"], empty["runs"], empty["running"], empty["last_run"]) == ("empty", 0, None, None)
    assert len(reads.run_rows_by_prefix(conn, "", 10)) == 4
    same(reads.run_ids(conn), store.run_ids())
    same(reads.runs_version(conn), store.runs_version())
    for since in (0.0, store.run_row(ledger.repro)["start_time"], 4e9):
        got = reads.latest_reproduction(conn, ledger.base, since)
        same(got, store.latest_reproduction(ledger.base, since), str(since))
    assert reads.latest_reproduction(conn, ledger.base, 0.0) == ledger.repro


def test_records_of_many_runs(ledger: Ledger) -> None:
    conn, store = ledger.conn, ledger.store
    everyone = [ledger.repro, ledger.base, "nope", ledger.child, ledger.failed]
    for ids in (everyone, [ledger.base], [], ["nope"]):
        for name in ("params_of", "tags_of", "keys_of"):
            same(by_key(getattr(reads, name)(conn, ids)), by_key(getattr(store, name)(ids)), name)
        for name in ("summaries_of", "fold_stats_of"):
            for brief in (False, True):
                pg, lite = (
                    getattr(reads, name)(conn, ids, brief=brief),
                    getattr(store, name)(ids, brief=brief),
                )
                same(by_key(pg), by_key(lite), f"{name} brief={brief}")
        same(reads.folds_of(conn, ids), store.folds_of(ids), "folds_of")
        same(reads.datasets_of(conn, ids), store.datasets_of(ids), "datasets_of")
    assert len(reads.params_of(conn, everyone)) == 3 and len(reads.folds_of(conn, everyone)) == 5


def test_records_of_one_run(ledger: Ledger) -> None:
    conn, store = ledger.conn, ledger.store
    for run_id in (ledger.base, ledger.child, "nope"):
        for name in ("tag_history_rows", "note_rows", "artifact_rows", "pipeline_rows"):
            same(getattr(reads, name)(conn, run_id), getattr(store, name)(run_id), f"{name}({run_id})")
        for artifact in ("model", "epoch-9", "nope"):
            same(reads.artifact_sha(conn, run_id, artifact), store.artifact_sha(run_id, artifact), artifact)
    assert len(reads.tag_history_rows(conn, ledger.base)) == 2


def test_store_wide_reads(ledger: Ledger) -> None:
    conn, store = ledger.conn, ledger.store
    for sha in (ledger.sha, "0" * 64):
        for name in ("model", "epoch-9", "other"):
            same(reads.artifact_by_content(conn, sha, name), store.artifact_by_content(sha, name), name)
    assert reads.artifact_by_content(conn, ledger.sha, "other") == (ledger.base, "epoch-9")
    packages = store.run_row(ledger.base)["packages_sha"]
    for sha in (packages, "0" * 64):
        same(reads.package_set(conn, sha), store.package_set(sha), "package_set")
    assert reads.package_set(conn, packages) is not None
    for key in ("ui.theme", "direction.loss", "ui", "nope"):
        same(reads.setting(conn, key), store.setting(key), key)
    for prefix in ("", "ui.", "direction.", "u", "nope", "%"):
        same(dict(sorted(reads.settings(conn, prefix).items())), dict(sorted(store.settings(prefix).items())))


def test_metric_histories(ledger: Ledger) -> None:
    conn, store = ledger.conn, ledger.store
    for run_id in (ledger.base, ledger.child, "nope"):
        for key in (None, "loss", "acc", "nope"):
            same(
                sorted(reads.metric_sizes(conn, run_id, key)),
                sorted(store.metric_sizes(run_id, key)),
                str(key),
            )
            pg = sorted(reads.metric_chunks(conn, run_id, key), key=lambda c: c[0])  # stable: chunks in order
            lite = sorted(store.metric_chunks(run_id, key), key=lambda c: c[0])
            same(pg, lite, f"metric_chunks({run_id}, {key})")
    loss = [decode_chunk_lists(c)["step"] for _, _, c in reads.metric_chunks(conn, ledger.base, "loss")]
    assert loss == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]


def test_an_empty_store(pg_conn: psycopg.Connection, tmp_path: Path) -> None:
    upgrade(pg_conn)
    store = Store(tmp_path / "empty")
    store.create()
    same(reads.experiment_rows(pg_conn), store.experiment_rows())
    same(reads.run_ids(pg_conn), store.run_ids())
    same(reads.runs_version(pg_conn), store.runs_version())
    same(reads.run_rows_by_prefix(pg_conn, "", 5), store.run_rows_by_prefix("", 5))
    same(reads.keys_of(pg_conn, ["nope"]), store.keys_of(["nope"]))
    same(reads.settings(pg_conn, ""), store.settings(""))
    same(list(reads.metric_chunks(pg_conn, "nope")), list(store.metric_chunks("nope")))


def test_a_database_error_is_a_store_error(pg_conn: psycopg.Connection) -> None:
    """A read of a database without the schema names the database, as the SQLite store names its file."""
    with pytest.raises(StoreError, match=r"postgresql://postgres@127\.0\.0\.1:\d+/t_\w+.*runs"):
        reads.run_ids(pg_conn)
