"""Readers never block, never write, and judge liveness by process identity.

Real stores, real processes: a reader beside a process holding the write lock,
read-only copies read by an unprivileged user, a run in its own PID namespace,
foreign SQLite files left byte-for-byte unchanged, many processes creating one
store at the same moment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import labledger as ll
from labledger.errors import RunNotFoundError, StoreError
from labledger.query.runs import run_rows
from labledger.store import liveness
from labledger.store.schema import SCHEMA_VERSION
from labledger.store.sqlite import DB_FILENAME

from .conftest import integrity

FIXTURE_V1 = Path(__file__).resolve().parents[1] / "fixtures" / "store-v1"
NOBODY = 65534

DIES = """
import os, sys
import labledger as ll
ll.start_run("readers", name="finished-one").end()
run = ll.start_run("readers", name="dies")
run.log_metric("loss", 0.5)
run.flush()
print(run.id, flush=True)
if len(sys.argv) > 1:
    sys.stdin.readline()  # killed while waiting
os._exit(0)  # no end(): the run stays "running" in the file
"""


def _raw_status(store: Path, run_id: str) -> str:
    conn = sqlite3.connect(f"file:{store / DB_FILENAME}?mode=ro", uri=True)
    try:
        return str(conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
    finally:
        conn.close()


def _cli(*args: str, user: int | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from labledger.cli import main; main()", *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    env = {**os.environ, "LABLEDGER_COMPLETENESS": "off"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd="/")


def _nobody_can_import_labledger() -> bool:
    if shutil.which("setpriv") is None:
        return False
    probe = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    done = subprocess.run([*probe, sys.executable, "-c", "import labledger"], capture_output=True, cwd="/")
    return done.returncode == 0


@contextmanager
def _read_only(folder: Path) -> Iterator[tuple[Path, int | None]]:
    """``(where to read the folder, as which user)`` such that nothing can be written there.

    Root ignores file permissions, so root reads as ``nobody`` — or, when ``nobody``
    cannot import labledger (an environment in a private folder), through a
    read-only bind mount of the folder. Other users read the folder itself.
    """
    if os.geteuid() != 0:
        yield folder, None
        return
    if _nobody_can_import_labledger():
        yield folder, NOBODY
        return
    mount = folder.with_name(folder.name + "-ro")
    mount.mkdir()
    if subprocess.run(["mount", "--bind", str(folder), str(mount)], capture_output=True).returncode:
        pytest.skip("reading a read-only store as root needs setpriv (and a readable environment) or mount")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield mount, None
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder an unprivileged user can enter (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="labledger-readers-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.timeout(60)
def test_a_reader_never_waits_for_the_write_lock_and_sees_a_dead_run_as_crashed(store_path, spawn):
    done = spawn(DIES)
    run_id = done.communicate(timeout=50)[0].strip()
    assert done.returncode == 0 and run_id
    # another process takes the write lock and keeps it
    holder = spawn(
        "import sqlite3, sys, time\n"
        f"conn = sqlite3.connect({str(store_path / DB_FILENAME)!r}, isolation_level=None)\n"
        "conn.execute('BEGIN IMMEDIATE')\nprint('locked', flush=True)\nsys.stdin.readline()\n",
        stdin=subprocess.PIPE,
    )
    assert holder.stdout.readline().strip() == "locked"
    seen: dict[str, object] = {}

    def read() -> None:
        seen["status"] = ll.get_run(run_id).status
        seen["listed"] = dict(zip(ll.runs("readers")["name"], ll.runs("readers")["status"], strict=True))
        seen["filtered"] = [r["name"] for r in run_rows(where='status = "crashed"')]
        seen["running"] = [e["running"] for e in ll.experiments()]
        seen["end_time"] = ll.get_run(run_id).end_time

    reader = threading.Thread(target=read, daemon=True)
    t0 = time.monotonic()
    reader.start()
    reader.join(timeout=5)
    elapsed = time.monotonic() - t0
    try:
        assert not reader.is_alive(), "the reader waited for the process holding the write lock"
        assert elapsed < 5
        assert seen["status"] == "crashed"
        assert seen["listed"] == {"dies": "crashed", "finished-one": "finished"}
        assert seen["filtered"] == ["dies"]
        assert seen["running"] == [0]
        assert seen["end_time"] is not None
    finally:
        holder.communicate("\n", timeout=10)
    reader.join(timeout=30)
    assert _raw_status(store_path, run_id) == "running", "reading must not write"
    # the next writer records it
    ll.start_run("readers", name="next").end()
    assert _raw_status(store_path, run_id) == "crashed"


@pytest.mark.timeout(60)
def test_reading_changes_nothing_in_the_database_file(shared_dir):
    store = shared_dir / "store"
    subprocess.run(
        [sys.executable, "-c", DIES],
        env={**os.environ, "LABLEDGER_STORE": str(store)},
        check=True,
        timeout=50,
    )
    before = _snapshot(store)
    for command in (
        ["runs"],
        ["show", "readers/dies"],
        ["experiments"],
        ["runs", "--where", 'status = "crashed"'],
    ):
        done = _cli(*command, "--store", str(store))
        assert done.returncode == 0, done.stderr
        assert "crashed" in done.stdout or command == ["experiments"]
    after = _snapshot(store)
    for name in (DB_FILENAME, DB_FILENAME + "-wal"):
        if name in before:
            assert after[name] == before[name], f"{name} changed"
    assert set(after) <= set(before) | {DB_FILENAME + "-wal", DB_FILENAME + "-shm"}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("variant", ["read-only-folder", "wal-without-shm", "checkpointed-wal-without-shm"])
def test_labledger_runs_works_on_a_read_only_copy(shared_dir, variant):
    source = shared_dir / "source"
    proc = subprocess.Popen(
        [sys.executable, "-c", DIES, "wait"],
        env={**os.environ, "LABLEDGER_STORE": str(source), "LABLEDGER_COMPLETENESS": "off"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    copy = shared_dir / "copy"
    shutil.copytree(source, copy)  # copied while the writer is alive: its WAL holds the commits
    proc.kill()
    proc.communicate(timeout=30)
    if variant == "wal-without-shm":
        (copy / (DB_FILENAME + "-shm")).unlink()
    elif variant == "checkpointed-wal-without-shm":
        conn = sqlite3.connect(copy / DB_FILENAME)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        (copy / (DB_FILENAME + "-shm")).unlink(missing_ok=True)
        (copy / (DB_FILENAME + "-wal")).write_bytes(b"")
    for path in [copy, *copy.iterdir()]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(copy)

    with _read_only(copy) as (where, user):
        listed = _cli("runs", "--store", str(where), user=user)
        assert listed.returncode == 0, listed.stderr
        assert "dies" in listed.stdout and "crashed" in listed.stdout and "finished" in listed.stdout
        shown = _cli("show", "readers/dies", "--store", str(where), user=user)
        assert shown.returncode == 0, shown.stderr
        assert "status      crashed" in shown.stdout
        refused = _cli("runs", "--store", str(where), "--json", user=user)
        assert len(json.loads(refused.stdout)) == 2
    assert _snapshot(copy) == before


@pytest.mark.timeout(30)
def test_reading_a_missing_store_does_not_create_it(tmp_path):
    missing = tmp_path / "nowhere" / "store"
    assert ll.runs(store=missing).empty
    assert run_rows(store=missing) == []
    assert ll.experiments(store=missing) == []
    with pytest.raises(RunNotFoundError):
        ll.get_run("exp/run", store=missing)
    done = _cli("runs", "--store", str(missing))
    assert done.returncode == 0 and "no runs yet" in done.stdout, done.stderr
    assert not missing.exists() and not missing.parent.exists()
    with ll.start_run("later", store=missing):  # a writer creates it, and readers see it
        pass
    assert len(ll.runs(store=missing)) == 1


@pytest.mark.timeout(60)
def test_a_read_only_store_of_an_older_schema_is_read_as_it_is(shared_dir):
    store = shared_dir / "v1"
    shutil.copytree(FIXTURE_V1, store)
    for path in [store, *store.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(store)
    code = (
        "import sys, labledger as ll\n"
        "v = ll.get_run('legacy-exp/v1-run', store=sys.argv[1])\n"
        "print(v.status, v.params['kernel'], v.lineage, v.pipelines, len(v.metric('loss')), "
        "sorted(ll.runs(store=sys.argv[1])['status']))\n"
    )
    with _read_only(store) as (where, user):
        cmd = [sys.executable, "-c", code, str(where)]
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=50, cwd="/")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["finished", "rbf", "{}", "[]", "101", "['failed',", "'finished']"]
        listed = _cli("runs", "--store", str(where), user=user)
        assert listed.returncode == 0 and "v1-run" in listed.stdout, listed.stderr
    assert _snapshot(store) == before


@pytest.mark.timeout(60)
def test_the_v3_migration_records_each_new_runs_process_identity(tmp_path):
    store = tmp_path / "v1"
    shutil.copytree(FIXTURE_V1, store)
    assert ll.open_store(store, create=False).schema_version() == 1
    old = ll.get_run("legacy-exp/v1-run", store=store)
    with ll.start_run("legacy-exp", store=store) as run:
        pass
    assert ll.open_store(store).schema_version() == SCHEMA_VERSION >= 3
    conn = sqlite3.connect(store / DB_FILENAME)
    rows = dict(
        (r[0], r[1:]) for r in conn.execute("SELECT id, pid, pid_start, pid_ns, boot_id FROM runs").fetchall()
    )
    conn.close()
    assert rows[old.id][1:] == (None, None, None)
    me = liveness.process_identity()
    assert rows[run.id] == (os.getpid(), me["pid_start"], me["pid_ns"], me["boot_id"])
    if os.path.exists("/proc/self/stat"):
        assert me["pid_start"] > 0 and me["pid_ns"] > 0 and len(me["boot_id"]) == 36


@pytest.mark.timeout(60)
def test_a_pid_reused_by_another_process_does_not_keep_a_dead_run_alive(run):
    if liveness.process_identity()["pid_start"] is None:
        pytest.skip("needs /proc")
    other = subprocess.Popen(["sleep", "30"])
    try:
        with open(f"/proc/{other.pid}/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        with run.store.write() as conn:
            conn.execute("UPDATE runs SET pid = ?, pid_start = ? WHERE id = ?", (other.pid, start, run.id))
        assert ll.get_run(run.id).status == "running"  # that process is the run's
        with run.store.write() as conn:
            conn.execute("UPDATE runs SET pid_start = ? WHERE id = ?", (start - 1, run.id))
        assert ll.get_run(run.id).status == "crashed"  # same pid, another process
    finally:
        other.kill()
        other.wait()
        with run.store.write() as conn:
            conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (os.getpid(), run.id))


CONTAINED = """
import sys
import labledger as ll
run = ll.start_run("readers", name="contained")
run.log_metric("loss", 0.5)
run.flush()
print(run.id, flush=True)
sys.stdin.readline()
"""


@pytest.mark.timeout(60)
def test_a_run_in_its_own_pid_namespace_is_judged_by_its_heartbeat(store_path, monkeypatch, tmp_path):
    unshare = shutil.which("unshare")
    if (
        unshare is None
        or subprocess.run([unshare, "--pid", "--fork", "true"], capture_output=True).returncode
    ):
        pytest.skip("needs unshare --pid (root or user namespaces)")
    script = tmp_path / "contained.py"
    script.write_text(CONTAINED)
    proc = subprocess.Popen(
        [unshare, "--pid", "--fork", sys.executable, str(script)],
        env={**os.environ, "LABLEDGER_STORE": str(store_path), "LABLEDGER_COMPLETENESS": "off"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        view = ll.get_run(run_id)
        assert view.pid == 1, "inside its PID namespace the run's process is pid 1"
        assert view.status == "running"
        monkeypatch.setenv("LABLEDGER_HEARTBEAT_TIMEOUT", "1")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    time.sleep(1.5)
    assert ll.get_run(run_id).status == "crashed"


@pytest.mark.timeout(30)
def test_inside_a_bulk_transaction_reads_see_its_own_uncommitted_rows(run):
    store = run.store
    with store.transaction():
        child = ll.start_run("bulk", parent=run)
        assert store.query("SELECT status FROM runs WHERE id = ?", (child.id,))[0][0] == "running"
        assert ll.get_run(child.id, store=store).parent_id == run.id
        child.end()


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE songs (title TEXT, year INTEGER)")
    conn.execute("INSERT INTO songs VALUES ('So What', 1959)")
    conn.commit()
    conn.close()


@pytest.mark.timeout(60)
def test_a_foreign_sqlite_file_is_refused_and_left_byte_for_byte_unchanged(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    _foreign(store / DB_FILENAME)
    os.utime(store / DB_FILENAME, ns=(1_000_000_000, 1_000_000_000))
    before = _snapshot(store)
    for action in (lambda: ll.runs(store=store), lambda: ll.start_run("x", store=store)):
        with pytest.raises(StoreError, match="not a labledger store") as info:
            action()
        assert "songs" in str(info.value) and "unchanged" in str(info.value)
    done = _cli("runs", "--store", str(store))
    assert done.returncode == 1 and "not a labledger store" in done.stderr
    assert "Traceback" not in done.stderr
    assert _snapshot(store) == before
    assert sorted(p.name for p in store.iterdir()) == [DB_FILENAME]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["empty-file", "empty-database"])
def test_an_empty_file_or_database_becomes_a_new_store(tmp_path, kind):
    store = tmp_path / "store"
    store.mkdir()
    if kind == "empty-file":
        (store / DB_FILENAME).write_bytes(b"")
    else:
        conn = sqlite3.connect(store / DB_FILENAME)
        conn.execute("CREATE TABLE scratch (a)")
        conn.execute("DROP TABLE scratch")
        conn.commit()
        conn.close()
        assert (store / DB_FILENAME).stat().st_size > 0
    assert ll.runs(store=store).empty
    with ll.start_run("fresh", store=store) as run:
        run.log_metric("m", 1.0)
    assert list(ll.runs(store=store)["status"]) == ["finished"]


RACE = """
import json, os, sys, time
from pathlib import Path
import labledger as ll

root, processes, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
results = []
for r in range(rounds):
    store = root / f"store-{r}"
    gate_r, gate_w = os.pipe()
    pids = []
    for w in range(processes):
        pid = os.fork()
        if pid == 0:
            os.close(gate_w)
            code = 1
            try:
                os.read(gate_r, 1)  # returns when the parent closes the gate: all start at once
                with ll.start_run("race", store=store) as run:
                    run.log_metric("m", float(w))
                code = 0
            except BaseException as e:
                sys.stderr.write(f"{type(e).__name__}: {e}\\n")
            finally:
                sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    os.close(gate_r)
    if r == 0 and len(sys.argv) > 4:  # the caller holds the new file's lock: tell it we are ready
        print("ready", flush=True)
        sys.stdin.readline()
    time.sleep(0.05)
    os.close(gate_w)
    results.append([os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids])
print(json.dumps(results))
"""


def _race(tmp_path: Path, processes: int, rounds: int) -> tuple[list[list[int]], str]:
    script = tmp_path / "race.py"
    script.write_text(RACE)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(processes), str(rounds)],
        capture_output=True,
        text=True,
        timeout=110,
        env={**os.environ, "LABLEDGER_COMPLETENESS": "off", "LABLEDGER_CAPTURE_CODE": "0"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), done.stderr


@pytest.mark.timeout(120)
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_many_processes_creating_one_store_at_the_same_moment_all_succeed(tmp_path):
    processes, rounds = 24, 5
    results, stderr = _race(tmp_path, processes, rounds)
    failures = sum(code != 0 for codes in results for code in codes)
    assert failures == 0, f"{failures} of {processes * rounds} failed:\n{stderr[-3000:]}"
    for r in range(rounds):
        store = tmp_path / f"store-{r}"
        assert integrity(store / DB_FILENAME) == "ok"
        assert len(ll.runs("race", store=store)) == processes


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_creating_a_store_whose_file_another_process_has_locked_waits_and_never_blames_damage(tmp_path):
    """A lock held longer than SQLite's busy timeout (5 s) is waited out, never called corruption."""
    store = tmp_path / "store-0"
    store.mkdir()
    conn = sqlite3.connect(store / DB_FILENAME, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")  # as another creator would, for longer than the busy timeout
    script = tmp_path / "race.py"
    script.write_text(RACE)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), "3", "1", "hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LABLEDGER_COMPLETENESS": "off", "LABLEDGER_CAPTURE_CODE": "0"},
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.stdin.write("\n")
        proc.stdin.flush()
        time.sleep(6.0)
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    out, err = proc.communicate(timeout=50)
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == [[0, 0, 0]], err
    assert "corrupt" not in err and "damaged" not in err
    assert len(ll.runs("race", store=store)) == 3
