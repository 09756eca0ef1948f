"""labledger side by side with MLflow and DVCLive: the same workloads, one table.

    python benchmarks/run.py [--scale 1.0] [--repeat 5] [--json results.json] [--readme [README.md]]
                             [--tools labledger,mlflow,dvclive] [--only W1,W3]

Workloads (sizes at ``--scale 1``; the peers' smaller sizes are in ``workloads.py`` and in the
table's footnote):

- W1: ``log_metric("loss", i * 1e-5, step=i)`` in a loop of 100,000 calls (MLflow 1,000,
  DVCLive 20,000): µs per call of the loop; the run's end after it as a second figure (ms).
- W2: 10,000 steps x 20 keys (200,000 points) through the dict API (DVCLive: one
  ``log_metric`` per key, then ``next_step``), then the run's end: points/s. The dicts are
  built before the timer starts; starting the run is W8's. MLflow and DVCLive do 500 steps.
- W3: one 100,000-point history, written beforehand by another process. In a fresh process
  with pandas and the tool imported: the first read (cold), then a second (warm). labledger
  ``ll.get_run(id).metric``; MLflow ``MlflowClient().get_metric_history``; DVCLive its TSV
  through ``pandas.read_csv``.
- W4: 1,000 runs x (10 params, 5 metrics): write time per run; then, in a fresh process with
  pandas and the tool imported, the first listing of all of them as a DataFrame (cold) and a
  second (warm): ``ll.runs``, ``mlflow.search_runs``, DVCLive's folders read one by one.
- W5: ``GridSearchCV(DecisionTreeClassifier)`` on ``load_digits``, 100 candidates x 5 folds,
  every candidate tracked (labledger's sklearn autolog, ``mlflow.sklearn.autolog(max_tuning_runs=None)``)
  minus untracked; untracked and tracked searches alternate in one process, the best of each is kept.
  DVCLive has no scikit-learn autolog.
- W6: ``python -c "import <tool>"`` wall time, beside ``python -c pass`` run just before it.
- W7: bytes per point of two 1,000,000-point curves, each logged with ``step=i`` into a new
  store and ended: (a) a float32 training loss, (b) float64 values. labledger: its metric chunks,
  and its database file after a WAL checkpoint; MLflow: the growth of its SQLite file (20,000
  points per curve, written with ``log_batch``); DVCLive: its folder (100,000 points per curve).
- W8: starting a run in a fresh process after importing the tool: into a new store (the
  process's first), into a second new store, and the median of 20 into an existing store.
  MLflow: ``set_tracking_uri`` + ``set_experiment`` + ``start_run`` on a new SQLite file, then
  ``start_run``; DVCLive: ``Live(dir=...)``.
- W9, W10: the web dashboard (``labledger ui``, ``mlflow server``) started as a server process,
  its first request (cold) and the median of 10 more (warm), for the first page of a 10,000-run
  experiment (W9) and a 1,000,000-point metric as a chart (W10); see ``ui_serving.py``.
  DVCLive has no server.

Every figure is the median of ``--repeat`` rounds (min–max beside it), each round in a fresh
interpreter (this script with ``--worker``) and a fresh temporary folder; MLflow uses a
SQLite backend store there. W5 runs once (its rounds alternate inside one process). A peer
that is not installed is skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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

import ui_serving  # noqa: E402
from update_readme import TOOLS, print_table, rows, update_all  # noqa: E402
from workloads import (  # noqa: E402
    CURVES,
    W8_CALLS,
    dir_bytes,
    median,
    ms,
    size,
    sizes,
    summary,
    w2_rows,
    w3_value,
    w4_metrics,
    w4_params,
)

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", *ui_serving.WORKLOADS)
#: W5 alternates untracked and tracked searches this many times at most (the best of each is kept)
W5_ROUNDS = 3
WORKER_TIMEOUT = 1800.0
#: MLflow's log_batch takes at most 1,000 metrics a call
MLFLOW_BATCH = 1_000

# --------------------------------------------------------------------------------------------
# Workloads, one method per (tool, stage); each runs inside a worker process whose current
# directory is its round's temporary folder.
# --------------------------------------------------------------------------------------------


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
    """labledger's workloads are the functions of ``benchmarks/hot_path.py``."""

    def __init__(self, stage: str) -> None:
        import hot_path  # imports labledger

        self.hot = hot_path
        self.folder = Path.cwd()

    def w1(self, n: int) -> dict[str, Any]:
        return self.hot.w1_log_metric(n, self.folder)

    def w2(self, steps: int) -> dict[str, Any]:
        return self.hot.w2_log_metrics(steps, self.folder)

    def w3_write(self, n: int) -> dict[str, Any]:
        return self.hot.w3_write(n, self.folder)

    def w3_read(self, info: dict[str, Any]) -> dict[str, Any]:
        return self.hot.w3_read(info)

    def w4_write(self, n_runs: int) -> dict[str, Any]:
        return self.hot.w4_write(n_runs, self.folder)

    def w4_list(self, info: dict[str, Any]) -> dict[str, Any]:
        return self.hot.w4_list(info)

    def w7(self, n: int) -> dict[str, Any]:
        return self.hot.w7_bytes(n, self.folder)

    def w8(self) -> dict[str, Any]:
        return self.hot.w8_start_run(self.folder)

    def w5(self, candidates: int, rounds: int) -> dict[str, Any]:
        ll = self.hot.ll
        try:
            from labledger.integrations.sklearn import autolog
        except ImportError as e:
            return {"unavailable": f"not available ({e})"}
        store = self.folder / "store"
        os.environ["LABLEDGER_STORE"] = str(store)

        def flush() -> None:
            from labledger.tracking import lifecycle

            for run in lifecycle.open_runs():
                run.flush()

        result = _tracked_vs_untracked(
            candidates, rounds, enable=autolog, disable=lambda: autolog(disable=True), after=flush
        )
        db = ll.open_store(store).conn
        result["runs"] = db.execute("SELECT count(*) FROM runs").fetchone()[0]
        result["runs_with_folds"] = db.execute("SELECT count(DISTINCT run_id) FROM folds").fetchone()[0]
        return result


def _sqlite_bytes(db: Path) -> int:
    """An SQLite file with its journal or WAL, if any."""
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


class Mlflow:
    """MLflow with a SQLite backend store in the round's folder (its default since 3.7)."""

    def __init__(self, stage: str) -> None:
        self.db = Path.cwd() / "mlflow.db"
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{self.db}"
        import mlflow

        self.mlflow = mlflow
        if stage not in ("W3-read", "W4-list", "W7", "W8"):
            mlflow.set_experiment("bench")  # creates the database: not timed

    def w1(self, n: int) -> dict[str, Any]:
        mlflow = self.mlflow
        mlflow.start_run()
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", i * 1e-5, step=i)
        t1 = time.perf_counter()
        mlflow.end_run()
        t2 = time.perf_counter()
        return {"us_per_call": (t1 - t0) / n * 1e6, "end_ms": ms(t2 - t1), "calls": n}

    def w2(self, steps: int) -> dict[str, Any]:
        mlflow = self.mlflow
        rows = w2_rows(steps)
        mlflow.start_run()
        t0 = time.perf_counter()
        for i, row in enumerate(rows):
            mlflow.log_metrics(row, step=i)
        mlflow.end_run()
        dt = time.perf_counter() - t0
        points = steps * len(rows[0])
        return {"points_per_s": points / dt, "points": points}

    def _log_batches(self, run_id: str, values: list[float]) -> None:
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        for lo in range(0, len(values), MLFLOW_BATCH):
            now = int(time.time() * 1000)
            batch = [
                Metric("loss", values[i], now, i) for i in range(lo, min(len(values), lo + MLFLOW_BATCH))
            ]
            client.log_batch(run_id, metrics=batch)

    def w3_write(self, n: int) -> dict[str, Any]:
        with self.mlflow.start_run() as run:
            self._log_batches(run.info.run_id, [w3_value(i) for i in range(n)])
        return {"run_id": run.info.run_id, "points": n}

    def w3_read(self, info: dict[str, Any]) -> dict[str, Any]:
        import pandas as pd  # noqa: F401 - imported beforehand, as for the others
        from mlflow.tracking import MlflowClient

        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            history = MlflowClient().get_metric_history(info["run_id"], "loss")
            values = [m.value for m in history]
            times.append(time.perf_counter() - t0)
            assert len(values) == info["points"]
        return {"cold_ms": ms(times[0]), "warm_ms": ms(times[1]), "points": info["points"]}

    def w4_write(self, n_runs: int) -> dict[str, Any]:
        mlflow = self.mlflow
        t0 = time.perf_counter()
        for r in range(n_runs):
            with mlflow.start_run():
                mlflow.log_params(w4_params(r))
                mlflow.log_metrics(w4_metrics(r), step=0)
        write = time.perf_counter() - t0
        return {"write_ms_per_run": ms(write) / n_runs, "runs": n_runs}

    def w4_list(self, info: dict[str, Any]) -> dict[str, Any]:
        import pandas as pd  # noqa: F401 - imported beforehand, as for the others

        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            df = self.mlflow.search_runs(experiment_names=["bench"])
            times.append(time.perf_counter() - t0)
            assert len(df) == info["runs"]
        return {"list_cold_ms": ms(times[0]), "list_warm_ms": ms(times[1]), "runs": info["runs"]}

    def w7(self, n: int) -> dict[str, Any]:
        mlflow = self.mlflow
        out: dict[str, Any] = {"points": n}
        for name, curve in CURVES:
            values = curve(n)
            db = Path.cwd() / f"curve-{name}.db"
            mlflow.set_tracking_uri(f"sqlite:///{db}")
            mlflow.set_experiment("bench")
            before = _sqlite_bytes(db)
            with mlflow.start_run() as run:
                self._log_batches(run.info.run_id, values)
            out[f"{name}_db_bpp"] = (_sqlite_bytes(db) - before) / n
        return out

    def w8(self) -> dict[str, Any]:
        mlflow = self.mlflow

        def new_store(name: str) -> float:
            t0 = time.perf_counter()
            mlflow.set_tracking_uri(f"sqlite:///{Path.cwd() / name}")
            mlflow.set_experiment("bench")
            mlflow.start_run()
            dt = time.perf_counter() - t0
            mlflow.end_run()
            return dt

        first = new_store("new-1.db")
        second = new_store("new-2.db")
        existing = []
        for _ in range(W8_CALLS):
            t0 = time.perf_counter()
            mlflow.start_run()
            existing.append(time.perf_counter() - t0)
            mlflow.end_run()
        return {
            "new_first_ms": ms(first),
            "new_second_ms": ms(second),
            "existing_ms": ms(median(existing)),
            "existing_calls": W8_CALLS,
        }

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
    """DVCLive writing into the round's folder, outside any Git/DVC repository."""

    def __init__(self, stage: str) -> None:
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
            live.log_metric("loss", i * 1e-5)
        t1 = time.perf_counter()
        live.end()
        t2 = time.perf_counter()
        return {"us_per_call": (t1 - t0) / n * 1e6, "end_ms": ms(t2 - t1), "calls": n}

    def w2(self, steps: int) -> dict[str, Any]:
        rows = w2_rows(steps)
        live = self._live("w2")
        t0 = time.perf_counter()
        for row in rows:
            for k, v in row.items():
                live.log_metric(k, v)
            live.next_step()
        live.end()
        dt = time.perf_counter() - t0
        points = steps * len(rows[0])
        return {"points_per_s": points / dt, "points": points}

    def _log_curve(self, path: str, values: list[float]) -> None:
        live = self._live(path)
        for i, v in enumerate(values):
            live.step = i
            live.log_metric("loss", v)
        live.end()

    def w3_write(self, n: int) -> dict[str, Any]:
        self._log_curve("w3", [w3_value(i) for i in range(n)])
        return {"tsv": str(Path.cwd() / "w3" / "plots" / "metrics" / "loss.tsv"), "points": n}

    def w3_read(self, info: dict[str, Any]) -> dict[str, Any]:
        import pandas as pd

        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            values = pd.read_csv(info["tsv"], sep="\t")["loss"].to_numpy()
            times.append(time.perf_counter() - t0)
            assert len(values) == info["points"]
        return {"cold_ms": ms(times[0]), "warm_ms": ms(times[1]), "points": info["points"]}

    def w4_write(self, n_runs: int) -> dict[str, Any]:
        root = Path.cwd() / "w4"
        t0 = time.perf_counter()
        for r in range(n_runs):
            with self._live(str(root / f"run-{r}")) as live:
                live.log_params(w4_params(r))
                for k, v in w4_metrics(r).items():
                    live.log_metric(k, v)
        write = time.perf_counter() - t0
        return {"root": str(root), "write_ms_per_run": ms(write) / n_runs, "runs": n_runs}

    def w4_list(self, info: dict[str, Any]) -> dict[str, Any]:
        import pandas as pd
        from dvclive.serialize import load_yaml

        def listing() -> pd.DataFrame:
            rows = []
            for folder in sorted(Path(info["root"]).iterdir()):
                row: dict[str, Any] = {"run": folder.name}
                row.update({f"params.{k}": v for k, v in load_yaml(folder / "params.yaml").items()})
                metrics = json.loads((folder / "metrics.json").read_text())
                row.update({f"metrics.{k}": v for k, v in metrics.items() if k != "step"})
                rows.append(row)
            return pd.DataFrame(rows)

        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            df = listing()
            times.append(time.perf_counter() - t0)
            assert len(df) == info["runs"]
        return {"list_cold_ms": ms(times[0]), "list_warm_ms": ms(times[1]), "runs": info["runs"]}

    def w7(self, n: int) -> dict[str, Any]:
        out: dict[str, Any] = {"points": n}
        for name, curve in CURVES:
            path = Path.cwd() / f"curve-{name}"
            self._log_curve(str(path), curve(n))
            out[f"{name}_db_bpp"] = dir_bytes(path) / n
        return out

    def w8(self) -> dict[str, Any]:
        def timed(path: str) -> float:
            t0 = time.perf_counter()
            live = self._live(path)
            dt = time.perf_counter() - t0
            live.end()
            return dt

        first, second = timed("new-1"), timed("new-2")
        existing = [timed("new-1") for _ in range(W8_CALLS)]
        return {
            "new_first_ms": ms(first),
            "new_second_ms": ms(second),
            "existing_ms": ms(median(existing)),
            "existing_calls": W8_CALLS,
        }


BENCHES = {"labledger": Labledger, "mlflow": Mlflow, "dvclive": Dvclive}


def worker(tool: str, stage: str, scale: float, repeat: int, info: dict[str, Any]) -> dict[str, Any]:
    """Run one stage in this process (the current folder is the round's temporary folder)."""
    bench = BENCHES[tool](stage)
    if stage == "W5" and not hasattr(bench, "w5"):
        return {"unavailable": "n/a (no autolog)"}
    n = size(stage[:2], tool, scale) if stage[:2] in ("W1", "W2", "W3", "W4", "W5", "W7") else 0
    calls: dict[str, Callable[[], dict[str, Any]]] = {
        "W1": lambda: bench.w1(n),
        "W2": lambda: bench.w2(n),
        "W3-write": lambda: bench.w3_write(n),
        "W3-read": lambda: bench.w3_read(info),
        "W4-write": lambda: bench.w4_write(n),
        "W4-list": lambda: bench.w4_list(info),
        "W5": lambda: bench.w5(n, rounds=repeat),
        "W7": lambda: bench.w7(n),
        "W8": lambda: bench.w8(),
    }
    if stage not in calls:
        raise ValueError(f"unknown stage {stage}")
    return calls[stage]()


# --------------------------------------------------------------------------------------------
# The orchestrator: one worker process per round, the median of --repeat rounds, one table.
# --------------------------------------------------------------------------------------------


def _env(folder: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "TMPDIR": str(folder),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    for name in ("LABLEDGER_STORE", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    return env


def _spawn(
    tool: str,
    stage: str,
    scale: float,
    repeat: int = 1,
    folder: Path | None = None,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``stage`` in a fresh interpreter, in ``folder`` (default: a new temporary one, removed after)."""
    own = folder is None
    cwd = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-{stage}-")) if folder is None else folder
    out = cwd / f"result-{stage}-{time.monotonic_ns()}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, stage, "--scale", str(scale)]
    cmd += ["--repeat", str(repeat), "--out", str(out)]
    if info is not None:
        info_file = cwd / f"info-{stage}.json"
        info_file.write_text(json.dumps(info))
        cmd += ["--info", str(info_file)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=WORKER_TIMEOUT, check=False
        )
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": f"{stage} failed ({proc.returncode}): {' | '.join(tail)}"}
        result: dict[str, Any] = json.loads(out.read_text())
        result["process_s"] = time.perf_counter() - started
        return result
    except subprocess.TimeoutExpired:
        return {"error": f"{stage} timed out after {WORKER_TIMEOUT:.0f}s"}
    finally:
        if own:
            shutil.rmtree(cwd, ignore_errors=True)


def _rounds(tool: str, workload: str, scale: float, repeat: int, log: Callable[[str], None]) -> list[dict]:
    """``repeat`` rounds of ``workload``, each stage in a fresh interpreter."""
    out: list[dict[str, Any]] = []
    if workload == "W3":  # one history, written once; each round reads it in a fresh process
        folder = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-W3-"))
        try:
            written = _spawn(tool, "W3-write", scale, folder=folder)
            if "error" in written:
                return [written]
            for k in range(repeat):
                log(f"W3 {tool} {k + 1}/{repeat}")
                out.append(_spawn(tool, "W3-read", scale, folder=folder, info=written))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return out
    for k in range(repeat):
        log(f"{workload} {tool} {k + 1}/{repeat}")
        if workload == "W4":  # each round writes its runs, then a fresh process lists them
            folder = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-W4-"))
            try:
                written = _spawn(tool, "W4-write", scale, folder=folder)
                listed = _spawn(tool, "W4-list", scale, folder=folder, info=written)
                out.append({**written, **listed} if "error" not in written else written)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        else:
            out.append(_spawn(tool, workload, scale))
    return out


def _imports(tool: str, repeat: int) -> list[dict[str, Any]]:
    """W6: ``python -c pass`` then ``python -c "import <tool>"``, ``repeat`` times, after one warm-up pair."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-W6-"))
    env = _env(folder)

    def wall(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, check=True, capture_output=True)
        return ms(time.perf_counter() - t0)

    try:
        wall("pass"), wall(f"import {tool}")  # the file cache and bytecode, not counted
        out = []
        for _ in range(repeat):
            bare, imported = wall("pass"), wall(f"import {tool}")
            out.append({"import_ms": imported, "bare_ms": bare, "import_minus_bare_ms": imported - bare})
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure(tool: str, workload: str, scale: float, repeat: int, log: Callable[[str], None]) -> dict:
    """The rounds of one (tool, workload) and their median, min and max per figure."""
    if workload == "W5":  # one process; its rounds alternate untracked and tracked searches inside
        log(f"W5 {tool}")
        rounds = [_spawn(tool, "W5", scale, repeat=min(repeat, W5_ROUNDS))]
    elif workload == "W6":
        log(f"W6 {tool}")
        try:
            rounds = _imports(tool, repeat)
        except subprocess.CalledProcessError as e:
            rounds = [{"error": f"import failed ({e.returncode})"}]
    elif workload in ui_serving.WORKLOADS:
        rounds = ui_serving.rounds(tool, workload, scale, repeat, log, _env)
    else:
        rounds = _rounds(tool, workload, scale, repeat, log)
    good = [r for r in rounds if "error" not in r and "unavailable" not in r]
    result: dict[str, Any] = {"repeats": rounds}
    if good:
        result.update(summary(good))
    elif rounds:
        result.update({k: rounds[0][k] for k in ("error", "unavailable") if k in rounds[0]})
    errors = [r["error"] for r in rounds if "error" in r]
    if errors and good:
        result["errors"] = errors
    return result


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
    """Measure every (workload, tool), the tools side by side per workload; returns the results."""
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "scale": scale,
        "repeat": repeat,
        "sizes": {**sizes(scale), **ui_serving.sizes(scale)},
        "versions": {t: _version(t) for t in TOOLS},
        "results": {t: {} for t in TOOLS},
    }
    for tool in TOOLS:
        if tool not in tools:
            doc["results"][tool] = {"skipped": "not selected"}
        elif importlib.util.find_spec(tool) is None:
            doc["results"][tool] = {"skipped": "not installed"}
    active = [t for t in TOOLS if "skipped" not in doc["results"][t]]
    for w in WORKLOADS:
        if w in workloads:
            for tool in active:
                doc["results"][tool][w] = measure(tool, w, scale, repeat, log)
    doc["wall_s"] = time.perf_counter() - started
    return doc


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="shrink or grow every workload")
    parser.add_argument(
        "--repeat", type=int, default=5, help="fresh-process rounds per figure; the median is kept"
    )
    parser.add_argument("--json", type=Path, help="write the machine-readable results here")
    parser.add_argument(
        "--readme",
        type=Path,
        nargs="?",
        const=HERE.parent / "README.md",
        help="rewrite the table between <!-- bench:start --> and <!-- bench:end --> (default README.md, "
        "and then docs/benchmarks.md too)",
    )
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS)
    )
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated subset of W1..W10")
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "STAGE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--info", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        info = json.loads(args.info.read_text()) if args.info else {}
        result = worker(args.worker[0], args.worker[1], args.scale, max(1, args.repeat), info)
        args.out.write_text(json.dumps(result))
        return 0
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    workloads = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(tools) - set(TOOLS)) + sorted(set(workloads) - set(WORKLOADS))
    if unknown or "labledger" not in tools:
        parser.error(f"unknown or missing choices: {unknown or 'labledger must be measured'}")
    if args.repeat < 5:
        log(f"--repeat {args.repeat}: fewer than the 5 rounds a published figure takes")

    doc = run_all(tools, workloads, args.scale, max(1, args.repeat), log)
    doc["table"] = rows(doc, workloads)
    print_table(doc, doc["table"])
    print(f"whole run: {doc['wall_s'] / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    if args.readme:
        for path in update_all(args.readme, doc):
            print(f"updated the benchmark table in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
