"""labledger's logging hot path, measured on this machine.

    python benchmarks/hot_path.py [--scale 1.0] [--json results.json]

Workloads (the ids match the side-by-side benchmark's table):

- W1: one run, ``log_metric`` 10,000 times (step = i), then end the run (final flush included).
- W2: one run, 2,000 steps x 20 metrics through ``log_metrics``, end to end.
- W3: read back a 100,000-point history of one metric into a DataFrame.
- W4: 1,000 runs x (10 params, 5 metrics): write, then list them all as a DataFrame.
- W6: ``python -c "import labledger"`` in a fresh interpreter.
- W7: metric bytes stored per point after W2.

Each timed workload runs in a fresh store in a temporary folder; the best of
``--repeat`` rounds is reported, as timeit does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LABLEDGER_COMPLETENESS", "off")  # the workloads measure logging, not lineage advice

import labledger as ll


def _fresh_store() -> Path:
    return Path(tempfile.mkdtemp(prefix="labledger-bench-")) / "store"


def w1_log_metric(n: int) -> dict[str, float]:
    store = _fresh_store()
    run = ll.start_run("bench", store=store)
    t0 = time.perf_counter()
    for i in range(n):
        run.log_metric("loss", 0.5, step=i)
    run.end()
    dt = time.perf_counter() - t0
    return {"us_per_call": dt / n * 1e6, "calls": n}


def w2_log_metrics(steps: int, width: int) -> dict[str, float]:
    store = _fresh_store()
    names = [f"metric_{j}" for j in range(width)]
    run = ll.start_run("bench", store=store)
    t0 = time.perf_counter()
    for i in range(steps):
        run.log_metrics({k: math.sin(i * 0.01 + j) for j, k in enumerate(names)}, step=i)
    run.end()
    dt = time.perf_counter() - t0
    points = steps * width
    blob = ll.open_store(store).conn.execute("SELECT sum(length(data)) FROM metric_chunks").fetchone()[0]
    db_bytes = sum(p.stat().st_size for p in store.glob("labledger.db*"))
    return {
        "points_per_s": points / dt,
        "points": points,
        "chunk_bytes_per_point": blob / points,
        "db_file_bytes_per_point": db_bytes / points,
    }


def w3_read_history(n: int) -> dict[str, float]:
    store = _fresh_store()
    with ll.start_run("bench", store=store) as run:
        for i in range(n):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
    ll.get_run(run.id, store=store).metric("loss")  # warm imports
    t0 = time.perf_counter()
    df = ll.get_run(run.id, store=store).metric("loss")
    dt = time.perf_counter() - t0
    assert len(df) == n
    return {"ms": dt * 1e3, "points": n}


def w4_many_runs(n_runs: int) -> dict[str, float]:
    store = _fresh_store()
    ll.open_store(store)
    t0 = time.perf_counter()
    for r in range(n_runs):
        with ll.start_run("bench", store=store) as run:
            run.log_params({f"p{j}": r * j for j in range(10)})
            run.log_metrics({f"m{j}": r / (j + 1) for j in range(5)}, step=0)
    write = time.perf_counter() - t0
    ll.runs("bench", store=store)  # warm imports
    t0 = time.perf_counter()
    df = ll.runs("bench", store=store)
    listing = time.perf_counter() - t0
    assert len(df) == n_runs
    return {"write_ms_per_run": write / n_runs * 1e3, "list_ms": listing * 1e3, "runs": n_runs}


def w6_import() -> dict[str, float]:
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import labledger"], check=True)
        times.append(time.perf_counter() - t0)
    base = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        base.append(time.perf_counter() - t0)
    return {"ms": min(times) * 1e3, "interpreter_ms": min(base) * 1e3}


def best(fn: Callable[[], dict[str, float]], key: str, repeat: int, lower: bool = True) -> dict[str, float]:
    results = [fn() for _ in range(repeat)]
    pick = min if lower else max
    chosen = pick(results, key=lambda r: r[key])
    chosen["median_" + key] = statistics.median(r[key] for r in results)
    return chosen


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="shrink or grow every workload")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    s = args.scale
    results = {
        "W1": best(lambda: w1_log_metric(int(10_000 * s)), "us_per_call", args.repeat),
        "W2": best(lambda: w2_log_metrics(int(2_000 * s), 20), "points_per_s", args.repeat, lower=False),
        "W3": best(lambda: w3_read_history(int(100_000 * s)), "ms", args.repeat),
        "W4": best(lambda: w4_many_runs(int(1_000 * s)), "list_ms", max(1, args.repeat // 2)),
        "W6": w6_import(),
    }
    results["W7"] = {
        "bytes_per_point": results["W2"]["chunk_bytes_per_point"],
        "db_file_bytes_per_point": results["W2"]["db_file_bytes_per_point"],
    }
    rows = [
        ("W1", "log_metric, 10k calls + end", f"{results['W1']['us_per_call']:.2f} µs/call", "≤ 2 µs/call"),
        (
            "W2",
            "2,000 steps × 20 metrics",
            f"{results['W2']['points_per_s']:,.0f} points/s",
            "≥ 1,000,000 points/s",
        ),
        ("W3", "read 100k-point history", f"{results['W3']['ms']:.1f} ms", "≤ 20 ms"),
        ("W4", "1,000 runs: write", f"{results['W4']['write_ms_per_run']:.2f} ms/run", "≤ 2 ms/run"),
        ("W4", "1,000 runs: list as DataFrame", f"{results['W4']['list_ms']:.1f} ms", "≤ 50 ms"),
        (
            "W6",
            "python -c 'import labledger'",
            f"{results['W6']['ms']:.0f} ms (bare interpreter {results['W6']['interpreter_ms']:.0f} ms)",
            "≤ 100 ms",
        ),
        (
            "W7",
            "metric bytes per point",
            f"{results['W7']['bytes_per_point']:.1f} B "
            f"(db files {results['W7']['db_file_bytes_per_point']:.1f} B)",
            "≤ 24 B",
        ),
    ]
    print(
        f"labledger {ll.__version__} hot path — {platform.python_version()} on {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}, scale {s}"
    )
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
