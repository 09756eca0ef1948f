"""labledger side by side with MLflow and DVCLive: the same workloads, one table.

    python benchmarks/run.py [--scale 1.0] [--repeat 3] [--json results.json] [--readme README.md]
                             [--tools labledger,mlflow,dvclive] [--only W1,W3]

Workloads (targets are labledger's, on a 2-core machine):

- W1: one run, ``log_metric`` 10,000 times (step = i), then end the run (final flush included).
- W2: one run, 2,000 steps x 20 metrics through the dict API (DVCLive: one
  ``log_metric`` per key, then ``next_step``), end to end.
- W3: read back a 100,000-point history of one metric into a DataFrame/array.
- W4: 1,000 runs x (10 params, 5 metrics): write, then list them all as a DataFrame
  (DVCLive: one folder per run, listed by reading every ``params.yaml`` and ``metrics.json``).
- W5: ``GridSearchCV(DecisionTreeClassifier)`` on ``load_digits``, 100 candidates x 5 folds,
  every candidate tracked (labledger's sklearn autolog, ``mlflow.sklearn.autolog(max_tuning_runs=None)``)
  minus untracked; untracked and tracked searches alternate in one process, the best of each is kept.
  DVCLive has no scikit-learn autolog.
- W6: ``python -c "import <tool>"`` in a fresh interpreter.
- W7: bytes on disk per metric point after W2.

Every measurement runs in a fresh interpreter (this script with ``--worker``) in a
fresh temporary folder; MLflow uses a SQLite backend store there. The best of
``--repeat`` rounds is reported, as timeit does; a measurement that took longer
than ``SLOW_SECONDS`` is not repeated. A peer that is not installed is skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from update_readme import FIGURES, TOOLS, print_table, rows, update_readme  # noqa: E402

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
SLOW_SECONDS = 20.0
#: W5 alternates untracked and tracked searches this many times at most (the best of each is kept)
W5_ROUNDS = 3
WORKER_TIMEOUT = 3600.0

# --------------------------------------------------------------------------------------------
# Workloads, one function per (tool, workload); each runs inside a worker process whose
# current directory is a fresh temporary folder.
# --------------------------------------------------------------------------------------------


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _w2_values(i: int, width: int) -> list[float]:
    return [math.sin(i * 0.01 + j) for j in range(width)]


def _grid(candidates: int) -> dict[str, list[int]]:
    if candidates >= 10:
        return {"max_depth": list(range(1, 11)), "min_samples_leaf": list(range(1, candidates // 10 + 1))}
    return {"max_depth": list(range(1, candidates + 1)), "min_samples_leaf": [1]}


def _search(candidates: int) -> Any:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_digits(return_X_y=True)
    DecisionTreeClassifier(random_state=0).fit(x[:100], y[:100])  # warm the imports
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), _grid(candidates), cv=5, n_jobs=1)
    return search, x, y


def _timed_fit(search: Any, x: Any, y: Any, after: Callable[[], None] | None = None) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process, all threads) of one search."""
    from sklearn.base import clone

    fresh = clone(search)
    t0, c0 = time.perf_counter(), time.process_time()
    fresh.fit(x, y)
    if after is not None:
        after()
    return time.perf_counter() - t0, time.process_time() - c0


def _tracked_vs_untracked(
    candidates: int,
    rounds: int,
    enable: Callable[[], None],
    disable: Callable[[], None],
    after: Callable[[], None],
) -> dict[str, Any]:
    """Alternate untracked and tracked searches in one process, so both see the same machine load."""
    search, x, y = _search(candidates)
    untracked, tracked = [], []
    for _ in range(rounds):
        untracked.append(_timed_fit(search, x, y))
        enable()
        tracked.append(_timed_fit(search, x, y, after))
        disable()
    wall_u, wall_t = min(u[0] for u in untracked), min(t[0] for t in tracked)
    cpu_u, cpu_t = min(u[1] for u in untracked), min(t[1] for t in tracked)
    return {
        "untracked_s": wall_u,
        "tracked_s": wall_t,
        "overhead_s": wall_t - wall_u,
        "overhead_cpu_s": cpu_t - cpu_u,
        "pair_overheads_s": [t[0] - u[0] for t, u in zip(tracked, untracked, strict=True)],
        "candidates": candidates,
    }


class Labledger:
    """labledger's workloads: W1–W4 are the ones of ``benchmarks/hot_path.py``."""

    def __init__(self) -> None:
        import hot_path

        self.hot = hot_path

    def w1(self, n: int) -> dict[str, Any]:
        return self.hot.w1_log_metric(n)

    def w2(self, steps: int, width: int) -> dict[str, Any]:
        r = self.hot.w2_log_metrics(steps, width)
        return {**r, "bytes_per_point": r["db_file_bytes_per_point"]}

    def w3(self, n: int) -> dict[str, Any]:
        r = self.hot.w3_read_history(n)
        return {"read_ms": r["ms"], "points": n}

    def w4(self, n_runs: int) -> dict[str, Any]:
        return self.hot.w4_many_runs(n_runs)

    def w5(self, candidates: int, rounds: int) -> dict[str, Any]:
        import labledger as ll

        try:
            from labledger.integrations.sklearn import autolog
        except ImportError as e:
            return {"unavailable": f"not available ({e})"}
        store = Path.cwd() / "store"
        os.environ["LABLEDGER_STORE"] = str(store)

        def flush() -> None:
            for run in _open_runs():
                run.flush()

        result = _tracked_vs_untracked(
            candidates, rounds, enable=autolog, disable=lambda: autolog(disable=True), after=flush
        )
        db = ll.open_store(store).conn
        result["runs"] = db.execute("SELECT count(*) FROM runs").fetchone()[0]
        result["runs_with_folds"] = db.execute("SELECT count(DISTINCT run_id) FROM folds").fetchone()[0]
        return result


def _open_runs() -> list[Any]:
    from labledger.tracking import lifecycle as _lifecycle

    return _lifecycle.open_runs()


class Mlflow:
    """MLflow with a SQLite backend store in the worker's folder (its default since 3.7)."""

    def __init__(self) -> None:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path.cwd() / 'mlflow.db'}"
        import mlflow

        self.mlflow = mlflow
        mlflow.set_experiment("bench")  # creates the database: not timed

    def _db_bytes(self) -> int:
        return sum(p.stat().st_size for p in Path.cwd().glob("mlflow.db*"))

    def w1(self, n: int) -> dict[str, Any]:
        mlflow = self.mlflow
        mlflow.start_run()
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", 0.5, step=i)
        mlflow.end_run()
        return {"us_per_call": (time.perf_counter() - t0) / n * 1e6, "calls": n}

    def w2(self, steps: int, width: int) -> dict[str, Any]:
        mlflow = self.mlflow
        names = [f"metric_{j}" for j in range(width)]
        before = self._db_bytes()
        mlflow.start_run()
        t0 = time.perf_counter()
        for i in range(steps):
            mlflow.log_metrics(dict(zip(names, _w2_values(i, width), strict=True)), step=i)
        mlflow.end_run()
        dt = time.perf_counter() - t0
        points = steps * width
        return {
            "points_per_s": points / dt,
            "points": points,
            "bytes_per_point": (self._db_bytes() - before) / points,
        }

    def w3(self, n: int) -> dict[str, Any]:
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        with self.mlflow.start_run() as run:
            now = int(time.time() * 1000)
            for lo in range(0, n, 1000):
                batch = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(lo, min(n, lo + 1000))]
                client.log_batch(run.info.run_id, metrics=batch)
            self.mlflow.log_metric("warm", 0.0)
        client.get_metric_history(run.info.run_id, "warm")  # warm the read path
        t0 = time.perf_counter()
        history = client.get_metric_history(run.info.run_id, "loss")
        values = [m.value for m in history]
        dt = time.perf_counter() - t0
        assert len(values) == n
        return {"read_ms": dt * 1e3, "points": n}

    def w4(self, n_runs: int) -> dict[str, Any]:
        mlflow = self.mlflow
        t0 = time.perf_counter()
        for r in range(n_runs):
            with mlflow.start_run():
                mlflow.log_params({f"p{j}": r * j for j in range(10)})
                mlflow.log_metrics({f"m{j}": r / (j + 1) for j in range(5)}, step=0)
        write = time.perf_counter() - t0
        mlflow.search_runs(experiment_names=["bench"], max_results=1)  # warm the read path
        t0 = time.perf_counter()
        df = mlflow.search_runs(experiment_names=["bench"])
        listing = time.perf_counter() - t0
        assert len(df) == n_runs
        return {"write_ms_per_run": write / n_runs * 1e3, "list_ms": listing * 1e3, "runs": n_runs}

    def w5(self, candidates: int, rounds: int) -> dict[str, Any]:
        mlflow = self.mlflow

        def end() -> None:
            if mlflow.active_run() is not None:
                mlflow.end_run()

        result = _tracked_vs_untracked(
            candidates,
            rounds,
            enable=lambda: mlflow.sklearn.autolog(max_tuning_runs=None, silent=True),
            disable=lambda: mlflow.sklearn.autolog(disable=True, silent=True),
            after=end,
        )
        result["runs"] = len(mlflow.search_runs(experiment_names=["bench"]))
        return result


class Dvclive:
    """DVCLive writing into the worker's folder, outside any Git/DVC repository."""

    def __init__(self) -> None:
        os.environ.setdefault("DVC_NO_ANALYTICS", "1")
        from dvclive import Live

        self.live_cls = Live

    def _live(self, path: str) -> Any:
        return self.live_cls(dir=path, save_dvc_exp=False, dvcyaml=False)

    def w1(self, n: int) -> dict[str, Any]:
        live = self._live("w1")
        t0 = time.perf_counter()
        for i in range(n):
            live.step = i
            live.log_metric("loss", 0.5)
        live.end()
        return {"us_per_call": (time.perf_counter() - t0) / n * 1e6, "calls": n}

    def w2(self, steps: int, width: int) -> dict[str, Any]:
        names = [f"metric_{j}" for j in range(width)]
        live = self._live("w2")
        t0 = time.perf_counter()
        for i in range(steps):
            for k, v in zip(names, _w2_values(i, width), strict=True):
                live.log_metric(k, v)
            live.next_step()
        live.end()
        dt = time.perf_counter() - t0
        points = steps * width
        return {
            "points_per_s": points / dt,
            "points": points,
            "bytes_per_point": _dir_bytes(Path("w2")) / points,
        }

    def w3(self, n: int) -> dict[str, Any]:
        import pandas as pd

        live = self._live("w3")
        for i in range(n):
            live.step = i
            live.log_metric("loss", 1.0 / (i + 1))
        live.end()
        path = Path("w3") / "plots" / "metrics" / "loss.tsv"
        pd.read_csv(path, sep="\t", nrows=1)  # warm the read path
        t0 = time.perf_counter()
        values = pd.read_csv(path, sep="\t")["loss"].to_numpy()
        dt = time.perf_counter() - t0
        assert len(values) == n
        return {"read_ms": dt * 1e3, "points": n}

    def w4(self, n_runs: int) -> dict[str, Any]:
        import pandas as pd
        from dvclive.serialize import load_yaml

        root = Path("w4")
        t0 = time.perf_counter()
        for r in range(n_runs):
            with self._live(str(root / f"run-{r}")) as live:
                live.log_params({f"p{j}": r * j for j in range(10)})
                for j in range(5):
                    live.log_metric(f"m{j}", r / (j + 1))
        write = time.perf_counter() - t0

        def listing() -> pd.DataFrame:
            rows = []
            for folder in sorted(root.iterdir()):
                row: dict[str, Any] = {"run": folder.name}
                row.update({f"params.{k}": v for k, v in load_yaml(folder / "params.yaml").items()})
                metrics = json.loads((folder / "metrics.json").read_text())
                row.update({f"metrics.{k}": v for k, v in metrics.items() if k != "step"})
                rows.append(row)
            return pd.DataFrame(rows)

        pd.DataFrame([{"warm": 1}])
        t0 = time.perf_counter()
        df = listing()
        listed = time.perf_counter() - t0
        assert len(df) == n_runs
        return {"write_ms_per_run": write / n_runs * 1e3, "list_ms": listed * 1e3, "runs": n_runs}


def worker(tool: str, workload: str, scale: float, repeat: int) -> dict[str, Any]:
    """Run one measurement in this process (the current folder is fresh and temporary)."""
    bench = {"labledger": Labledger, "mlflow": Mlflow, "dvclive": Dvclive}[tool]()
    if workload == "W1":
        return bench.w1(max(10, round(10_000 * scale)))
    if workload == "W2":
        return bench.w2(max(10, round(2_000 * scale)), 20)
    if workload == "W3":
        return bench.w3(max(100, round(100_000 * scale)))
    if workload == "W4":
        return bench.w4(max(5, round(1_000 * scale)))
    if workload == "W5":
        if not hasattr(bench, "w5"):
            return {"unavailable": "n/a: no scikit-learn autolog"}
        return bench.w5(max(2, round(100 * scale)), rounds=repeat)
    raise ValueError(f"unknown workload {workload}")


# --------------------------------------------------------------------------------------------
# The orchestrator: one worker process per measurement, best of --repeat, one table.
# --------------------------------------------------------------------------------------------


def _spawn(tool: str, workload: str, scale: float, repeat: int = 1) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-{workload}-"))
    out = tmp / "result.json"
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("LABLEDGER_STORE", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, workload, "--scale", str(scale)]
    cmd += ["--repeat", str(repeat), "--out", str(out)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT, check=False
        )
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": f"worker failed ({proc.returncode}): {' | '.join(tail)}"}
        result: dict[str, Any] = json.loads(out.read_text())
        result["wall_s"] = time.perf_counter() - started
        return result
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT:.0f}s"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _best(tool: str, workload: str, scale: float, repeat: int, key: str, lower: bool) -> dict[str, Any]:
    results = []
    for _ in range(repeat):
        r = _spawn(tool, workload, scale)
        results.append(r)
        if key not in r or r.get("wall_s", 0.0) > SLOW_SECONDS:
            break
    good = [r for r in results if key in r]
    if not good:
        return results[-1]
    chosen = (min if lower else max)(good, key=lambda r: r[key])
    return {**chosen, "rounds": len(good)}


def _import_ms(module: str, repeat: int) -> float:
    times = []
    for _ in range(max(3, repeat)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def _version(tool: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(tool)
    except PackageNotFoundError:
        return None


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.machine()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def run_all(
    tools: list[str], workloads: list[str], scale: float, repeat: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Measure every (tool, workload); returns the results document."""
    doc: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "scale": scale,
        "repeat": repeat,
        "versions": {t: _version(t) for t in TOOLS},
        "results": {t: {} for t in TOOLS},
    }
    for tool in TOOLS:
        if tool not in tools:
            doc["results"][tool] = {"skipped": "not selected"}
        elif importlib.util.find_spec(tool) is None:
            doc["results"][tool] = {"skipped": "not installed"}
    active = [t for t in tools if "skipped" not in doc["results"][t]]
    figures = {w: [(k, lower) for (fw, k, *_rest, lower) in FIGURES if fw == w] for w in WORKLOADS}
    for tool in active:
        res = doc["results"][tool]
        for w in ("W1", "W2", "W3", "W4"):
            if w in workloads or (w == "W2" and "W7" in workloads):
                log(f"{w} {tool}")
                key, lower = figures[w][-1] if w == "W4" else figures[w][0]
                res[w] = _best(tool, w, scale, repeat, key, lower)
        if "W5" in workloads:
            log(f"W5 {tool}")
            res["W5"] = _spawn(tool, "W5", scale, repeat=min(repeat, W5_ROUNDS))
        if "W6" in workloads:
            log(f"W6 {tool}")
            res["W6"] = {"import_ms": _import_ms(tool, repeat)}
        if "W7" in workloads and "bytes_per_point" in res.get("W2", {}):
            res["W7"] = {"bytes_per_point": res["W2"]["bytes_per_point"]}
    if "W6" in workloads:
        doc["interpreter_ms"] = _import_ms("sys", repeat)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="shrink or grow every workload")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per measurement; the best is kept")
    parser.add_argument("--json", type=Path, help="write the machine-readable results here")
    parser.add_argument(
        "--readme",
        type=Path,
        nargs="?",
        const=HERE.parent / "README.md",
        help="rewrite the table between <!-- bench:start --> and <!-- bench:end --> (default README.md)",
    )
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS)
    )
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated subset of W1..W7")
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.worker[0], args.worker[1], args.scale, max(1, args.repeat))
        args.out.write_text(json.dumps(result))
        return 0
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    workloads = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(tools) - set(TOOLS)) + sorted(set(workloads) - set(WORKLOADS))
    if unknown or "labledger" not in tools:
        parser.error(f"unknown or missing choices: {unknown or 'labledger must be measured'}")

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    doc = run_all(tools, workloads, args.scale, max(1, args.repeat), log)
    doc["table"] = rows(doc, workloads)
    print_table(doc, doc["table"])
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    if args.readme:
        update_readme(args.readme, doc)
        print(f"updated the benchmark table in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
