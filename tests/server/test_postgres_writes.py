"""The write half of the PostgreSQL store, against a real throw-away cluster: every write leaves
the rows the SQLite store holds after the same calls (times to the microsecond), and refuses
what the SQLite store refuses."""

from __future__ import annotations

import math
import os
import sqlite3
import time
from typing import Any

import psycopg
import pytest

from labledger.errors import RunFinishedError, RunNotFoundError, StoreError
from labledger.records import ArtifactRecord, DatasetRecord, PipelineRecord
from labledger.store import open_store
from labledger.store.postgres import upgrade, writes
from labledger.store.postgres.writes_common import refusing
from labledger.store.sqlite import Store
from labledger.tracking.cv_design import fold_stats

RUN = "0123456789abcdef0123456789abcdef"
CHILD = "fedcba9876543210fedcba9876543210"
T0 = int(time.time()) - 1 + 0.123456  # recent: the runs' heartbeats are fresh (reset for each test)
SHA = "ab" * 32

#: Each table's compared columns; the times (epoch seconds) are compared in whole microseconds.
COLUMNS = {
    "experiments": ("id", "name", "description"),
    "runs": (
        "id",
        "experiment_id",
        "name",
        "parent_id",
        "status",
        "kind",
        "start_time",
        "end_time",
        "author",
        "hypothesis",
        "host",
        "pid",
        "pid_start",
        "pid_ns",
        "boot_id",
        "source",
        "environment",
        "error",
        "lineage",
        "packages_sha",
        "reproduction_of",
    ),
    "params": ("run_id", "key", "value"),
    "tags": ("run_id", "key", "value", "updated_at"),
    "tag_history": ("id", "run_id", "key", "value", "changed_at"),
    "notes": ("id", "run_id", "created_at", "text", "author"),
    "folds": ("run_id", "key", "split", "fold", "value"),
    "fold_stats": ("run_id", "key", "split", "n", "mean", "std", "min", "max"),
    "datasets": ("run_id", "name", "role", "fingerprint", "summary", "created_at"),
    "pipelines": ("run_id", "name", "version", "structure", "text", "created_at"),
    "artifacts": ("id", "run_id", "name", "kind", "sha256", "size", "media_type", "metadata", "created_at"),
    "package_sets": ("sha256", "packages"),
    "settings": ("key", "value"),
}
TIMES = {"start_time", "end_time", "heartbeat", "updated_at", "changed_at", "created_at"}


class Both:
    """A PostgreSQL database and an SQLite store, given the same writes."""

    def __init__(self, conn: psycopg.Connection, store: Store) -> None:
        self.conn = conn
        self.store = store

    def __call__(self, method: str, *args: Any) -> tuple[Any, Any]:
        """Call a write on both; returns ``(PostgreSQL's answer, SQLite's)``."""
        return getattr(writes, method)(self.conn, *args), getattr(self.store, method)(*args)

    def rows(self, table: str, columns: tuple[str, ...] | None = None) -> tuple[list[tuple], list[tuple]]:
        """The table's rows on each side (sorted), times as whole microseconds."""
        cols = columns or COLUMNS[table]
        pg_cols = [f"(extract(epoch FROM {c}) * 1000000)::bigint" if c in TIMES else c for c in cols]
        pg = self.conn.execute(f"SELECT {', '.join(pg_cols)} FROM {table}").fetchall()
        lite = self.store.query(f"SELECT {', '.join(cols)} FROM {table}")
        micro = [c in TIMES for c in cols]
        lite_rows = [
            tuple(None if v is None else round(v * 1e6) if t else v for v, t in zip(r, micro, strict=True))
            for r in lite
        ]
        return sorted(map(tuple, pg), key=repr), sorted(lite_rows, key=repr)

    def same(self, *tables: str) -> None:
        for table in tables or tuple(COLUMNS):
            pg, lite = self.rows(table)
            assert [tuple(map(repr, r)) for r in pg] == [tuple(map(repr, r)) for r in lite], table

    def status(self, run_id: str = RUN) -> tuple[str, str]:
        pg = self.conn.execute("SELECT status FROM runs WHERE id = %s", (run_id,)).fetchone()
        lite = self.store.query("SELECT status FROM runs WHERE id = ?", (run_id,))
        return pg[0], lite[0]["status"]

    def sql(self, statement: str, *args: Any) -> None:
        """The same statement on both sides (``?`` placeholders)."""
        self.conn.execute(statement.replace("?", "%s"), args)
        with self.store.write() as lite:
            lite.execute(statement, args)


def _row(run_id: str = RUN, name: str = "svm", **extra: Any) -> dict[str, Any]:
    row = dict.fromkeys(("parent_id", "author", "hypothesis", "host", "pid", "source", "environment"))
    return (
        row
        | {"id": run_id, "name": name, "kind": "offline", "reproduction_of": None, "start_time": T0}
        | extra
    )


@pytest.fixture(autouse=True)
def _recent_start() -> None:
    """Each test's runs start a second before it (a time taken at import would have gone stale by
    the time a test runs late in a long session)."""
    global T0
    T0 = int(time.time()) - 1 + 0.123456


@pytest.fixture
def both(pg_conn: psycopg.Connection, tmp_path) -> Both:
    upgrade(pg_conn)
    pair = Both(pg_conn, open_store(tmp_path / "sqlite"))
    exp = pair("ensure_experiment", "digits", "handwritten digits")
    assert exp[0] == exp[1]
    assert pair("insert_run", _row(experiment_id=exp[0])) == ("svm", "svm")
    return pair


def test_experiments_and_runs_are_stored_as_in_sqlite(both):
    assert both("ensure_experiment", "digits", "another description") == (1, 1)  # kept as created
    assert both("ensure_experiment", "iris") == (2, 2)
    pid_row = _row(CHILD, experiment_id=1, parent_id=RUN, author="ada", host="gpu-3", pid=os.getpid())
    assert both("insert_run", pid_row | {"source": "train.py", "environment": '{"python": "3.12"}'}) == (
        "svm-2",
        "svm-2",
    )  # the name was taken
    assert both("insert_run", _row("3" * 32, experiment_id=2, start_time=T0 + 1.000001)) == ("svm", "svm")
    both.same("experiments", "runs")
    pg = both.conn.execute(
        "SELECT pid_start, boot_id, heartbeat = start_time FROM runs WHERE id = %s", (CHILD,)
    )
    assert pg.fetchone()[2] is True  # a new run's heartbeat is its start


def test_runs_found_crashed_are_recorded_so_as_in_sqlite(both):
    old = _row(CHILD, name="old", experiment_id=1, start_time=T0 - 3600.5, host="elsewhere", pid=1)
    both("insert_run", old)  # recorded crashed as a run starts (the SQLite store: at most every 10s)
    assert both.status(CHILD)[0] == "crashed"
    both.store.reap_crashed()
    both.same("runs")  # the same status, end_time the last heartbeat
    assert both("reap_crashed") == (0, 0)
    both("heartbeat", CHILD)  # its process still writes after all
    assert both.status(CHILD) == ("running", "running")
    assert both.status(RUN) == ("running", "running")  # a fresh heartbeat
    both.conn.execute("UPDATE runs SET heartbeat = start_time - interval '1 hour'")
    assert writes.reap_crashed(both.conn, stale_after=10_000) == 0
    assert writes.reap_crashed(both.conn) == 2


def test_a_taken_run_id_raises_a_store_error_on_both(both):
    with pytest.raises(StoreError):
        writes.insert_run(both.conn, _row(experiment_id=1, name="other"))
    with pytest.raises(StoreError):
        both.store.insert_run(_row(experiment_id=1, name="other"))
    both.same("runs")


def test_ending_a_run_twice_keeps_the_first_end(both):
    both("end_run", RUN, "failed", T0 + 10.5, "ValueError: boom")
    both("end_run", RUN, "finished", T0 + 20.25, None)  # a final status is final: nothing changes
    both.same("runs")
    assert both.status() == ("failed", "failed")
    assert both.rows("runs", ("heartbeat",)) == ([(round((T0 + 10.5) * 1e6),)],) * 2


def test_a_crashed_run_can_still_end(both):
    both.sql("UPDATE runs SET status = 'crashed'")
    both("end_run", RUN, "killed", T0 + 3.0, None)
    both.same("runs")
    assert both.status() == ("killed", "killed")


def test_a_final_status_change_is_refused_by_the_database(both):
    both("end_run", RUN, "finished", T0 + 1.0, None)
    with pytest.raises(psycopg.Error) as pg_error:
        both.conn.execute("UPDATE runs SET status = 'running'")
    assert pg_error.value.sqlstate == "LL003"
    with pytest.raises(sqlite3.IntegrityError), both.store.write() as lite:
        lite.execute("UPDATE runs SET status = 'running'")
    both.same("runs")


def test_heartbeat_revives_a_crashed_run_and_leaves_an_ended_one_ended(both):
    both.sql("UPDATE runs SET status = 'crashed'")
    before = time.time()
    both("heartbeat", RUN)
    assert both.status() == ("running", "running")
    (beat,) = both.conn.execute("SELECT extract(epoch FROM heartbeat)::float8 FROM runs").fetchone()
    assert beat >= before - 1.0
    both("end_run", RUN, "finished", T0 + 1.0, None)
    both("heartbeat", RUN)
    assert both.status() == ("finished", "finished")
    both("heartbeat", "no-such-run")  # changes nothing, raises nothing
    both.same("runs")


def test_params_are_immutable_and_idempotent_as_in_sqlite(both):
    params = {"C": 1.0, "kernel": "rbf", "layers": [64, 32], "opt": {"lr": 1e-3}, "name": "é ✓", "none": None}
    both("insert_params", RUN, params)
    both("insert_params", RUN, params)  # the same again: nothing changes
    both("insert_params", RUN, {"C": 2.0, "gamma": 0.5})  # a new value of C is ignored, gamma added
    both("insert_params", RUN, {})
    both.same("params")
    assert both.conn.execute("SELECT value FROM params WHERE key = 'C'").fetchone() == ("1.0",)


def test_a_write_to_an_ended_run_is_refused_as_in_sqlite(both):
    both("add_note", RUN, "before the end", T0 + 1)
    both("end_run", RUN, "finished", T0 + 2, None)
    art = ArtifactRecord("model", "model", SHA, 10, "application/octet-stream", {}, "x", T0)
    refused = [
        ("insert_params", RUN, {"C": 1.0}),
        ("insert_folds", RUN, "acc", "test", [0.5], fold_stats([0.5])),
        ("insert_dataset", RUN, DatasetRecord("digits", "train", "f1", {}, T0)),
        ("insert_pipeline", RUN, PipelineRecord("features", "v1", {}, None, T0)),
        ("insert_artifact", RUN, art),
    ]
    for method, *args in refused:
        with pytest.raises(RunFinishedError) as error:
            getattr(writes, method)(both.conn, *args)
        assert (error.value.run_id, error.value.status) == (RUN, "finished"), method
        with pytest.raises(RunFinishedError) as lite_error:  # the same error from both stores
            getattr(both.store, method)(*args)
        assert (lite_error.value.run_id, lite_error.value.status) == (RUN, "finished"), method
        assert lite_error.value.action == error.value.action, method
    # still taken after the end: tags, the start-up code diff, lineage, notes (with their author)
    both("add_note", RUN, "after the end", T0 + 3, "ada")
    both("set_tags", RUN, {"verdict": "good"}, T0 + 4)
    both("insert_artifact", RUN, ArtifactRecord("diff", "code", SHA, 3, "text/x-diff", {}, "y", T0 + 5))
    both("record_lineage", RUN, {"git": {"commit": "a1"}}, None)
    both("add_note", RUN, "before the end", T0 + 1)
    both.same()


def test_a_write_to_a_missing_run_raises_run_not_found(both):
    with pytest.raises(RunNotFoundError):
        writes.insert_params(both.conn, "no-such-run", {"C": 1})
    with pytest.raises(RunNotFoundError):
        writes.set_tags(both.conn, "no-such-run", {"a": "b"}, T0)
    with pytest.raises(RunNotFoundError):
        writes.add_note(both.conn, "no-such-run", "x", T0)


def test_tags_and_their_history_as_in_sqlite(both):
    both("set_tags", RUN, {"team": "vision", "stage": "baseline"}, T0 + 0.000001)
    both("set_tags", RUN, {"team": "vision", "stage": "baseline"}, T0 + 0.000001)  # a retry: no new entries
    both("set_tags", RUN, {"stage": "tuned"}, T0 + 7.654321)
    both("set_tags", RUN, {}, T0 + 8)
    both.same("tags", "tag_history")
    assert len(both.rows("tag_history")[0]) == 3


def test_notes_once_each_as_in_sqlite(both):
    both("add_note", RUN, "val acc plateaus", T0 + 1.5)
    both("add_note", RUN, "val acc plateaus", T0 + 1.5)
    both("add_note", RUN, "val acc plateaus", T0 + 2.5)  # written again later: a second note
    both("add_note", RUN, "ünïcode ✓\nsecond line", T0 + 3)
    both.same("notes")
    assert len(both.rows("notes")[0]) == 3


def test_folds_and_their_stats_as_in_sqlite(both):
    values = [0.91, 0.93, 0.92, 0.9, 0.94]
    both("insert_folds", RUN, "accuracy", "test", values, fold_stats(values))
    both("insert_folds", RUN, "accuracy", "test", values, fold_stats(values))  # a retry
    both("insert_folds", RUN, "accuracy", "test", [0.1, 0.2], fold_stats([0.1, 0.2]))  # kept as first stored
    failed = [0.5, math.nan, math.inf]
    both("insert_folds", RUN, "loss", "train", failed, fold_stats(failed))  # NaN stored as NULL
    both("insert_folds", RUN, "loss", "test", [-math.inf, 1.0], fold_stats([-math.inf, 1.0]))
    both.same("folds", "fold_stats")
    assert both.rows("fold_stats")[0][2][4:] == (None, None, None, None)  # loss/train: a NaN fold


def test_datasets_pipelines_artifacts_as_in_sqlite(both):
    both("insert_dataset", RUN, DatasetRecord("digits", "train", "f1", {"rows": 10, "name": "é"}, T0 + 1))
    both("insert_dataset", RUN, DatasetRecord("digits", "train", "f2", {"rows": 12}, T0 + 2))  # replaced
    both("insert_dataset", RUN, DatasetRecord("digits", "test", None, {}, T0 + 3))
    pipe = PipelineRecord(
        "features", "a1b2", {"steps": [{"name": "scale", "nan": math.nan}]}, "scale()", T0 + 4
    )
    both("insert_pipeline", RUN, pipe)
    both("insert_pipeline", RUN, PipelineRecord("features", "c3d4", {}, None, T0 + 5))  # kept as first stored
    art = ArtifactRecord(
        "model", "model", SHA, 1234, "application/x-pickle", {"acc": 0.9, "z": [1]}, "p", T0 + 6
    )
    both("insert_artifact", RUN, art)
    both("insert_artifact", RUN, art)
    both(
        "insert_artifact", RUN, ArtifactRecord("model", "model", "cd" * 32, 1, "text/plain", {}, "q", T0 + 7)
    )
    both("insert_artifact", RUN, ArtifactRecord("plot", "plot", "cd" * 32, 0, "image/png", {}, "r", T0 + 8))
    both.same("datasets", "pipelines", "artifacts")


def test_lineage_is_merged_and_package_sets_stored_once_as_in_sqlite(both):
    run2 = "4" * 32
    both("insert_run", _row(run2, name="mlp", experiment_id=1))
    packages = {"numpy": "2.1.0", "scikit-learn": "1.5.2", "é-pkg": "1.0"}
    both(
        "record_lineage",
        RUN,
        {"git": {"commit": "a1", "dirty": True, "path": "/src/é"}, "packages_sha256": SHA},
        packages,
    )
    both("record_lineage", run2, {"packages_sha256": SHA}, packages)  # the same set: stored once
    both(
        "record_lineage",
        RUN,
        {"git": {"dirty": None, "branch": "main"}, "host": {"cpus": 8, "load": 0.25}},
        None,
    )
    both(
        "record_lineage",
        RUN,
        {"host": "gpu-3", "when": time, "big": 10**20, "tiny": 1e-7, "flag": False},
        None,
    )
    both("record_lineage", "no-such-run", {"git": {}}, None)  # nothing to merge into
    with pytest.raises(ValueError):
        writes.record_lineage(both.conn, RUN, {"bad": math.nan}, None)
    both.same("runs", "package_sets")
    assert [sha for sha, _ in both.rows("package_sets")[0]] == [SHA]


def test_settings_as_in_sqlite(both):
    both("set_setting", "metric/loss/direction", "min")
    both("set_setting", "metric/loss/direction", "max")
    both("set_setting", "metric/acc/direction", "max")
    both.same("settings")


def test_writes_join_a_transaction_of_the_callers(both):
    with both.conn.transaction():
        writes.insert_params(both.conn, RUN, {"a": 1})
        writes.set_tags(both.conn, RUN, {"t": "v"}, T0)
        with pytest.raises(RunNotFoundError):
            writes.insert_params(both.conn, "no-such-run", {"a": 1})  # rolls back to its savepoint only
        writes.add_note(both.conn, RUN, "inside", T0)
    assert both.conn.execute("SELECT count(*) FROM params").fetchone() == (1,)
    assert both.conn.execute("SELECT count(*) FROM notes").fetchone() == (1,)


def test_what_the_database_refuses_is_raised_as_labledgers_errors(both):
    both("end_run", RUN, "finished", T0 + 1, None)
    late = "INSERT INTO params (run_id, key, value) VALUES (%s, 'late', '1')"
    with (
        pytest.raises(RunFinishedError) as ended,
        refusing(both.conn, RUN, "log params"),
        both.conn.transaction(),
    ):
        both.conn.execute(late, (RUN,))  # the trigger's LL001
    assert (ended.value.status, ended.value.action) == ("finished", "log params")
    both("add_note", RUN, "a finding after the end", T0 + 2, "ada")  # notes are still taken
    with pytest.raises(RunFinishedError), refusing(both.conn, RUN, "end"), both.conn.transaction():
        both.conn.execute("UPDATE runs SET status = 'failed'")  # the trigger's LL003
    both("insert_run", _row("6" * 32, name="other", experiment_id=1))
    odd = ArtifactRecord("x", "nonsense", SHA, 1, "a/b", {}, "x", T0)  # a kind the schema does not know
    with pytest.raises(StoreError, match="cannot log an artifact of run"):
        writes.insert_artifact(both.conn, "6" * 32, odd)
    both.store.insert_artifact("6" * 32, odd)  # SQLite's INSERT OR IGNORE drops it silently
    both.same()
