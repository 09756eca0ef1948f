"""Load: 8 processes x 50,000 points into one store while a reader lists runs in a loop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import labledger as ll

from .conftest import chunk_counts, integrity

pytestmark = pytest.mark.slow

PROCESSES = 8
STEPS = 10_000
KEYS = ("k0", "k1", "k2", "k3", "k4")  # 10,000 steps x 5 keys = 50,000 points per process

WORKER = """
import sys, time
from pathlib import Path
import labledger as ll

worker, go = int(sys.argv[1]), Path(sys.argv[2])
with ll.start_run("load", name=f"worker-{worker}") as run:
    run.log_params({"worker": worker})
    while not go.exists():
        time.sleep(0.005)
    for i in range({steps}):
        # one step of every key in one call: a batch always holds whole steps
        run.log_metrics(dict.fromkeys({keys}, float(i)), step=i)
        if i % 200 == 199:
            time.sleep(0.02)  # spread the writes so they overlap with the other processes
"""


@pytest.mark.timeout(150)
def test_eight_processes_and_a_reader_lose_nothing_and_never_see_half_a_batch(tmp_path, store_path, spawn):
    ll.open_store(store_path)
    go = tmp_path / "go"
    code = WORKER.replace("{steps}", str(STEPS)).replace("{keys}", repr(KEYS))
    procs = [spawn(code, str(w), str(go), env={"LABLEDGER_FLUSH_INTERVAL": "0.05"}) for w in range(PROCESSES)]
    seen: dict[tuple[str, str], int] = {}
    observed: set[int] = set()
    problems: list[str] = []
    listings = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal listings
        db = store_path / "labledger.db"
        while not done.is_set():
            try:
                df = ll.runs("load")
                for _, row in df.iterrows():
                    last = {row.get(f"metrics.{k}") for k in KEYS}
                    if len(last) > 1 and not all(v != v for v in last):  # NaN: no points yet
                        problems.append(f"keys of {row['id']} at different steps: {sorted(last)}")
                for (run_id, key), (summary, stored) in chunk_counts(db).items():
                    if summary != stored:
                        problems.append(f"{run_id}/{key}: summary says {summary}, chunks hold {stored}")
                    if summary < seen.get((run_id, key), 0):
                        problems.append(f"{run_id}/{key}: count went down to {summary}")
                    seen[(run_id, key)] = summary
                    observed.add(summary)
                listings += 1
            except Exception as e:  # anything reaching the reader is a failure
                problems.append(f"reader: {type(e).__name__}: {e}")
            time.sleep(0.01)

    ll.runs("load")  # warm the reader's imports
    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.5)  # let every worker start its run and the reader list them
    go.touch()
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        done.set()
        thread.join()
    errors = [err for _, err in outputs]
    assert [p.returncode for p in procs] == [0] * PROCESSES, errors
    assert not any("locked" in e or "Traceback" in e for e in errors), errors
    assert not problems, problems[:10]
    assert listings >= 5, "the reader should have listed the runs many times while the workers wrote"
    partial = {n for n in observed if 0 < n < STEPS}
    assert partial, "the reader should have seen runs in the middle of being written"

    assert integrity(store_path / "labledger.db") == "ok"
    df = ll.runs("load")
    assert len(df) == PROCESSES and set(df["status"]) == {"finished"}
    for run_id in df["id"]:
        view = ll.get_run(run_id)
        assert {k: s["count"] for k, s in view.summary.items()} == dict.fromkeys(KEYS, STEPS)
        for key in KEYS:
            history = view.metric(key)
            assert history["step"].tolist() == list(range(STEPS))
            assert history["value"].tolist() == [float(i) for i in range(STEPS)]
    for (_run_id, _key), (summary, stored) in chunk_counts(Path(store_path) / "labledger.db").items():
        assert summary == stored == STEPS
