"""Several processes and threads logging into one store at once lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

import labledger as ll

WORKER = """
import sys
import labledger as ll
worker = int(sys.argv[1])
with ll.start_run("concurrent", name=f"worker-{worker}") as run:
    run.log_params({"worker": worker})
    for i in range({points}):
        run.log_metrics({"a": float(i), "b": float(worker)}, step=i)
        if i % 5000 == 0:
            run.flush()
"""


def test_four_processes_log_into_one_store_and_every_point_is_there(tmp_path, store_path):
    points = 20_000
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER.replace("{points}", str(points))))
    env = {**os.environ, "LABLEDGER_STORE": str(store_path), "LABLEDGER_FLUSH_INTERVAL": "0.05"}
    ll.open_store(store_path)  # create the schema once, as a user's first run would
    procs = [
        subprocess.Popen([sys.executable, str(script), str(w)], env=env, stderr=subprocess.PIPE, text=True)
        for w in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    assert not any("locked" in e for e in errors)
    df = ll.runs("concurrent")
    assert len(df) == 4 and set(df["status"]) == {"finished"}
    for run_id in df["id"]:
        view = ll.get_run(run_id)
        a = view.metric("a")
        assert a["step"].tolist() == list(range(points))
        assert a["value"].tolist() == [float(i) for i in range(points)]
        assert view.summary["b"]["count"] == points
        assert view.summary["b"]["last"] == float(view.params["worker"])


def test_two_threads_logging_to_one_run_lose_nothing(run):
    n = 20_000

    def log(key: str) -> None:
        for i in range(n):
            run.log_metric(key, float(i), step=i)
            run.log_metrics({"shared": 1.0})

    threads = [threading.Thread(target=log, args=(k,)) for k in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.end()
    view = ll.get_run(run.id)
    for key in ("t1", "t2"):
        assert view.metric(key)["value"].tolist() == [float(i) for i in range(n)]
    shared = view.metric("shared")
    assert len(shared) == 2 * n and shared["step"].tolist() == list(range(2 * n))


def test_points_logged_while_other_threads_flush_are_stored_exactly_once(run):
    n, stop = 30_000, threading.Event()

    def log(offset: int) -> None:
        for i in range(n):
            run.log_metric("shared", float(offset + i), step=offset + i)

    def flush() -> None:
        while not stop.is_set():
            run.flush()

    flusher = threading.Thread(target=flush)
    flusher.start()
    loggers = [threading.Thread(target=log, args=(k * n,)) for k in range(3)]
    for t in loggers:
        t.start()
    for t in loggers:
        t.join()
    stop.set()
    flusher.join()
    run.end()
    shared = ll.get_run(run.id).metric("shared")
    assert sorted(shared["value"].tolist()) == [float(i) for i in range(3 * n)]
    assert len(ll.get_run(run.id).metrics) == 3 * n


def test_default_steps_continue_from_the_last_point_across_flushes(run):
    run.log_metric("loss", 0.5, step=41)
    run.flush()
    run.log_metric("loss", 0.4)
    run.log_metrics({"loss": 0.3, "acc": 0.9})
    run.flush()
    run.log_metrics({"acc": 0.95}, step=7)
    run.log_metric("acc", 0.96)
    run.end()
    view = ll.get_run(run.id)
    assert view.metric("loss")["step"].tolist() == [41, 42, 43]
    assert view.metric("acc")["step"].tolist() == [0, 7, 8]


def test_an_interrupted_take_puts_the_points_back_in_order(run, monkeypatch):
    from labledger.tracking import delivery

    for i in range(10):
        run.log_metric("loss", float(i), step=i)
    real = delivery.Event.metrics
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            run.log_metric("loss", 10.0, step=10)  # logged while the take is under way
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(delivery.Event, "metrics", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run.flush()
    monkeypatch.setattr(delivery.Event, "metrics", real)
    run.log_metric("loss", 11.0, step=11)
    run.end()
    assert ll.get_run(run.id).metric("loss")["value"].tolist() == [float(i) for i in range(12)]
