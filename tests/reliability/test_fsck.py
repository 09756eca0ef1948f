"""``labledger fsck``: every kind of damage is found, what can be repaired is, the rest is reported."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labledger.store import blobs as blob_module
from labledger.store.fsck import fsck
from labledger.store.sqlite import DB_FILENAME

WRITE = """
import os, sqlite3, sys
from pathlib import Path
import labledger as ll

store, source = Path(sys.argv[1]), Path(sys.argv[2])
(source / "tree").mkdir(parents=True)
(source / "tree" / "a.txt").write_text("alpha")
(source / "model.bin").write_bytes(os.urandom(5000))
(source / "notes.txt").write_text("notes")
for name in ("one", "two"):
    with ll.start_run("fsck", name=name, store=store) as run:
        run.log_params({"lr": 0.1, "nan": float("nan"), "layers": [1, 2]})
        for i in range(100):
            run.log_metric("loss", 1 / (i + 1), step=i)
        run.log_artifact(source / "model.bin", kind="model", name=f"model-{name}.bin")
        run.log_artifact(source / "notes.txt", kind="other", name=f"notes-{name}.txt")
        run.log_artifact(source / "tree", kind="dataset")
conn = sqlite3.connect(store / "labledger.db")
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.close()
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    subprocess.run(
        [sys.executable, "-c", WRITE, str(path), str(tmp_path / "source")],
        check=True,
        timeout=60,
        env={**os.environ, "LABLEDGER_COMPLETENESS": "off"},
    )
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from labledger.cli import main; main()", "fsck", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _sql(store: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(store / DB_FILENAME)
    try:
        rows = conn.execute(sql, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def _blob(store: Path, sha: str) -> Path:
    return store / "artifacts" / sha[:2] / sha[2:]


def _old(path: Path) -> None:
    then = time.time() - 3600
    os.utime(path, (then, then))


@pytest.mark.timeout(60)
def test_a_healthy_store_is_clean_and_exits_0(store):
    report = fsck(store)
    assert report.ok and report.problems == []
    assert report.checked["blobs"] == 4 and report.checked["chunks"] == 2  # identical content stored once
    done = _cli("--store", str(store))
    assert done.returncode == 0 and "no problems found" in done.stdout, done.stderr
    data = json.loads(_cli("--store", str(store), "--json").stdout)
    assert data["ok"] is True and data["problems"] == []


@pytest.mark.timeout(60)
def test_every_kind_of_damage_is_found_and_what_can_be_is_repaired(store):
    arts = dict(_sql(store, "SELECT name, sha256 FROM artifacts WHERE run_id = (SELECT min(id) FROM runs)"))
    # a changed blob, a missing blob
    changed = _blob(store, arts["model-one.bin"])
    changed.chmod(0o644)
    changed.write_bytes(changed.read_bytes()[:-1])
    missing = _blob(store, arts["notes-one.txt"])
    missing.unlink()
    # an orphan (old, and a fresh one a writer may be about to use), temporary files
    orphan_sha, _ = blob_module.BlobStore(store / "artifacts").put_bytes(b"nobody uses me")
    _old(_blob(store, orphan_sha))
    fresh_sha, _ = blob_module.BlobStore(store / "artifacts").put_bytes(b"about to be used")
    host = blob_module._HOST
    old_temp = store / "artifacts" / ".incoming-1-zzzzzzzz-old"
    old_temp.write_bytes(b"half")
    _old(old_temp)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    dead_temp = store / "artifacts" / f".incoming-{dead.pid}-{host}-dead"
    dead_temp.write_bytes(b"half")
    live_temp = store / "artifacts" / f".incoming-{os.getpid()}-{host}-live"
    live_temp.write_bytes(b"being written")
    # damaged rows: invalid JSON, a non-hex digest, a damaged metric chunk
    _sql(store, "DROP TRIGGER params_immutable")  # damage comes from outside labledger
    _sql(
        store,
        "UPDATE params SET value = '{not json' WHERE key = 'lr' AND run_id = (SELECT min(id) FROM runs)",
    )
    _sql(store, "UPDATE runs SET source = 'oops' WHERE id = (SELECT max(id) FROM runs)")
    _sql(store, "UPDATE artifacts SET sha256 = 'xyz' WHERE name = 'notes-two.txt'")
    _sql(store, "UPDATE metric_chunks SET data = x'0102' WHERE run_id = (SELECT max(id) FROM runs)")

    report = fsck(store)
    found = {(p.kind, p.where.split(" (")[0]) for p in report.problems}
    rel = lambda p: str(p.relative_to(store))  # noqa: E731
    assert found == {
        ("changed blob", rel(changed)),
        ("missing blob", rel(missing)),
        ("orphaned blob", rel(_blob(store, orphan_sha))),
        ("leftover temporary file", rel(old_temp)),
        ("leftover temporary file", rel(dead_temp)),
        ("damaged row", "params.value"),
        ("damaged row", "runs.source"),
        ("damaged row", "artifacts.sha256"),
        ("damaged chunk", "metric_chunks"),
    }, report.render()
    assert not report.ok
    assert "model-one.bin" in next(p.detail for p in report.problems if p.kind == "changed blob")

    done = _cli("--store", str(store), "--repair")
    assert done.returncode == 1, "problems that cannot be repaired remain"
    assert "repaired" in done.stdout and "cannot repair" in done.stdout
    assert not _blob(store, orphan_sha).exists() and not old_temp.exists() and not dead_temp.exists()
    assert _blob(store, fresh_sha).exists() and live_temp.exists(), "what a writer may be using stays"
    after = fsck(store)
    assert {p.kind for p in after.problems} == {
        "changed blob",
        "missing blob",
        "damaged row",
        "damaged chunk",
    }
    data = json.loads(_cli("--store", str(store), "--json").stdout)
    assert data["ok"] is False and all(p["advice"] for p in data["problems"])


@pytest.mark.timeout(60)
def test_a_damaged_database_file_is_reported(store):
    page_size, root = _sql(
        store,
        "SELECT (SELECT page_size FROM pragma_page_size), rootpage FROM sqlite_master "
        "WHERE name = 'sqlite_autoindex_runs_1'",
    )[0]
    data = bytearray((store / DB_FILENAME).read_bytes())
    page = data[(root - 1) * page_size : root * page_size]
    # four characters inside a run id stored in the index of run ids (never its record header)
    ids = [row[0].encode() for row in _sql(store, "SELECT id FROM runs")]
    inside = next(page.find(i) for i in ids if page.find(i) >= 0)
    at = (root - 1) * page_size + inside + 8
    data[at : at + 4] = b"zzzz"
    (store / DB_FILENAME).write_bytes(bytes(data))
    report = fsck(store)
    (problem,) = [p for p in report.problems if p.kind == "database"]
    assert "missing from index" in problem.detail and "backup" in problem.advice
    done = _cli("--store", str(store))
    assert done.returncode == 1 and "integrity check" in done.stdout


@pytest.mark.timeout(30)
def test_no_store_is_a_clear_error(tmp_path):
    done = _cli("--store", str(tmp_path / "nothing"))
    assert done.returncode == 1 and "no labledger store" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "nothing").exists()


def test_spill_files_of_a_gone_process_are_imported_and_damaged_ones_reported(tmp_path, run_script):
    """A spill file is written in full or not under its name; fsck --repair imports the good ones in
    batch order and reports a damaged one without touching the store."""
    import labledger as ll
    from labledger.records import Series
    from labledger.store.spill import spill_folders, write_spill

    done = run_script(
        """
        import os
        import labledger as ll
        run = ll.start_run("spills")
        run.log_metric("loss", 0.0, step=0)
        run.flush()
        print(run.id, flush=True)
        os._exit(0)  # gone without ending the run
        """
    )
    run_id = done.stdout.split()[0]
    store = Path(os.environ["LABLEDGER_STORE"])
    folders = spill_folders(store)
    for seq, steps in ((3, [3, 4]), (2, [1, 2])):  # written out of order
        batch = {
            "loss": Series(steps, [None] * len(steps), [float(s) for s in steps], [s / 10 for s in steps])
        }
        assert write_spill(folders, run_id, seq, batch) is not None
    (folders[0] / f"{run_id}-9-1.batch").write_bytes(b"\x05\x00\x00\x00loss\xff\xff")
    from labledger.store.spill import write_call_spill

    write_call_spill(folders, run_id, 2, "end_run", (run_id, "killed", 2.0, "stopped"))  # written last
    write_call_spill(folders, run_id, 1, "insert_params", (run_id, {"C": 1.0}))
    write_call_spill(folders, run_id, 3, "reap_crashed", ())  # not a record's write: refused
    assert not list(folders[0].glob("*.part"))

    report = fsck(store, repair=True)
    kinds = sorted((p.kind, p.repaired) for p in report.problems)
    assert kinds == [("damaged spill file", False)] * 2 + [("unwritten record", True)] * 4
    assert not report.ok and report.checked["spills"] == 6
    view = ll.get_run(run_id)
    assert view.status == "killed", "the spilled end is written after the run's other records"
    assert view.params == {"C": 1.0}
    assert view.metric("loss")["step"].tolist() == [0, 1, 2, 3, 4]
    assert view.summary["loss"]["last"] == 0.4 and view.summary["loss"]["count"] == 5
    assert sorted(p.name for p in folders[0].iterdir()) == sorted(
        [f"{run_id}-9-1.batch", f"{run_id}-t3-{os.getpid()}.call"]
    )
