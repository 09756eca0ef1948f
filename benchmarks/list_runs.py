"""Listing many runs as a DataFrame: ``ll.runs()`` side by side with ``mlflow.search_runs``.

    python benchmarks/list_runs.py [--runs 10000] [--repeat 5] [--json results.json]

Both trackers get the same runs in one experiment: 10 params, 5 metrics
(one value each) and 3 tags per run, written through each tracker's public
API (labledger: ``start_run`` / ``log_params`` / ``log_metrics``; MLflow:
``MlflowClient.create_run`` / ``log_batch`` / ``set_terminated`` on its SQLite
backend in a temporary folder). Then each lists the whole experiment as a
pandas DataFrame with params, metrics and tags: ``ll.runs(experiment)`` and
``mlflow.search_runs([experiment_id])``. The best of ``--repeat`` listings
is reported (the first call, which pays for imports, is not counted), with
the median. MLflow is skipped cleanly when it is not installed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import labledger as ll

N_PARAMS, N_METRICS = 10, 5
TARGET_SECONDS = 0.5


def run_values(i: int) -> tuple[dict[str, Any], dict[str, float], dict[str, str]]:
    """The params, metrics and tags of run ``i`` (the same for both trackers)."""
    params: dict[str, Any] = {f"p{j}": (i * (j + 1)) % 97 for j in range(N_PARAMS - 2)}
    params["model"] = ("svc", "logreg", "knn", "tree")[i % 4]
    params["lr"] = 10 ** -(1 + i % 4)
    metrics = {f"m{j}": ((i * 7919 + j * 104729) % 10_000) / 10_000 for j in range(N_METRICS)}
    tags = {"team": ("vision", "nlp")[i % 2], "stage": "search", "seed": str(i % 10)}
    return params, metrics, tags


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    fn()  # warm-up: imports, caches, SQLite page cache
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def bench_labledger(n: int, repeat: int, root: Path) -> dict[str, Any]:
    store = root / "labledger-store"
    ll.open_store(store)
    t0 = time.perf_counter()
    for i in range(n):
        params, metrics, tags = run_values(i)
        with ll.start_run("bench-list", name=f"run-{i}", tags=tags, store=store) as run:
            run.log_params(params)
            run.log_metrics(metrics, step=0)
    write = time.perf_counter() - t0
    times, df = timed(lambda: ll.runs("bench-list", store=store), repeat)
    assert (
        len(df) == n and f"params.p{N_PARAMS - 3}" in df.columns and f"metrics.m{N_METRICS - 1}" in df.columns
    )
    filtered, fdf = timed(
        lambda: ll.runs("bench-list", store=store, where="params.model = 'svc' and metrics.m0 > 0.5"), repeat
    )
    return {
        "list_s": min(times),
        "list_median_s": statistics.median(times),
        "filtered_list_s": min(filtered),
        "filtered_rows": len(fdf),
        "columns": len(df.columns),
        "write_ms_per_run": write / n * 1e3,
    }


def bench_mlflow(n: int, repeat: int, root: Path) -> dict[str, Any] | None:
    try:
        import mlflow
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("bench-list", artifact_location=(root / "mlruns").as_uri())
    t0 = time.perf_counter()
    for i in range(n):
        params, metrics, tags = run_values(i)
        run = client.create_run(experiment_id, run_name=f"run-{i}")
        now = int(time.time() * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        client.set_terminated(run.info.run_id)
    write = time.perf_counter() - t0
    times, df = timed(lambda: mlflow.search_runs([experiment_id], max_results=max(n, 1000)), repeat)
    assert len(df) == n, f"mlflow.search_runs returned {len(df)} of {n} runs"
    filtered, fdf = timed(
        lambda: mlflow.search_runs(
            [experiment_id],
            filter_string="params.model = 'svc' and metrics.m0 > 0.5",
            max_results=max(n, 1000),
        ),
        repeat,
    )
    return {
        "list_s": min(times),
        "list_median_s": statistics.median(times),
        "filtered_list_s": min(filtered),
        "filtered_rows": len(fdf),
        "columns": len(df.columns),
        "write_ms_per_run": write / n * 1e3,
        "version": mlflow.__version__,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow side")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    # measure the tracker itself: no per-run code snapshot or completeness report while writing
    os.environ.setdefault("LABLEDGER_CAPTURE_CODE", "0")
    os.environ.setdefault("LABLEDGER_COMPLETENESS", "off")
    root = Path(tempfile.mkdtemp(prefix="labledger-list-bench-"))
    results: dict[str, Any] = {"runs": args.runs, "python": platform.python_version(), "cpus": os.cpu_count()}
    print(f"writing {args.runs:,} runs to labledger ...", flush=True)
    results["labledger"] = bench_labledger(args.runs, args.repeat, root)
    peer = None
    if not args.no_mlflow:
        print(f"writing {args.runs:,} runs to MLflow (SQLite backend) ...", flush=True)
        peer = bench_mlflow(args.runs, args.repeat, root)
        if peer is None:
            print("MLflow is not installed: skipping it (pip install mlflow)")
    results["mlflow"] = peer
    lab = results["labledger"]
    verdict = "meets" if lab["list_s"] <= TARGET_SECONDS else "misses"
    print(
        f"\nlisting {args.runs:,} runs ({N_PARAMS} params, {N_METRICS} metrics, 3 tags each) as a DataFrame, "
        f"best of {args.repeat} — Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    rows = [("", "list all", "median", "filtered list", "write / run")]
    rows.append(
        (
            f"labledger {ll.__version__} ll.runs()",
            f"{lab['list_s'] * 1e3:.0f} ms",
            f"{lab['list_median_s'] * 1e3:.0f} ms",
            f"{lab['filtered_list_s'] * 1e3:.0f} ms ({lab['filtered_rows']} rows)",
            f"{lab['write_ms_per_run']:.2f} ms",
        )
    )
    if peer:
        rows.append(
            (
                f"MLflow {peer['version']} mlflow.search_runs()",
                f"{peer['list_s'] * 1e3:.0f} ms",
                f"{peer['list_median_s'] * 1e3:.0f} ms",
                f"{peer['filtered_list_s'] * 1e3:.0f} ms ({peer['filtered_rows']} rows)",
                f"{peer['write_ms_per_run']:.2f} ms",
            )
        )
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))
    print(f"\nlabledger {verdict} the ≤ {TARGET_SECONDS * 1e3:.0f} ms target for {args.runs:,} runs", end="")
    print(f"; MLflow takes {peer['list_s'] / lab['list_s']:.1f}× as long." if peer else ".")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
