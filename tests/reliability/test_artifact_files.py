"""Artifacts from odd files and onto full disks: a clear error or a listed skip, never a hang,
never a raw OSError, and never a temporary file left behind (not even after SIGKILL)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

import labledger as ll
from labledger import errors
from labledger import store as store_module

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="FIFOs, RLIMIT_FSIZE and tmpfs are Linux's")


def _leftovers(store: Path) -> list[str]:
    root = store / "artifacts"
    return sorted(p.name for p in root.glob(".incoming-*")) if root.exists() else []


@pytest.mark.timeout(60)
def test_a_fifo_is_refused_at_once_and_never_opened(tmp_path, run_script):
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    code = f"""
        import labledger as ll
        run = ll.start_run("odd-files")
        try:
            run.log_artifact({str(fifo)!r})
        except Exception as e:
            print(type(e).__name__, "|", e, flush=True)
        run.log_metric("still", 1.0)
        run.end()
        print("run ended", flush=True)
    """
    try:  # the process blocks forever if labledger opens the FIFO for reading
        done = run_script(code, env={"LABLEDGER_COMPLETENESS": "off"}, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("log_artifact(<a FIFO>) blocked: it opened the FIFO")
    assert done.returncode == 0, done.stderr[-2000:]
    kind, _, message = done.stdout.partition(" | ")
    assert kind == "ArtifactSourceError"
    assert str(fifo) in message and "FIFO" in message and "regular file" in message
    assert "run ended" in done.stdout


@pytest.mark.timeout(30)
def test_sockets_and_devices_are_refused_with_the_path(tmp_path, run):
    sock_path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        for path, what in ((sock_path, "socket"), (Path("/dev/null"), "character device")):
            with pytest.raises(errors.LabledgerError) as info:
                run.log_artifact(path)
            assert isinstance(info.value, errors.ArtifactSourceError)
            assert isinstance(info.value, errors.InvalidValueError)
            assert info.value.path == str(path) and info.value.file_type == what
            assert str(path) in str(info.value)
    finally:
        server.close()
    assert run.store.query("SELECT count(*) AS n FROM artifacts")[0]["n"] == 0


@pytest.mark.timeout(30)
def test_a_fifo_swapped_in_after_the_check_is_caught_without_blocking(tmp_path, monkeypatch):
    """The race between ``stat`` and ``open``: the descriptor is re-checked, and opening never waits."""
    from labledger.store import blobs

    regular = tmp_path / "regular"
    regular.write_bytes(b"x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(blobs.os, "stat", lambda p, *a, **k: real_stat(regular if p == fifo else p, *a, **k))
    outcome: list[BaseException | None] = []

    def put() -> None:
        try:
            blobs.BlobStore(tmp_path / "blobs").put_file(fifo)
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    worker = threading.Thread(target=put, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():
        with open(fifo, "wb"):  # let the blocked open go (it reads nothing and ends)
            pass
        pytest.fail("put_file blocked opening a FIFO")
    assert isinstance(outcome[0], errors.ArtifactSourceError), outcome
    assert outcome[0].file_type == "fifo"


@pytest.mark.timeout(30)
def test_a_directory_artifact_lists_what_it_skipped_and_warns_once(tmp_path, run):
    folder = tmp_path / "model_dir"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w" * 100)
    (folder / "sub" / "config.json").write_text("{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "vocab.txt").write_text("a b c")
    os.symlink(folder / "weights.bin", folder / "weights-link.bin")  # symlinks to files and
    os.symlink(outside, folder / "linked")  # directories are followed
    os.mkfifo(folder / "pipe")
    os.symlink(tmp_path / "missing", folder / "dangling")
    os.symlink("..", folder / "sub" / "up")  # a loop back into the artifact
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sub" / "agent.sock"))
    try:
        with pytest.warns(ll.plugins.LabledgerWarning) as caught:
            record = run.log_artifact(folder, kind="model")
    finally:
        server.close()
    assert [w for w in caught if "not stored" in str(w.message)] == list(caught), "one warning only"
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "model_dir" in message and "pipe (fifo)" in message
    assert record.metadata["skipped"] == [
        {"path": "dangling", "reason": "dangling symlink"},
        {"path": "pipe", "reason": "fifo"},
        {"path": "sub/agent.sock", "reason": "socket"},
        {"path": "sub/up", "reason": "symlink loop"},
    ]
    assert [f[0] for f in record.files or []] == [
        "linked/vocab.txt",
        "sub/config.json",
        "weights-link.bin",
        "weights.bin",
    ]
    stored = ll.get_run(run.id).artifacts[0]
    assert stored.metadata["skipped"] == record.metadata["skipped"]
    assert (stored.path / "linked" / "vocab.txt").read_text() == "a b c"
    # the same directory again: same content, same record, no new warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = run.log_artifact(folder, kind="model")
    assert again.sha256 == record.sha256


FULL_DISK = """
import json, os, resource, signal, sys
import labledger as ll
from labledger.errors import LabledgerError

store, source = sys.argv[1], sys.argv[2]
run = ll.start_run("disk", name="artifact", store=store)
run.log_metric("loss", 1.0, step=0)
run.flush()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
size = max(os.path.getsize(os.path.join(store, f)) for f in os.listdir(store) if f.endswith(".db"))
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 1_000_000, resource.RLIM_INFINITY))
out = {}
try:
    run.log_artifact(source, kind="model", name="model.bin")
    out["raised"] = None
except LabledgerError as e:
    out.update(raised=type(e).__name__, message=str(e), name=e.name, needed=e.needed,
               store_error=isinstance(e, ll.errors.StoreError))
except OSError as e:
    out.update(raised="OSError", message=str(e))
out["leftovers"] = [f for f in os.listdir(os.path.join(store, "artifacts")) if f.startswith(".incoming")]
for step in range(1, 100):  # training goes on
    run.log_metric("loss", 1.0 / step, step=step)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
out["again"] = run.log_artifact(source, kind="model", name="model.bin").size
run.end()
print(json.dumps(out), flush=True)
"""


@pytest.mark.timeout(90)
def test_a_file_size_limit_gives_an_artifact_write_error_and_no_leftovers(tmp_path):
    store = tmp_path / "store"
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(6_000_000))
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK)
    env = {**os.environ, "LABLEDGER_COMPLETENESS": "off"}
    done = subprocess.run(
        [sys.executable, str(script), str(store), str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["raised"] == "ArtifactWriteError", out
    assert out["store_error"] and out["name"] == "model.bin" and out["needed"] == 6_000_000
    assert "'model.bin'" in out["message"] and "6,000,000 bytes" in out["message"]
    assert "file-size limit" in out["message"]
    assert out["leftovers"] == []
    assert out["again"] == 6_000_000
    view = ll.get_run("disk/artifact", store=store)
    assert view.summary["loss"]["count"] == 100 and [a.name for a in view.artifacts] == ["model.bin"]


@pytest.mark.timeout(60)
def test_a_full_filesystem_gives_an_artifact_write_error_naming_the_free_space(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    store = mount / "store"
    try:
        run = ll.start_run("disk", store=store)
        folder = tmp_path / "checkpoint"
        folder.mkdir()
        for i in range(4):
            (folder / f"shard-{i}.bin").write_bytes(os.urandom(1_000_000))
        with pytest.raises(errors.StoreError) as info:
            run.log_artifact(folder, kind="checkpoint")
        error = info.value
        assert isinstance(error, errors.ArtifactWriteError)
        assert error.name == "checkpoint" and error.needed == 4_000_000
        assert error.free is not None and error.free < error.needed
        assert "No space left" in str(error) and "are free" in str(error)
        assert _leftovers(store) == []
        small = tmp_path / "notes.txt"
        small.write_text("fits")
        assert run.log_artifact(small).size == 4  # the run goes on
        run.end()
    finally:
        store_module._open.pop(store.resolve(), None)
        subprocess.run(["umount", "-l", str(mount)], check=False)


KILLED_WRITER = """
import os, sys
import labledger as ll

source = sys.argv[1]
run = ll.start_run("disk", name="victim")
with open(source, "r+b") as f:
    for i in range(200):  # a new 24 MB blob each time, until the test kills us mid-copy
        f.seek(0)
        f.write(i.to_bytes(4, "big"))
        f.flush()
        run.log_artifact(source, name=f"checkpoint-{i}.bin", kind="checkpoint")
"""


@pytest.mark.timeout(120)
def test_temporary_files_of_a_killed_writer_are_removed_by_the_next_writer(tmp_path, spawn, store_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(24 << 20))
    left: list[str] = []
    for _trial in range(5):  # the kill must land while a copy is under way
        proc = spawn(KILLED_WRITER, str(source))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            partial = [p for p in (store_path / "artifacts").glob(".incoming-*") if p.stat().st_size > 0]
            if partial:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait(30)
        left = _leftovers(store_path)
        if left:
            break
    assert left, "no copy was under way when the writer was killed"
    assert proc.returncode == -signal.SIGKILL
    # the next process that writes blobs to this store removes them
    (tmp_path / "small.txt").write_text("after the crash")
    with ll.start_run("disk", store=store_path) as run:
        run.log_artifact(tmp_path / "small.txt")
    assert _leftovers(store_path) == []


@pytest.mark.timeout(30)
def test_only_temporary_files_of_dead_or_silent_writers_are_removed(tmp_path):
    from labledger.store import blobs

    store = blobs.BlobStore(tmp_path / "artifacts")
    store.root.mkdir()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        host = blobs._HOST
        names = {
            "live": f".incoming-{alive.pid}-{host}-abc123",
            "mine": f".incoming-{os.getpid()}-{host}-abc123",
            "dead": f".incoming-{dead.pid}-{host}-abc123",
            "other-host": f".incoming-{dead.pid}-00000000-abc123",
            "old-format": ".incoming-k2j4h5g3",
            "silent": f".incoming-{alive.pid}-{host}-old123",
        }
        for name in names.values():
            (store.root / name).write_bytes(b"partial")
        hour_ago = time.time() - 3700
        os.utime(store.root / names["silent"], (hour_ago, hour_ago))
        removed = {p.name for p in store.remove_stale_temp_files()}
        assert removed == {names["dead"], names["silent"]}
        later = time.time() + 3700  # an hour on, nothing unchanged for that long survives
        assert {p.name for p in store.remove_stale_temp_files(now=later)} == {
            names["live"],
            names["mine"],
            names["other-host"],
            names["old-format"],
        }
    finally:
        alive.kill()
        alive.wait()
