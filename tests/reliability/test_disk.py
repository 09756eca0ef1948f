"""Disk trouble mid-run: training goes on, one clear message names the store, what was written stays."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import labledger as ll
from labledger import store as store_module
from labledger.errors import StoreError

from .conftest import integrity

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and tmpfs are Linux's")

TRAINING = """
import os, resource, signal, sys, time, warnings
import labledger as ll

store, mode = sys.argv[1], sys.argv[2]
run = ll.start_run("disk", name="victim", store=store)
for i in range(1000):
    run.log_metric("loss", float(i), step=i)
run.flush()  # these 1,000 points are on disk before the trouble starts
if mode == "fsize":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    size = max(os.path.getsize(os.path.join(store, f)) for f in os.listdir(store))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 16_384, resource.RLIM_INFINITY))
step = 1000
for epoch in range(30):  # "training": must run to the end whatever happens to the store
    for _ in range(2000):
        run.log_metric("loss", float(step), step=step)
        step += 1
    time.sleep(0.02)
run.end()
print(f"training finished after {step} steps", flush=True)
"""


def _train(tmp_path, store, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(TRAINING)
    env = {**os.environ, "LABLEDGER_FLUSH_INTERVAL": "0.05", "LABLEDGER_COMPLETENESS": "off"}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(
        [sys.executable, str(script), str(store), mode], env=env, capture_output=True, text=True, timeout=90
    )


def _check(result: subprocess.CompletedProcess[str], store) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training finished after 61000 steps" in result.stdout
    db = str(store / "labledger.db")
    messages = [line for line in result.stderr.splitlines() if db in line and "Warning" in line]
    assert messages, f"no warning names the store {db}:\n{result.stderr[-3000:]}"
    assert len(messages) == 1, "one clear message, not one per hook:\n" + "\n".join(messages)
    assert "cannot be written" in messages[0]
    assert "sqlite3." not in result.stderr.split(messages[0])[0], "no raw SQLite traceback before it"

    assert integrity(store / "labledger.db") == "ok"
    view = ll.get_run("disk/victim", store=store)
    # the end may not fit on a full disk; then the crash cannot be recorded either ("running")
    assert view.status in ("crashed", "finished", "running")
    history = view.metric("loss")
    assert history["step"].tolist()[:1000] == list(range(1000))
    assert history["step"].is_monotonic_increasing and view.summary["loss"]["count"] == len(history)


@pytest.mark.timeout(120)
def test_a_file_size_limit_mid_run_does_not_stop_training(tmp_path):
    store = tmp_path / "store"
    _check(_train(tmp_path, store, "fsize"), store)


def _mount_tiny_tmpfs(target) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    target.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(target)], capture_output=True
    )
    return done.returncode == 0


@pytest.mark.timeout(120)
def test_a_full_filesystem_mid_run_does_not_stop_training(tmp_path):
    mount = tmp_path / "tiny"
    if not _mount_tiny_tmpfs(mount):
        pytest.skip("mounting a 1 MB tmpfs needs root")
    try:
        store = mount / "store"
        _check(_train(tmp_path, store, "full"), store)
    finally:
        store_module._open.pop(store.resolve(), None)  # let go of the connection before unmounting
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.timeout(60)
def test_a_store_on_a_read_only_mount_reads_and_refuses_writes_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "off")
    source = tmp_path / "source"
    # written by another process: this one must hold no open file of the store
    code = (
        "import labledger as ll, sys\nwith ll.start_run('disk', store=sys.argv[1]) as r: r.log_metric('a', 1)"
    )
    subprocess.run([sys.executable, "-c", code, str(source / "store")], check=True, timeout=60)
    mount = tmp_path / "readonly"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "--bind", str(source), str(mount)]).returncode:
        pytest.skip("a read-only bind mount needs root")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)]).returncode:
            pytest.skip("cannot remount read-only here")
        store = mount / "store"
        assert list(ll.runs(store=store)["status"]) == ["finished"]  # reading never writes
        with pytest.raises(StoreError, match="read-only") as info:
            ll.start_run("disk", store=store)
        assert str(store) in str(info.value)
    finally:
        store_module._open.pop((mount / "store").resolve(), None)
        subprocess.run(["umount", "-l", str(mount)], check=False)
