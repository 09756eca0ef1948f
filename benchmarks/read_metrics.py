"""Reading a large run's metric history back, measured on this machine.

    python benchmarks/read_metrics.py [--points 5000000] [--keys 10] [--flush-every 1000] [--json out.json]

One run with ``--points`` points over ``--keys`` keys is written through
``log_metrics`` into a fresh store (flushed every ``--flush-every`` steps, so
each key's history is stored in chunks of that many points, as a long
training loop stores them), then each measurement runs in a fresh
interpreter (imports warmed up first, not counted):

- R1: ``ll.get_run(id).metrics`` — every point as one DataFrame: wall time
  (best of ``--repeat``), and peak memory traced by ``tracemalloc`` while it
  runs (in its own process), next to the DataFrame's own size.
- R2: ``view.metric(key)`` — one key's history.

Targets: R1 ≤ 0.5 s with a peak ≤ 1.5 × the frame's size; R2 ≤ 20 ms per 100k points.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LABLEDGER_COMPLETENESS", "off")

MEASURE = """
import sys, time, tracemalloc
import numpy, pandas
import labledger as ll

store, run_id, what, key = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
view = ll.get_run(run_id, store=store)
view.summary  # warm the connection
if what == "time":
    t0 = time.perf_counter()
    df = view.metrics
    print(time.perf_counter() - t0, len(df), int(df.memory_usage(deep=True).sum()))
elif what == "peak":
    tracemalloc.start()
    df = view.metrics
    _, peak = tracemalloc.get_traced_memory()
    print(peak, len(df), int(df.memory_usage(deep=True).sum()))
else:
    t0 = time.perf_counter()
    one = view.metric(key)
    print(time.perf_counter() - t0, len(one), 0)
"""


def write_run(store: Path, points: int, keys: int, flush_every: int) -> str:
    import labledger as ll

    names = [f"metric_{k}" for k in range(keys)]
    steps = points // keys
    with ll.start_run("read-bench", store=store) as run:
        for i in range(steps):
            run.log_metrics({k: i * 0.001 + j for j, k in enumerate(names)}, step=i, epoch=i // 1000)
            if flush_every and i % flush_every == flush_every - 1:
                run.flush()  # one chunk per key per flush, as a long training loop stores them
    return run.id


def measure(store: Path, run_id: str, what: str, key: str = "metric_0") -> tuple[float, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(store), run_id, what, key],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=5_000_000)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--flush-every", type=int, default=1000, help="steps per stored chunk")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="labledger-bench-"))
    store = folder / "store"
    try:
        t0 = time.perf_counter()
        run_id = write_run(store, args.points, args.keys, args.flush_every)
        write_s = time.perf_counter() - t0
        times = [measure(store, run_id, "time") for _ in range(args.repeat)]
        seconds, rows, frame_bytes = min(times)
        peak, _, _ = measure(store, run_id, "peak")
        one = min(measure(store, run_id, "one")[0] for _ in range(args.repeat))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    results = {
        "points": rows,
        "keys": args.keys,
        "points_per_chunk": args.flush_every,
        "write_s": write_s,
        "metrics_s": seconds,
        "frame_mb": frame_bytes / 1e6,
        "peak_mb": peak / 1e6,
        "peak_over_frame": peak / frame_bytes,
        "metric_key_ms": one * 1e3,
        "metric_key_points": rows // args.keys,
    }
    print(
        f"labledger read benchmark — {platform.python_version()} on {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}; {rows:,} points over {args.keys} keys, "
        f"{args.flush_every:,} per chunk (written in {write_s:.1f} s)"
    )
    print(f"R1  get_run(id).metrics   {seconds:.3f} s (best of {args.repeat})   target ≤ 0.5 s")
    print(
        f"R1  peak traced memory    {peak / 1e6:.0f} MB for a {frame_bytes / 1e6:.0f} MB frame "
        f"({peak / frame_bytes:.2f}×)   target ≤ 1.5×"
    )
    print(f"R2  view.metric(key)      {one * 1e3:.1f} ms for {rows // args.keys:,} points")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
