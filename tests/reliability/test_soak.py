"""Soak: 8 writers × 1M points under random SIGKILL/SIGTERM/SIGINT, a disk that fills and empties, readers.

Not in the default run: ``pytest -m soak`` (a few minutes on 2 cores). At the
end every acknowledged point is stored (``run.flush()`` returned ⇒ the points
logged before it are in the store), every run stored a gapless prefix of what
it logged, no run is left ``running``, and ``labledger fsck`` finds nothing.
The figures are printed (``-s``) for the README's reliability section.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import labledger as ll
from labledger import store as store_module

from .conftest import integrity

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(sys.platform != "linux", reason="tmpfs and signals as on Linux"),
]

WRITERS = 8
POINTS = 1_000_000  # per writer: 500,000 steps of two keys
FLUSH_EVERY = 10_000
DEADLINE = 540.0
SIGNALS = 40

WRITER = """
import os, sys
import labledger as ll
from labledger.errors import StoreWriteError

slot, steps, every, ack_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ack = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
with ll.start_run("soak", name=f"slot-{slot}") as run:
    os.write(ack, f"run {run.id}\\n".encode())
    step = 0
    while step < steps:
        for _ in range(every // 2):
            run.log_metrics({"a": float(step), "b": -float(step)}, step=step)
            step += 1
        try:
            run.flush()
        except StoreWriteError:
            continue  # the disk is full: the points are kept; acknowledged once a flush returns
        os.write(ack, f"ack {run.id} {step}\\n".encode())
    run.flush()
    os.write(ack, f"ack {run.id} {step}\\n".encode())
os.write(ack, f"done {run.id}\\n".encode())
"""

READER = """
import os, random, sys, time
import labledger as ll

stop = sys.argv[1]
reads = 0
while not os.path.exists(stop):
    df = ll.runs("soak")
    if len(df):
        view = ll.get_run(random.choice(list(df["id"])))
        for key, s in view.summary.items():
            assert s["count"] >= 0, key
    reads += 1
    time.sleep(0.05)
print(reads, flush=True)
"""


def _mount_tmpfs(target: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    target.mkdir()
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)]).returncode == 0
    )


def _fill(path: Path) -> None:
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
        except OSError:
            pass


def _acks(path: Path) -> tuple[dict[str, int], set[str]]:
    acked: dict[str, int] = {}
    done: set[str] = set()
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[0] == "run":
            acked.setdefault(parts[1], 0)
        elif parts[0] == "ack" and len(parts) == 3:
            acked[parts[1]] = max(acked.get(parts[1], 0), int(parts[2]))
        elif parts[0] == "done":
            done.add(parts[1])
    return acked, done


@pytest.mark.timeout(600)
def test_soak_every_acknowledged_point_survives_signals_a_full_disk_and_readers(tmp_path, monkeypatch):
    rng = random.Random(2026)
    mount = tmp_path / "disk"
    on_tmpfs = _mount_tmpfs(mount, "384m")
    if not on_tmpfs:
        mount.mkdir()
    store = mount / "store"
    monkeypatch.setenv("LABLEDGER_STORE", str(store))
    env = {
        **os.environ,
        "LABLEDGER_STORE": str(store),
        "LABLEDGER_COMPLETENESS": "off",
        "LABLEDGER_CAPTURE_CODE": "0",
    }
    env.pop("PYTHONWARNINGS", None)
    acks = tmp_path / "acks"  # beside the store, on another filesystem: it survives the full disk
    acks.mkdir()
    for name, code in (("writer.py", WRITER), ("reader.py", READER)):
        (tmp_path / name).write_text(code)

    def start_writer(slot: int) -> subprocess.Popen[bytes]:
        steps = POINTS // 2  # two keys a step
        args = [str(tmp_path / "writer.py"), str(slot), str(steps), str(FLUSH_EVERY), str(acks / f"{slot}")]
        with open(acks / f"{slot}.stderr", "a") as err:
            return subprocess.Popen([sys.executable, *args], env=env, stderr=err)

    started = time.monotonic()
    ll.open_store(store)  # create the store before the crowd arrives
    writers = {slot: start_writer(slot) for slot in range(WRITERS)}
    stop = tmp_path / "stop"
    readers = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "reader.py"), str(stop)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    finished: set[int] = set()
    signals = {"SIGKILL": 0, "SIGTERM": 0, "SIGINT": 0}
    restarts = 0
    outage: tuple[float, float] | None = None
    filler = mount / "filler"
    next_signal = time.monotonic() + rng.uniform(0.5, 1.5)
    fill_at = time.monotonic() + 3 if on_tmpfs else None
    try:
        while len(finished) < WRITERS:
            assert time.monotonic() - started < DEADLINE, "the soak did not finish in time"
            now = time.monotonic()
            if fill_at is not None and now >= fill_at and outage is None:
                _fill(filler)
                outage = (now, 0.0)
            if outage is not None and outage[1] == 0.0 and now >= outage[0] + 5:
                filler.unlink()
                outage = (outage[0], time.monotonic())
            if now >= next_signal and sum(signals.values()) < SIGNALS:
                slot = rng.choice([s for s in writers if s not in finished])
                name = rng.choice(list(signals))
                writers[slot].send_signal(getattr(signal, name))
                signals[name] += 1
                next_signal = now + rng.uniform(0.2, 1.0)
            for slot, proc in list(writers.items()):
                if slot in finished or proc.poll() is None:
                    continue
                _, done = _acks(acks / f"{slot}")
                if proc.returncode == 0 and done:
                    finished.add(slot)
                else:
                    writers[slot] = start_writer(slot)
                    restarts += 1
            time.sleep(0.1)
    finally:
        stop.touch()
        for proc in writers.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        reads = [int((r.communicate(timeout=60)[0] or "0").strip() or 0) for r in readers]
    elapsed = time.monotonic() - started
    try:
        assert all(r.returncode == 0 for r in readers), "a reader failed"
        assert integrity(store / "labledger.db") == "ok"
        stored_points = 0
        runs = 0
        for slot in range(WRITERS):
            acked, _ = _acks(acks / f"{slot}")
            for run_id, ack in acked.items():
                runs += 1
                view = ll.get_run(run_id)
                assert view.status != "running", f"run {run_id} is still running"
                for key in ("a", "b"):
                    steps = view.metric(key)["step"].to_numpy()
                    assert len(steps) >= ack, f"run {run_id}: {ack - len(steps)} acknowledged points lost"
                    assert (steps == range(len(steps))).all(), f"run {run_id}: not a gapless prefix"
                    assert view.summary.get(key, {}).get("count", 0) == len(steps)
                stored_points += 2 * len(view.metric("a"))
        fsck = subprocess.run(
            [sys.executable, "-m", "labledger.cli", "fsck", "--store", str(store)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        stderr = "".join((acks / f"{slot}.stderr").read_text() for slot in range(WRITERS))
        refused_starts = stderr.count("labledger.errors.StoreError")
        print(
            f"\nsoak: {WRITERS} writers × {POINTS:,} points, {runs} runs, {stored_points:,} points "
            f"stored in {elapsed:.0f} s; signals {signals}, {restarts} writer restarts "
            f"({refused_starts} of them after start_run was refused on the full disk); "
            f"full disk for {(outage[1] - outage[0]) if outage else 0:.0f} s"
            f"{'' if on_tmpfs else ' (skipped: needs root for a tmpfs)'}; reader passes {reads}; fsck clean"
        )
    finally:
        store_module._open.pop(store.resolve(), None)
        if on_tmpfs:
            subprocess.run(["umount", "-l", str(mount)], check=False)
