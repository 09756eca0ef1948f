"""labledger's workloads of the side-by-side benchmark, and labledger's figures alone.

    python benchmarks/hot_path.py [--scale 1.0] [--repeat 5] [--only W1,W3] [--json results.json]

The functions below are what ``benchmarks/run.py`` runs for labledger (same W ids, sizes and
definitions); this script runs them through run.py's machinery without the peers: every repeat
in a fresh interpreter and a fresh folder, the median of ``--repeat`` (at least 5 for a figure
you quote) with the min–max beside it.

- W1: ``run.log_metric("loss", i * 1e-5, step=i)`` 100,000 times: µs per call of the loop;
  the ``run.end()`` after it (the final flush) as a second figure.
- W2: 10,000 steps x 20 keys (200,000 points) through ``run.log_metrics(row, step=i)``, then
  ``run.end()``: points/s (the dicts are built before the timer starts; ``start_run`` is W8's).
- W3: one 100,000-point history, written by another process: in a fresh process with pandas
  and labledger imported, the first ``ll.get_run(id).metric("loss")`` (cold) and a second (warm).
- W4: 1,000 runs x (10 params, 5 metrics): write time per run; then, in a fresh process with
  pandas and labledger imported, the first ``ll.runs("bench")`` (cold) and a second (warm).
- W6: ``python -c "import labledger"`` wall time, beside ``python -c pass``.
- W7: two curves of 1,000,000 points, each logged with ``log_metric(step=i)`` into a new store
  and ended: (a) a float32 training loss, (b) float64 values. Bytes per point in the metric
  chunks, and in the database file after a WAL checkpoint.
- W8: ``start_run`` in a fresh process after ``import labledger``: into a new store (the
  process's first, with plugin discovery), into a second new store, and the median of 20 into
  an existing store (each run ended outside the timed region).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LABLEDGER_COMPLETENESS", "off")  # the workloads measure logging, not lineage advice

import labledger as ll

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import (  # noqa: E402
    CURVES,
    W2_WIDTH,
    W8_CALLS,
    median,
    ms,
    w2_rows,
    w3_value,
    w4_metrics,
    w4_params,
)


def w1_log_metric(n: int, folder: Path) -> dict[str, Any]:
    run = ll.start_run("bench", store=folder / "store")
    t0 = time.perf_counter()
    for i in range(n):
        run.log_metric("loss", i * 1e-5, step=i)
    t1 = time.perf_counter()
    run.end()
    t2 = time.perf_counter()
    return {"us_per_call": (t1 - t0) / n * 1e6, "end_ms": ms(t2 - t1), "calls": n}


def w2_log_metrics(steps: int, folder: Path) -> dict[str, Any]:
    rows = w2_rows(steps)
    t0 = time.perf_counter()
    run = ll.start_run("bench", store=folder / "store")
    t1 = time.perf_counter()
    for i, row in enumerate(rows):
        run.log_metrics(row, step=i)
    run.end()
    t2 = time.perf_counter()
    points = steps * W2_WIDTH
    return {"points_per_s": points / (t2 - t1), "points": points, "start_run_ms": ms(t1 - t0)}


def w3_write(n: int, folder: Path) -> dict[str, Any]:
    store = folder / "store"
    with ll.start_run("bench", store=store) as run:
        for i in range(n):
            run.log_metric("loss", w3_value(i), step=i)
    return {"store": str(store), "run_id": run.id, "points": n}


def w3_read(info: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd  # noqa: F401 - imported beforehand, as in a notebook

    times = []
    for _ in range(2):  # the process's first read of the history (cold), then a second (warm)
        t0 = time.perf_counter()
        df = ll.get_run(info["run_id"], store=info["store"]).metric("loss")
        times.append(time.perf_counter() - t0)
        assert len(df) == info["points"], len(df)
    return {"cold_ms": ms(times[0]), "warm_ms": ms(times[1]), "points": info["points"]}


def w4_write(n_runs: int, folder: Path) -> dict[str, Any]:
    store = folder / "store"
    ll.open_store(store)  # created before the timer starts
    t0 = time.perf_counter()
    for r in range(n_runs):
        with ll.start_run("bench", store=store) as run:
            run.log_params(w4_params(r))
            run.log_metrics(w4_metrics(r), step=0)
    write = time.perf_counter() - t0
    return {"store": str(store), "write_ms_per_run": ms(write) / n_runs, "runs": n_runs}


def w4_list(info: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd  # noqa: F401 - imported beforehand, as in a notebook

    times = []
    for _ in range(2):  # the process's first listing (cold), then a second (warm)
        t0 = time.perf_counter()
        df = ll.runs("bench", store=info["store"])
        times.append(time.perf_counter() - t0)
        assert len(df) == info["runs"], len(df)
    return {"list_cold_ms": ms(times[0]), "list_warm_ms": ms(times[1]), "runs": info["runs"]}


def _db_bytes(store: Path) -> tuple[int, bool]:
    """The database file's bytes after a WAL checkpoint (plus the WAL if it could not be truncated)."""
    busy, _log, _done = ll.open_store(store).conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    db = store / "labledger.db"
    files = [db, db.with_name(db.name + "-wal")]
    return sum(p.stat().st_size for p in files if p.exists()), bool(busy)


def w7_bytes(n: int, folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"points": n}
    for name, curve in CURVES:
        values = curve(n)
        store = folder / f"store-{name}"
        run = ll.start_run("bench", store=store)
        for i, v in enumerate(values):
            run.log_metric("loss", v, step=i)
        run.end()
        conn = ll.open_store(store).conn
        chunks = conn.execute("SELECT sum(length(data)) FROM metric_chunks").fetchone()[0]
        db, busy = _db_bytes(store)
        out[f"{name}_chunk_bpp"] = chunks / n
        out[f"{name}_db_bpp"] = db / n
        out[f"{name}_checkpoint_busy"] = busy
    return out


def w8_start_run(folder: Path) -> dict[str, Any]:
    """Run in a fresh process right after ``import labledger``."""
    t0 = time.perf_counter()
    run = ll.start_run("bench", store=folder / "new-1")  # the process's first: discovers the plugins
    first = time.perf_counter() - t0
    run.end()
    t0 = time.perf_counter()
    run = ll.start_run("bench", store=folder / "new-2")
    second = time.perf_counter() - t0
    run.end()
    existing = []
    for _ in range(W8_CALLS):
        t0 = time.perf_counter()
        run = ll.start_run("bench", store=folder / "new-1")
        existing.append(time.perf_counter() - t0)
        run.end()
    return {
        "new_first_ms": ms(first),
        "new_second_ms": ms(second),
        "existing_ms": ms(median(existing)),
        "existing_calls": W8_CALLS,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import run as bench
    from update_readme import print_own_table, rows

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="shrink or grow every workload")
    parser.add_argument("--repeat", type=int, default=5, help="fresh-process rounds; the median is kept")
    parser.add_argument(
        "--only", default="W1,W2,W3,W4,W6,W7,W8", help="comma-separated subset of W1..W8 (W5: run.py)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    workloads = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    doc = bench.run_all(["labledger"], workloads, args.scale, max(1, args.repeat), bench.log)
    doc["table"] = rows(doc, workloads)
    print_own_table(doc, doc["table"])
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    return doc


if __name__ == "__main__":
    main()
