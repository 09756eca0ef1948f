"""Lineage costs on this machine: run-start capture and dataset fingerprint throughput.

    python benchmarks/lineage.py [--mb 100]

- capture: the full automatic capture of a top-level run (environment, git
  state and uncommitted diff, installed packages, author), first run of a
  fresh process (cold) and later runs (warm): ``start_run``'s own latency, and
  the time until the background capture is stored (``run.flush()`` waits for
  it). Run it inside a git checkout to include git.
- fingerprint: seconds to fingerprint ``--mb`` MB of float64 data as a NumPy
  array and as a pandas DataFrame (target: 100 MB ≤ 1 s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CAPTURE = r"""
import os, sys, time, json
os.environ["LABLEDGER_CAPTURE_TTL"] = "0"
import labledger as ll
out = []
for i in range(3):
    t0 = time.perf_counter()
    run = ll.start_run("bench-lineage", hypothesis="capture cost")
    started = time.perf_counter()
    run.flush()  # waits for the background capture to be stored
    captured = time.perf_counter()
    run.end()
    out.append({"start_ms": (started - t0) * 1e3, "capture_total_ms": (captured - t0) * 1e3})
git = ll.get_run(run.id).lineage.get("code", {}).get("git")
print(json.dumps({"rounds": out, "git": bool(git)}))
"""


def capture(store: str) -> dict:
    env = {**os.environ, "LABLEDGER_STORE": store, "LABLEDGER_COMPLETENESS": "off"}
    out = subprocess.run(
        [sys.executable, "-c", CAPTURE], env=env, capture_output=True, text=True, check=True, cwd=os.getcwd()
    )
    import json

    return json.loads(out.stdout)


def fingerprint(mb: int) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    import labledger as ll

    n = mb * 1024 * 1024 // 8
    a = np.random.default_rng(0).random(n)
    ll.fingerprint(a[:1000])
    t0 = time.perf_counter()
    ll.fingerprint(a)
    arr = time.perf_counter() - t0
    df = pd.DataFrame(a.reshape(-1, 16), columns=[f"f{i}" for i in range(16)])
    t0 = time.perf_counter()
    ll.fingerprint(df)
    frame = time.perf_counter() - t0
    return {"ndarray_s": arr, "dataframe_s": frame, "mb": mb}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cap = capture(os.path.join(tmp, "store"))
    rounds = cap["rounds"]
    fp = fingerprint(args.mb)
    print(f"run-start capture ({'with' if cap['git'] else 'without'} git), 3 runs in a fresh process:")
    for i, r in enumerate(rounds):
        label = "cold" if i == 0 else "warm"
        print(
            f"  run {i + 1} ({label}): start_run returns in {r['start_ms']:.1f} ms; "
            f"everything captured and stored after {r['capture_total_ms']:.1f} ms   (target ≤ 50 ms)"
        )
    print(
        f"fingerprint {fp['mb']} MB float64: ndarray {fp['ndarray_s']:.3f} s, "
        f"DataFrame {fp['dataframe_s']:.3f} s   (target ≤ 1 s)"
    )


if __name__ == "__main__":
    main()
