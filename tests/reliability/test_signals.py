"""Signals at random moments: while waiting for the write lock, during a flush, in a heavy logger.

Every trial is seeded and bounded in time; each counts points: what was logged is stored.
"""

from __future__ import annotations

import itertools
import json
import random
import selectors
import signal
import sqlite3
import time

import pytest

import labledger as ll

from .conftest import integrity

#: the background writer never runs by itself in these workers: the main thread's flush writes
QUIET_WRITER = {"LABLEDGER_FLUSH_INTERVAL": "3600"}

LOCK_WAITER = """
import json, sys
import labledger as ll

mode = sys.argv[1]
interrupted = 0
logged = 0
run = ll.start_run("signals", name="waiter")
try:
    with run:
        for i in range(3000):
            run.log_metric("x", float(i), step=i)
        logged = 3000
        print(run.id, flush=True)
        sys.stdin.readline()  # the test now holds the store's write lock
        try:
            run.flush()  # waits for the lock; a signal arrives meanwhile
        except KeyboardInterrupt:
            interrupted = 1
        for i in range(3000, 4000):
            run.log_metric("x", float(i), step=i)
        logged = 4000
        run.flush()
finally:
    print(json.dumps({"interrupted": interrupted, "logged": logged}), flush=True)
    if mode == "wait":
        sys.stdin.readline()
"""


def _counts(stderr: str) -> dict[str, int]:
    """The worker's counts: the JSON line it writes last (before any traceback)."""
    lines = [line for line in stderr.splitlines() if line.startswith("{")]
    assert lines, stderr[-3000:]
    return dict(json.loads(lines[-1]))


def _stored(run_id: str) -> list[int]:
    return ll.get_run(run_id).metric("x")["step"].tolist()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_waiting_for_the_write_lock_loses_nothing_and_locks_nobody_out(store_path, spawn, sig):
    rng = random.Random(11 if sig == signal.SIGINT else 12)
    for trial in range(4):
        proc = spawn(LOCK_WAITER, "wait", env=QUIET_WRITER, stdin=-1)
        run_id = proc.stdout.readline().strip()
        holder = sqlite3.connect(store_path / "labledger.db", timeout=30, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(sig)
        time.sleep(rng.uniform(0.0, 0.6))
        holder.execute("ROLLBACK")
        result = json.loads(proc.stdout.readline())
        if sig == signal.SIGINT:
            # the worker goes on: nobody else is locked out while it still lives
            probe = sqlite3.connect(store_path / "labledger.db", timeout=3, isolation_level=None)
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            probe.close()
            proc.stdin.write("bye\n")
            proc.stdin.flush()
        proc.communicate(timeout=60)
        holder.close()
        view = ll.get_run(run_id)
        assert _stored(run_id) == list(range(result["logged"])), f"trial {trial}: points lost"
        if sig == signal.SIGINT:
            assert result["interrupted"] == 1 and view.status == "finished", (trial, proc.stderr)
        else:
            assert view.status == "killed", (trial, view.status)
            assert proc.returncode == 128 + signal.SIGTERM
    assert integrity(store_path / "labledger.db") == "ok"


FLUSHER = """
import json, signal, sys
import labledger as ll

logged = 0
interrupts = 0
signals = {signal.SIGINT, signal.SIGTERM}
run = ll.start_run("signals", name="flusher")
print(run.id, flush=True)
try:
    with run:
        for batch in range(100_000):
            if interrupts == int(sys.argv[1]):
                break
            signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # signals land in the flush
            for i in range(2000):
                run.log_metric("x", float(logged), step=logged)
                logged += 1
            try:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
                run.flush()
            except KeyboardInterrupt:
                interrupts += 1
        signal.signal(signal.SIGINT, signal.SIG_IGN)
finally:
    sys.stderr.write(json.dumps({"logged": logged, "interrupts": interrupts}) + "\\n")
"""


@pytest.mark.timeout(180)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_flush_never_drops_the_batch_being_written(store_path, spawn, sig):
    """12 trials: signals at random moments of a flush loop; every logged point is stored."""
    rng = random.Random(21 if sig == signal.SIGINT else 22)
    for trial in range(12):
        proc = spawn(FLUSHER, "3", env=QUIET_WRITER)
        run_id = proc.stdout.readline().strip()
        time.sleep(rng.uniform(0.0, 0.4))
        for _ in range(200 if sig == signal.SIGINT else 1):
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
            time.sleep(rng.uniform(0.0, 0.1))
        _, err = proc.communicate(timeout=60)
        counts = _counts(err)
        steps = _stored(run_id)
        status = ll.get_run(run_id).status
        assert steps == list(range(len(steps))), f"trial {trial}: a gap in the stored points"
        assert len(steps) >= counts["logged"], (
            f"trial {trial}: {counts['logged'] - len(steps)} of {counts['logged']} points lost"
        )
        if status == "finished":
            assert len(steps) == counts["logged"]
        else:  # a Ctrl-C handled just after a flush lands in the next log_metric call and ends the run:
            # that call's point may be stored before the worker counted it
            assert status == "killed" and len(steps) <= counts["logged"] + 1, (trial, status, counts)
        if sig == signal.SIGTERM:
            assert status == "killed"
    assert integrity(store_path / "labledger.db") == "ok"


HEAVY = """
import json, signal, sys
import labledger as ll

logged = 0
interrupts = 0
run = ll.start_run("signals", name="heavy")
print(run.id, flush=True)
armed = False


def interrupt(signum, frame):
    if armed:  # only inside the logging loop (and so inside labledger's code)
        raise KeyboardInterrupt


signal.signal(signal.SIGINT, interrupt)
while interrupts < int(sys.argv[1]):
    try:
        try:
            armed = True
            while True:
                run.log_metric("x", float(logged))
                logged += 1
        finally:
            armed = False
    except KeyboardInterrupt:
        interrupts += 1
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("done", flush=True)
run.end()
sys.stderr.write(json.dumps({"logged": logged, "interrupts": interrupts}) + "\\n")
"""


@pytest.mark.timeout(120)
def test_interrupts_at_random_moments_never_hang_a_heavy_logger(store_path, spawn):
    """Back-pressure wake-ups (≥100k pending points) under a rain of Ctrl-C: the process always ends.

    A point whose ``log_metric`` call was interrupted may or may not be stored
    (and is logged again by the worker); every other point is, once, in order.
    """
    rng = random.Random(31)
    bursts = 60
    for trial in range(3):
        proc = spawn(HEAVY, str(bursts), env={"LABLEDGER_FLUSH_INTERVAL": "0.05"})
        run_id = proc.stdout.readline().strip()
        sent = 0
        with selectors.DefaultSelector() as ready:  # poll/epoll: any file descriptor number
            ready.register(proc.stdout, selectors.EVENT_READ)
            while sent < bursts * 20 and not ready.select(rng.uniform(0.0005, 0.02)):
                proc.send_signal(signal.SIGINT)
                sent += 1
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"trial {trial} did not end cleanly:\n{err[-3000:]}"
        counts = _counts(err)
        history = ll.get_run(run_id).metric("x")
        steps, values = history["step"].tolist(), history["value"].tolist()
        assert all(a < b for a, b in itertools.pairwise(steps)), f"trial {trial}: steps reordered"
        assert all(a <= b for a, b in itertools.pairwise(values)), f"trial {trial}: points reordered"
        logged = set(map(float, range(counts["logged"])))
        assert logged <= set(values), f"trial {trial}: {len(logged - set(values))} points lost"
        # the last interrupted call may have stored its point, which the worker did not log again
        assert set(values) <= logged | {float(counts["logged"])}, f"trial {trial}: points invented"
        # an interrupted call may have stored its point before the worker logged it again
        assert counts["logged"] <= len(values) <= counts["logged"] + counts["interrupts"], (trial, counts)


def test_an_interrupt_while_a_batch_is_built_keeps_its_points(store_path, monkeypatch):
    """A Ctrl-C landing as a queued batch's points become its record: the next flush stores them."""
    from labledger.tracking import delivery

    built = delivery.MetricBatch
    calls = itertools.count()

    def interrupted_once(*args, **kwargs):
        if next(calls) == 0:
            raise KeyboardInterrupt  # as a signal's handler would, inside the construction
        return built(*args, **kwargs)

    monkeypatch.setattr(delivery, "MetricBatch", interrupted_once)
    with ll.start_run("signals", name="built") as run:
        for i in range(100):
            run.log_metric("x", float(i), step=i)
        with pytest.raises(KeyboardInterrupt):
            run.flush()
        run.flush()
    assert _stored(run.id) == list(range(100))
