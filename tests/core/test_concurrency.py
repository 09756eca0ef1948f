"""Several processes and threads logging into one store at once lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

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
