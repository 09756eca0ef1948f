"""What tracking a 1,000-candidate × 5-fold scikit-learn search costs beyond the search itself.

The same ``GridSearchCV`` (a ``DummyClassifier`` over 1,000 ``random_state`` values
on the bundled digits data, 5-fold, cheap enough that tracking cost shows) runs:

- untracked;
- with ``labledger.integrations.sklearn.autolog()`` (a parent run plus 1,000 child
  runs, each with its params and per-fold test and train scores);
- with ``mlflow.sklearn.autolog(max_tuning_runs=None)``, when MLflow is installed
  (a peer that is not installed is skipped).

Also timed: ``log_search`` on the already-fitted search, which is labledger's
recording alone. Each tracker writes to a fresh store in a temporary folder.

    python benchmarks/sklearn_search_overhead.py [--candidates 1000] [--folds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

TARGET_SECONDS = 1.0


def make_search(candidates: int, folds: int) -> Any:
    from sklearn.dummy import DummyClassifier
    from sklearn.model_selection import GridSearchCV

    grid = {"random_state": list(range(candidates))}
    return GridSearchCV(
        DummyClassifier(strategy="stratified"), grid, cv=folds, return_train_score=True, n_jobs=1
    )


class Times:
    """Wall-clock and process CPU seconds of repeated calls (CPU time is steadier on a busy machine)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    @property
    def best(self) -> tuple[float, float]:
        return min(self.wall), min(self.cpu)


def timed(fn: Callable[[], Any], repeat: int) -> Times:
    times = Times()
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        times.cpu.append(time.process_time() - cpu)
        times.wall.append(time.perf_counter() - wall)
    return times


def bench_untracked(X: Any, y: Any, args: argparse.Namespace) -> Times:
    return timed(lambda: make_search(args.candidates, args.folds).fit(X, y), args.repeat)


def bench_labledger(X: Any, y: Any, args: argparse.Namespace) -> tuple[Times, Times]:
    import labledger as ll
    import labledger.integrations.sklearn as llsk

    os.environ["LABLEDGER_STORE"] = tempfile.mkdtemp(prefix="bench-labledger-")
    os.environ.setdefault("LABLEDGER_COMPLETENESS", "off")
    with llsk.autolog(experiment="bench-search"):
        fit_times = timed(lambda: make_search(args.candidates, args.folds).fit(X, y), args.repeat)
    fitted = make_search(args.candidates, args.folds).fit(X, y)

    def record() -> None:
        with ll.start_run("bench-log-search") as run:
            llsk.log_search(fitted, X, y, run=run)

    record_times = timed(record, args.repeat)
    children = ll.runs("bench-search", include_children=True)
    expected = args.repeat * (args.candidates + 1)
    if len(children) != expected:
        raise SystemExit(f"labledger recorded {len(children)} runs, expected {expected}")
    return fit_times, record_times


def bench_mlflow(X: Any, y: Any, args: argparse.Namespace) -> Times | None:
    if importlib.util.find_spec("mlflow") is None:
        return None
    import mlflow
    import mlflow.sklearn

    folder = tempfile.mkdtemp(prefix="bench-mlflow-")
    mlflow.set_tracking_uri(args.mlflow_uri or f"sqlite:///{folder}/mlflow.db")
    mlflow.set_experiment("bench-search")
    mlflow.sklearn.autolog(max_tuning_runs=None, silent=True)
    try:
        return timed(lambda: make_search(args.candidates, args.folds).fit(X, y), args.mlflow_repeat)
    finally:
        mlflow.sklearn.autolog(disable=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mlflow-repeat", type=int, default=1)
    parser.add_argument(
        "--mlflow-uri", default=None, help="MLflow tracking URI (default: SQLite in a temp dir)"
    )
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    make_search(2, args.folds).fit(X, y)  # warm up imports and caches

    base = bench_untracked(X, y, args)
    ours, recording = bench_labledger(X, y, args)
    peer = None if args.skip_mlflow else bench_mlflow(X, y, args)

    rows = [("untracked", base), ("labledger autolog", ours)]
    if peer is not None:
        rows.append(("mlflow.sklearn.autolog", peer))
    base_wall, base_cpu = base.best
    print(
        f"{args.candidates} candidates x {args.folds} folds on digits, best of {args.repeat} "
        f"(MLflow: {args.mlflow_repeat}); Python {platform.python_version()}, {os.cpu_count()} cores"
    )
    header = ("tracker", "wall (s)", "overhead", "x", "CPU (s)", "overhead", "x")
    print(f"{header[0]:<26}" + "".join(f"{h:>11}" for h in header[1:]))
    for name, times in rows:
        wall, cpu = times.best
        cells = [f"{wall:.2f}", f"{wall - base_wall:+.2f}", f"{wall / base_wall:.2f}"]
        cells += [f"{cpu:.2f}", f"{cpu - base_cpu:+.2f}", f"{cpu / base_cpu:.2f}"]
        print(f"{name:<26}" + "".join(f"{c:>11}" for c in cells))
    rec_wall, rec_cpu = recording.best
    median = statistics.median(recording.wall)
    print(f"labledger recording alone (log_search): {rec_wall:.3f} s wall (median {median:.3f}), ", end="")
    print(f"{rec_cpu:.3f} s CPU")
    if peer is None and not args.skip_mlflow:
        print("mlflow: not installed, skipped")
    elif peer is not None:
        ratio = (peer.best[1] - base_cpu) / max(ours.best[1] - base_cpu, rec_cpu)
        print(f"MLflow's CPU overhead is {ratio:.0f}x labledger's")
    verdict = "meets" if rec_wall <= TARGET_SECONDS else "misses"
    print(f"target: <= {TARGET_SECONDS:.1f} s of recording for {args.candidates} candidates -> {verdict}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
