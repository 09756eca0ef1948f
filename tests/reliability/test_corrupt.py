"""Corrupt or foreign stores: a clear error saying what to do, never a traceback from inside SQLite."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import labledger as ll
from labledger.errors import StoreError, StoreVersionError
from labledger.store.schema import SCHEMA_VERSION
from labledger.store.sqlite import DB_FILENAME

ADVICE = ("Restore", "Upgrade", "move it away", "move this file away", "start a new store")


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a checkpointed store holding two runs with a few thousand points."""
    source = tmp_path_factory.mktemp("good") / "store"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABLEDGER_COMPLETENESS", "off")
        _write_runs(source)
    conn = sqlite3.connect(source / DB_FILENAME)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return (source / DB_FILENAME).read_bytes()


def _write_runs(source: Path) -> None:
    for name in ("first", "second"):
        with ll.start_run("corrupt", name=name, store=source) as run:
            run.log_params({"lr": 0.1, "layers": 3})
            for i in range(3000):
                run.log_metrics({"loss": 1.0 / (i + 1), "acc": i / 3000}, step=i)
                if i % 500 == 0:
                    run.flush()


def _not_sqlite(store: Path, good: bytes) -> None:
    (store / DB_FILENAME).write_text("name,value\nlr,0.1\n" * 50)


def _magic_then_garbage(store: Path, good: bytes) -> None:
    (store / DB_FILENAME).write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)


def _truncated_in_header(store: Path, good: bytes) -> None:
    (store / DB_FILENAME).write_bytes(good[:50])


def _first_page_only(store: Path, good: bytes) -> None:
    (store / DB_FILENAME).write_bytes(good[:4096])


def _truncated_to_a_third(store: Path, good: bytes) -> None:
    (store / DB_FILENAME).write_bytes(good[: len(good) // 3])


def _pages_overwritten(store: Path, good: bytes) -> None:
    (store / DB_FILENAME).write_bytes(good[:8192] + b"\xab" * (len(good) - 8192))


def _newer_schema(store: Path, good: bytes) -> None:
    (store / DB_FILENAME).write_bytes(good)
    conn = sqlite3.connect(store / DB_FILENAME)
    conn.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION + 7, time.time()))
    conn.commit()
    conn.close()


def _store_is_a_file(store: Path, good: bytes) -> None:
    store.rmdir()
    store.write_text("I am a file where a store folder should be\n")


def _database_is_a_folder(store: Path, good: bytes) -> None:
    (store / DB_FILENAME).mkdir()


DAMAGES = [
    _not_sqlite,
    _magic_then_garbage,
    _truncated_in_header,
    _first_page_only,
    _truncated_to_a_third,
    _pages_overwritten,
    _newer_schema,
    _store_is_a_file,
    _database_is_a_folder,
]


def _read_everything(store: Path) -> None:
    for run_id in ll.runs(store=store)["id"]:
        view = ll.get_run(run_id, store=store)
        view.params, view.metrics  # noqa: B018


@pytest.mark.timeout(60)
@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__.strip("_"))
def test_a_damaged_or_foreign_store_gives_one_clear_error(tmp_path, good_db, damage):
    store = tmp_path / "store"
    store.mkdir()
    damage(store, good_db)
    with pytest.raises(StoreError) as info:
        _read_everything(store)
        ll.start_run("corrupt", store=store)
    message = str(info.value)
    assert str(store) in message, message
    assert any(word in message for word in ADVICE), f"the error should say what to do: {message}"
    if damage is _newer_schema:
        assert isinstance(info.value, StoreVersionError) and info.value.found == SCHEMA_VERSION + 7


@pytest.mark.timeout(60)
@pytest.mark.parametrize("damage", [_not_sqlite, _truncated_to_a_third, _newer_schema, _pages_overwritten])
def test_the_cli_reports_a_damaged_store_without_a_traceback(tmp_path, good_db, damage):
    store = tmp_path / "store"
    store.mkdir()
    damage(store, good_db)
    for command in (["runs"], ["show", "corrupt/first"]):
        done = subprocess.run(
            [sys.executable, "-c", "from labledger.cli import main; main()", *command, "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=50,
        )
        assert done.returncode != 0
        assert "Traceback" not in done.stderr, done.stderr
        assert str(store) in done.stderr and "sqlite3." not in done.stderr, done.stderr


@pytest.mark.timeout(60)
def test_a_tampered_metric_chunk_is_reported_as_damage_not_a_decoding_crash(tmp_path, good_db):
    store = tmp_path / "store"
    store.mkdir()
    (store / DB_FILENAME).write_bytes(good_db)
    conn = sqlite3.connect(store / DB_FILENAME)
    conn.execute("UPDATE metric_chunks SET data = x'0102030405' WHERE seq = 1")
    conn.commit()
    conn.close()
    view = ll.get_run("corrupt/first", store=store)
    assert view.params == {"lr": 0.1, "layers": 3}  # what is intact stays readable
    with pytest.raises(StoreError, match="damaged"):
        view.metric("loss")
