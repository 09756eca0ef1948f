"""The PostgreSQL schema and its migrations, against a real throw-away cluster."""

from __future__ import annotations

import hashlib
import math
import sqlite3
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from click.testing import CliRunner

from labledger.cli.app import main
from labledger.errors import StoreError
from labledger.store import schema as sqlite_schema
from labledger.store.codec import decode_chunk_lists, encode_chunk
from labledger.store.postgres import (
    SCHEMA_VERSION,
    DatabaseConnectionError,
    DatabaseVersionError,
    connect,
    current_version,
    migrations,
    redact,
    upgrade,
    v1,
)
from labledger.store.postgres import schema as pg_schema
from labledger.store.postgres.connection import describe

from . import postgres as cluster_helper
from .postgres import free_port

RUN = "0123456789abcdef0123456789abcdef"


def _tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall()
    return {r[0] for r in rows}


def _versions(conn: psycopg.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def _objects(conn: psycopg.Connection) -> int:
    """How many relations, functions and triggers the database holds (changes with any DDL)."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM pg_class) + (SELECT count(*) FROM pg_proc)"
        " + (SELECT count(*) FROM pg_trigger)"
    ).fetchone()
    assert row
    return int(row[0])


# -- migrations ---------------------------------------------------------------------------


def test_a_fresh_database_upgrades_to_the_latest_version(pg_conn):
    assert current_version(pg_conn) == 0
    assert upgrade(pg_conn) == (0, SCHEMA_VERSION)
    assert current_version(pg_conn) == SCHEMA_VERSION
    assert _tables(pg_conn) == {*pg_schema.TABLES, "schema_version"}
    assert _versions(pg_conn) == list(range(1, SCHEMA_VERSION + 1))
    (by,) = pg_conn.execute("SELECT labledger FROM schema_version").fetchone()
    assert by == __import__("labledger").__version__


def test_upgrading_again_does_nothing(pg_conn):
    upgrade(pg_conn)
    before = _objects(pg_conn)
    assert upgrade(pg_conn) == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert upgrade(pg_conn) == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert _objects(pg_conn) == before
    assert _versions(pg_conn) == list(range(1, SCHEMA_VERSION + 1))


def test_concurrent_upgrades_migrate_once_and_all_end_at_the_latest_version(pg_dsn):
    workers = 4
    barrier = threading.Barrier(workers)
    results: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with connect(pg_dsn) as conn:
                barrier.wait(timeout=10)
                results.append(upgrade(conn))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    # each migration commits on its own: another worker may apply a later one, none is applied twice
    assert [end for _, end in results] == [SCHEMA_VERSION] * workers
    assert [start for start, _ in results].count(0) == 1
    with connect(pg_dsn) as conn:
        assert _versions(conn) == list(range(1, SCHEMA_VERSION + 1))


def test_a_database_newer_than_this_labledger_is_refused(pg_conn):
    upgrade(pg_conn)
    pg_conn.execute(
        "INSERT INTO schema_version (version, labledger) VALUES (%s, %s)", (SCHEMA_VERSION + 1, "99.0")
    )
    with pytest.raises(DatabaseVersionError) as info:
        upgrade(pg_conn)
    e = info.value
    assert (e.found, e.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    assert f"schema version {SCHEMA_VERSION + 1} is newer" in str(e)
    assert 'Upgrade labledger on this machine (pip install -U "labledger[server]")' in str(e)
    assert pg_conn.info.dbname in str(e)
    assert current_version(pg_conn) == SCHEMA_VERSION + 1  # nothing was touched


def test_a_database_holding_other_tables_named_like_labledgers_is_refused(pg_conn):
    pg_conn.execute("CREATE TABLE runs (id integer)")
    with pytest.raises(StoreError, match=r"already holds tables labledger would create \(runs\)"):
        upgrade(pg_conn)
    assert "schema_version" not in _tables(pg_conn)  # the transaction was rolled back


def test_upgrade_needs_a_connection_without_an_open_transaction(pg_dsn):
    with psycopg.connect(pg_dsn) as conn:  # not autocommit: the SELECT opens a transaction
        conn.execute("SELECT 1")
        with pytest.raises(ValueError, match="no transaction open"):
            upgrade(conn)


def test_the_lock_key_is_what_its_comment_says():
    digest = hashlib.sha256(b"labledger schema migrations").digest()
    assert int.from_bytes(digest[:8], "big", signed=True) == migrations.LOCK_KEY


def test_without_the_server_binaries_the_cluster_says_what_to_install(monkeypatch):
    monkeypatch.setattr(cluster_helper, "find_bin_dir", lambda: None)
    with pytest.raises(cluster_helper.ClusterError, match="apt-get install postgresql"):
        cluster_helper.PostgresCluster.start()


# -- the schema ----------------------------------------------------------------------------


def test_every_column_of_the_sqlite_store_has_a_place(pg_conn):
    """Each SQLite table and column exists in PostgreSQL; REAL becomes a time or a float64."""
    upgrade(pg_conn)
    lite = sqlite3.connect(":memory:")
    for statement in sqlite_schema.schema_statements():
        lite.execute(statement)
    names = [r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert names
    for table in names:
        pg = dict(
            pg_conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s",
                (table,),
            ).fetchall()
        )
        for _, column, kind, *_ in lite.execute(f"PRAGMA table_info({table})"):
            assert column in pg, f"{table}.{column} is missing"
            if kind == "REAL":
                timely = column.endswith(("_at", "_time")) or column in ("heartbeat", "start_time")
                wanted = "timestamp with time zone" if timely else "double precision"
                assert pg[column] == wanted, f"{table}.{column}: {pg[column]}"
            elif kind == "BLOB":
                assert pg[column] == "bytea"
    lite.close()


def test_the_values_frozen_in_v1_are_the_sqlite_stores():
    assert v1._V1_RUN_STATUSES == sqlite_schema.RUN_STATUSES
    assert v1._V1_FINAL_STATUSES == sqlite_schema.FINAL_STATUSES
    assert v1._V1_ARTIFACT_KINDS == sqlite_schema.ARTIFACT_KINDS


def _start(conn: psycopg.Connection, run_id: str = RUN, status: str = "running") -> None:
    conn.execute("INSERT INTO experiments (name) VALUES (%s) ON CONFLICT DO NOTHING", ("exp",))
    conn.execute(
        "INSERT INTO runs (id, experiment_id, name, status, start_time, heartbeat) "
        "SELECT %s, id, %s, %s, now(), now() FROM experiments WHERE name = %s",
        (run_id, run_id[:8], status, "exp"),
    )


def _chunk(conn: psycopg.Connection, seq: int, run_id: str = RUN) -> bytes:
    data = encode_chunk([seq, seq + 1], [None, None], [1.7e9, 1.7e9 + 1], [0.5, math.nan])
    conn.execute("INSERT INTO metric_keys (name) VALUES (%s) ON CONFLICT DO NOTHING", ("loss",))
    conn.execute(
        "INSERT INTO metric_chunks (run_id, key_id, seq, count, data) "
        "SELECT %s, id, %s, %s, %s FROM metric_keys WHERE name = %s",
        (run_id, seq, 2, data, "loss"),
    )
    return data


def _artifact(conn: psycopg.Connection, name: str, kind: str) -> None:
    conn.execute(
        "INSERT INTO artifacts (run_id, name, kind, sha256, size, media_type, metadata, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
        (RUN, name, kind, "ab" * 32, 3, "text/plain", "{}"),
    )


def test_params_are_immutable(pg_conn):
    upgrade(pg_conn)
    _start(pg_conn)
    pg_conn.execute("INSERT INTO params (run_id, key, value) VALUES (%s, %s, %s)", (RUN, "C", "1.0"))
    with pytest.raises(psycopg.Error, match=r"param C of run \w+ is immutable") as info:
        pg_conn.execute("UPDATE params SET value = %s WHERE run_id = %s", ("2.0", RUN))
    assert info.value.sqlstate == pg_schema.PARAMS_IMMUTABLE_SQLSTATE
    # logging the same param again is a no-op
    pg_conn.execute(
        "INSERT INTO params (run_id, key, value) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (RUN, "C", "1.0"),
    )
    assert pg_conn.execute("SELECT value FROM params").fetchall() == [("1.0",)]


def test_a_finished_run_is_read_only_but_its_tags_notes_and_code_may_change(pg_conn):
    upgrade(pg_conn)
    _start(pg_conn)
    data = _chunk(pg_conn, 0)
    (stored,) = pg_conn.execute("SELECT data FROM metric_chunks").fetchone()
    assert stored == data and decode_chunk_lists(stored)["step"] == [0, 1]
    pg_conn.execute("UPDATE runs SET status = %s, end_time = now() WHERE id = %s", ("finished", RUN))

    def refused(statement: str, params: tuple[object, ...]) -> None:
        with pytest.raises(psycopg.Error, match=f"run {RUN} has ended with status finished") as info:
            pg_conn.execute(statement, params)
        assert info.value.sqlstate == pg_schema.RUN_ENDED_SQLSTATE

    refused("INSERT INTO params (run_id, key, value) VALUES (%s, %s, %s)", (RUN, "late", "1"))
    pg_conn.execute(
        "INSERT INTO notes (run_id, created_at, text, author) VALUES (%s, now(), %s, %s)",
        (RUN, "late", "ada"),
    )
    refused("UPDATE metric_chunks SET count = %s WHERE run_id = %s", (3, RUN))
    with pytest.raises(psycopg.Error) as info:
        _chunk(pg_conn, 1)
    assert info.value.sqlstate == pg_schema.RUN_ENDED_SQLSTATE
    folds = "INSERT INTO folds (run_id, key, split, fold, value) VALUES (%s, %s, %s, %s, %s)"
    refused(folds, (RUN, "a", "v", 0, 1.0))
    with pytest.raises(psycopg.Error):
        _artifact(pg_conn, "model.pkl", "model")
    _artifact(pg_conn, "diff.patch", "code")  # the lineage capture's diff may land after a short run
    pg_conn.execute(
        "INSERT INTO tags (run_id, key, value, updated_at) VALUES (%s, %s, %s, now())", (RUN, "ok", "yes")
    )
    with pytest.raises(psycopg.Error, match="its status is final") as info:
        pg_conn.execute("UPDATE runs SET status = %s WHERE id = %s", ("running", RUN))
    assert info.value.sqlstate == pg_schema.FINAL_STATUS_SQLSTATE
    assert pg_conn.execute("SELECT count(*) FROM metric_chunks").fetchone() == (1,)


def test_a_crashed_run_stays_writable(pg_conn):
    upgrade(pg_conn)
    _start(pg_conn, status="crashed")
    _chunk(pg_conn, 0)
    pg_conn.execute("UPDATE runs SET status = %s WHERE id = %s", ("running", RUN))


def test_a_write_waits_for_a_run_ending_meanwhile_and_is_then_refused(pg_dsn, pg_conn):
    upgrade(pg_conn)
    _start(pg_conn)
    outcome: list[BaseException | None] = []

    def write() -> None:
        with connect(pg_dsn) as conn:
            try:
                _chunk(conn, 7)
                outcome.append(None)
            except psycopg.Error as e:
                outcome.append(e)

    with connect(pg_dsn) as ender, ender.transaction():
        ender.execute("UPDATE runs SET status = %s WHERE id = %s", ("finished", RUN))
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.3)
        assert writer.is_alive(), "the write did not wait for the run's end to commit"
    writer.join(timeout=30)
    (error,) = outcome
    assert isinstance(error, psycopg.Error) and error.sqlstate == pg_schema.RUN_ENDED_SQLSTATE


# -- labledger db upgrade ------------------------------------------------------------------


def test_db_upgrade_prints_what_it_did(pg_dsn):
    first = CliRunner().invoke(main, ["db", "upgrade", "--backend", pg_dsn])
    assert first.exit_code == 0, first.output
    assert first.output == f"schema version 0 → {SCHEMA_VERSION}\n"
    again = CliRunner().invoke(main, ["db", "upgrade", "--backend", pg_dsn])
    assert again.exit_code == 0, again.output
    assert again.output == f"already at version {SCHEMA_VERSION}\n"


def test_db_upgrade_refuses_a_newer_database(pg_dsn, pg_conn):
    upgrade(pg_conn)
    pg_conn.execute("INSERT INTO schema_version (version, labledger) VALUES (%s, %s)", (99, "99.0"))
    result = CliRunner().invoke(main, ["db", "upgrade", "--backend", pg_dsn])
    assert result.exit_code == 1
    assert "schema version 99 is newer" in result.output and "Upgrade labledger" in result.output


def test_db_upgrade_says_in_one_line_when_the_server_cannot_be_reached():
    dsn = f"postgresql://alice:s3cret@127.0.0.1:{free_port()}/ledger"
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["db", "upgrade", "--backend", dsn])
    assert time.perf_counter() - started < 10
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: labledger store postgresql://alice:***@127.0.0.1")
    assert "cannot connect" in lines[0] and "s3cret" not in result.output
    assert isinstance(result.exception, SystemExit)  # no traceback: click's clean exit


def test_db_upgrade_without_psycopg_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    result = CliRunner().invoke(main, ["db", "upgrade", "--backend", "postgresql://h/db"])
    assert result.exit_code == 1
    assert 'pip install "labledger[server]"' in result.output and "Traceback" not in result.output


def test_db_upgrade_wants_a_postgresql_uri(tmp_path):
    result = CliRunner().invoke(main, ["db", "upgrade", "--backend", str(tmp_path)])
    assert result.exit_code == 1 and "is not a PostgreSQL URI" in result.output


def test_connect_errors_never_show_the_password():
    with pytest.raises(DatabaseConnectionError) as info:
        connect(f"host=127.0.0.1 port={free_port()} user=alice password='se cret' dbname=x")
    assert "se cret" not in str(info.value) and "password=***" in str(info.value)
    assert redact("postgresql://alice:secret@db/ledger") == "postgresql://alice:***@db/ledger"
    assert redact("postgres://db/ledger") == "postgres://db/ledger"


def test_a_connection_through_the_unix_socket_works_and_is_described(postgres_cluster, pg_dsn):
    db, folder, port = pg_dsn.rsplit("/", 1)[1], postgres_cluster.folder, postgres_cluster.port
    with connect(f"postgresql://postgres@/{db}?host={folder}&port={port}") as conn:
        assert describe(conn) == f"postgresql://postgres@:{port}/{db}?host={folder}"
        assert upgrade(conn) == (0, SCHEMA_VERSION)


def test_the_postgres_store_and_its_command_import_no_psycopg():
    code = (
        "import sys, labledger.store.postgres, labledger.cli.commands.db; "
        "print([m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
