"""labledger's team server beside MLflow's tracking server, both on PostgreSQL: W1, W2, W4 and W5.

    python benchmarks/server_side_by_side.py [--scale 1.0] [--repeat 3] [--json out.json]
        [--tools labledger,mlflow] [--only W1,W2,W4,W5] [--labledger-python PY] [--mlflow-python PY]

Starts a throw-away PostgreSQL cluster on loopback (fsync on); for each round, a fresh database
(a copy of the tool's migrated template) and the tool's server on it, ``labledger server
--backend postgresql://... --artifacts file:///...`` or ``mlflow server --backend-store-uri
postgresql+psycopg2://... --default-artifact-root file:///...`` (``server_processes.py``). The
clients are ``run.py``'s workloads, sizes and timers, each stage in a fresh interpreter, with
``LABLEDGER_STORE=http://...`` or ``MLFLOW_TRACKING_URI=http://...``: W1 (``log_metric`` loop),
W2 (steps × 20 keys through the dict API), W4 (runs × (10 params, 5 metrics) written, then
listed from a fresh process), W5 (``GridSearchCV`` tracked by autolog, minus untracked). For
W1 and W2 labledger also gets the time from the loop's last call until every point reads back
from the server: its client sends in the background, so the loop alone is not the whole story.

The tools run in their own interpreters (``--labledger-python``, ``--mlflow-python``; default
this one). Each figure is the median of ``--repeat`` rounds (min–max beside it); W5 runs once
(its rounds alternate inside one process).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402
import server_processes as servers  # noqa: E402
from update_readme import FIGURES, TOOL_NAMES, label, notes, num  # noqa: E402
from workloads import W2_WIDTH, ms, sizes, summary, w2_rows, w4_metrics, w4_params  # noqa: E402

TOOLS = ("labledger", "mlflow")
WORKLOADS = ("W1", "W2", "W4", "W5")
#: how long a history may take to read back complete from the server after the run's end
READ_TIMEOUT = 300.0
#: the figures (workload, key, label, unit, lower is better) this benchmark adds to run.py's
EXTRA = [
    ("W1", "visible_ms", "loop's end → every point readable on the server", "ms", True),
    ("W1", "on_server_us", "per point, first call → every point on the server", "µs", True),
    ("W2", "visible_ms", "loop's end → every point readable on the server", "ms", True),
    ("W2", "on_server_points_per_s", "first call → every point on the server", "pts/s", False),
]

# --------------------------------------------------------------------------------------------
# The workers: run.py's workload classes with the store at the server named in the environment.
# --------------------------------------------------------------------------------------------


class ServerLabledger(bench.Labledger):
    """``hot_path.py``'s W1, W2 and W4 with the store at ``$LABLEDGER_STORE`` (the server), and
    the time until what a run logged reads back from the server."""

    def _readable(self, run_id: str, points: dict[str, int], since: float) -> float:
        """ms from ``since`` until the server counts every point of ``points`` (key: count),
        polled through the run's metric summaries (one read per poll); then, untimed, each
        history is read back whole and checked."""
        ll = self.hot.ll
        while True:
            summary = ll.get_run(run_id).summary
            if all(summary.get(key, {}).get("count", 0) >= n for key, n in points.items()):
                break
            if time.perf_counter() - since > READ_TIMEOUT:
                raise TimeoutError(f"after {READ_TIMEOUT:.0f}s the server still misses points: {summary}")
        visible = ms(time.perf_counter() - since)
        view = ll.get_run(run_id)
        for key, n in points.items():
            got = len(view.metric_arrays(key)["value"])
            assert got == n, f"{key}: {got} points read back, {n} logged"
        return visible

    def w1(self, n: int) -> dict[str, Any]:
        run = self.hot.ll.start_run("bench")
        t0 = time.perf_counter()
        for i in range(n):
            run.log_metric("loss", i * 1e-5, step=i)
        t1 = time.perf_counter()
        run.end()
        t2 = time.perf_counter()
        visible = self._readable(run.id, {"loss": n}, t1)
        return {"us_per_call": (t1 - t0) / n * 1e6, "end_ms": ms(t2 - t1), "visible_ms": visible, "calls": n}

    def w2(self, steps: int) -> dict[str, Any]:
        rows = w2_rows(steps)
        run = self.hot.ll.start_run("bench")
        t1 = time.perf_counter()
        for i, row in enumerate(rows):
            run.log_metrics(row, step=i)
        t_loop = time.perf_counter()
        run.end()
        t2 = time.perf_counter()
        visible = self._readable(run.id, dict.fromkeys(rows[0], steps), t_loop)
        points = steps * W2_WIDTH
        loop = ms(t_loop - t1)
        return {"points_per_s": points / (t2 - t1), "points": points, "visible_ms": visible, "loop_ms": loop}

    def w4_write(self, n_runs: int) -> dict[str, Any]:
        ll = self.hot.ll
        ll.open_store()  # reached before the timer starts
        t0 = time.perf_counter()
        for r in range(n_runs):
            with ll.start_run("bench") as run:
                run.log_params(w4_params(r))
                run.log_metrics(w4_metrics(r), step=0)
        return {"write_ms_per_run": ms(time.perf_counter() - t0) / n_runs, "runs": n_runs}

    def w4_list(self, info: dict[str, Any]) -> dict[str, Any]:
        import pandas as pd  # noqa: F401 - imported beforehand, as in a notebook

        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            df = self.hot.ll.runs("bench")
            times.append(time.perf_counter() - t0)
            assert len(df) == info["runs"], len(df)
        return {"list_cold_ms": ms(times[0]), "list_warm_ms": ms(times[1]), "runs": info["runs"]}

    def w5(self, candidates: int, rounds: int) -> dict[str, Any]:
        from labledger.integrations.sklearn import autolog
        from labledger.tracking import lifecycle

        def flush() -> None:
            for run in lifecycle.open_runs():
                run.flush()

        result = bench._tracked_vs_untracked(
            candidates, rounds, enable=autolog, disable=lambda: autolog(disable=True), after=flush
        )
        result["runs"] = len(self.hot.ll.runs(include_children=True))
        return result


class ServerMlflow(bench.Mlflow):
    """run.py's MLflow workloads with the tracking server at ``$MLFLOW_TRACKING_URI``."""

    def __init__(self, stage: str) -> None:
        import mlflow

        self.mlflow = mlflow
        if stage != "W4-list":
            mlflow.set_experiment("bench")  # not timed


SERVER_BENCHES = {"labledger": ServerLabledger, "mlflow": ServerMlflow}


def worker(tool: str, stage: str, scale: float, repeat: int, info: dict[str, Any]) -> dict[str, Any]:
    """run.py's worker with this benchmark's classes (this is a worker process of its own)."""
    bench.BENCHES.update(SERVER_BENCHES)
    return bench.worker(tool, stage, scale, repeat, info)


# --------------------------------------------------------------------------------------------
# The orchestrator: a server per round, a fresh interpreter per stage, one table.
# --------------------------------------------------------------------------------------------


def _spawn(
    spec: servers.ServerSpec, stage: str, scale: float, repeat: int, env: dict[str, str], info: Any = None
) -> dict[str, Any]:
    """One stage in a fresh interpreter of the tool's, in a fresh folder, with run.py's environment."""
    args = ["--worker", spec.tool, stage, "--scale", str(scale), "--repeat", str(repeat)]
    return servers.run_worker(
        spec.python, [str(Path(__file__).resolve()), *args], lambda cwd: {**bench._env(cwd), **env}, info,
        bench.WORKER_TIMEOUT,
    )  # fmt: skip


def on_server(workload: str, r: dict[str, Any]) -> dict[str, Any]:
    """Add the whole story of W1 and W2: from the first call until every point is on the server
    (labledger: the loop, then until readable; MLflow, synchronous: the loop and ``end()``)."""
    if workload == "W1" and "us_per_call" in r:
        after = r.get("visible_ms", r["end_ms"])
        r["on_server_us"] = r["us_per_call"] + after * 1e3 / r["calls"]
    if workload == "W2" and "points_per_s" in r:
        took = (
            (r["loop_ms"] + r["visible_ms"]) / 1e3 if "visible_ms" in r else r["points"] / r["points_per_s"]
        )
        r["on_server_points_per_s"] = r["points"] / took
    return r


def one_round(
    spec: servers.ServerSpec, dbs: servers.Databases, folder: Path, workload: str, scale: float, repeat: int
) -> dict[str, Any]:
    """One round of ``workload`` against a fresh server on a fresh database."""
    with servers.serving(spec, dbs, folder) as url:
        variable = "LABLEDGER_STORE" if spec.tool == "labledger" else "MLFLOW_TRACKING_URI"
        env = {variable: url, **spec.client_env}
        if workload != "W4":
            return _spawn(spec, workload, scale, repeat, env)
        written = _spawn(spec, "W4-write", scale, repeat, env)
        if "error" in written:
            return written
        return {**written, **_spawn(spec, "W4-list", scale, repeat, env, info=written)}


def measure(
    spec: servers.ServerSpec,
    dbs: servers.Databases,
    folder: Path,
    workload: str,
    scale: float,
    repeat: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The rounds of one (tool, workload) and their median, min and max per figure."""
    rounds = []
    for k in range(1 if workload == "W5" else repeat):
        log(f"{workload} {spec.tool} server {k + 1}/{repeat if workload != 'W5' else 1}")
        inner = min(repeat, bench.W5_ROUNDS) if workload == "W5" else 1
        try:
            rounds.append(on_server(workload, one_round(spec, dbs, folder, workload, scale, inner)))
        except servers.ServerError as e:
            rounds.append({"error": str(e)})
    good = [r for r in rounds if "error" not in r and "unavailable" not in r]
    result: dict[str, Any] = {"repeats": rounds, **(summary(good) if good else {})}
    errors = [r["error"] for r in rounds if "error" in r]
    if errors:
        result["errors" if good else "error"] = errors if good else errors[0]
    return result


def run_all(
    pythons: dict[str, str],
    workloads: list[str],
    scale: float,
    repeat: int,
    log: Callable[[str], None],
    mlflow_workers: int = 1,
) -> dict[str, Any]:
    """Start the cluster, prepare each tool's template, measure every (workload, tool)."""
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": bench.machine(),
        "scale": scale,
        "repeat": repeat,
        "sizes": sizes(scale),
        "versions": {t: servers.tool_version(p, t) for t, p in pythons.items()},
        "results": {t: {} for t in pythons},
        "mlflow_workers": mlflow_workers,
    }
    folder = Path(tempfile.mkdtemp(prefix="bench-servers-"))
    try:
        with servers.Databases.start() as dbs:
            doc["postgresql"] = dbs.version()
            specs = {}
            for tool, python in pythons.items():
                log(f"preparing the {tool} server's database")
                specs[tool] = servers.prepare(tool, python, dbs, folder, mlflow_workers)
                doc["results"][tool]["server_flags"] = specs[tool].flags
            for w in WORKLOADS:
                if w in workloads:
                    for tool in pythons:
                        doc["results"][tool][w] = measure(specs[tool], dbs, folder, w, scale, repeat, log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    doc["wall_s"] = time.perf_counter() - started
    return doc


# --------------------------------------------------------------------------------------------
# The table: workload | labledger server | mlflow server | ratio
# --------------------------------------------------------------------------------------------


def _cell(stats: dict[str, Any], key: str, unit: str) -> str | None:
    med = stats.get("median", {}).get(key)
    if med is None:
        return None
    lo, hi = num(stats["min"][key]), num(stats["max"][key])
    return f"{num(med)} {unit}" if lo == hi else f"{num(med)} {unit} ({lo}–{hi})"


def _ratio(ours: float | None, theirs: float | None, lower: bool) -> str:
    """labledger ×N faster (or slower) than MLflow, from the medians."""
    if not ours or not theirs or ours < 0 or theirs < 0:
        return "—"
    x = theirs / ours if lower else ours / theirs
    return f"×{num(x)} faster" if x >= 1 else f"×{num(1 / x)} slower"


def table(doc: dict[str, Any], workloads: list[str]) -> list[dict[str, str]]:
    """One row per figure, in run.py's order (with W1 and W2's readable-on-server rows)."""
    figures = [(w, k, t, u, lower) for w, k, t, u, _target, lower in FIGURES]
    for extra in EXTRA:  # after the workload's last figure
        at = max(i for i, f in enumerate(figures) if f[0] == extra[0])
        figures.insert(at + 1, extra)
    out = []
    for w, key, template, unit, lower in figures:
        if w not in workloads:
            continue
        res = {t: doc["results"].get(t, {}).get(w, {}) for t in TOOLS}
        if not any(key in r.get("median", {}) for r in res.values()):
            continue
        row = {"workload": f"{w} {label(template, doc).replace('TOOL', 'the tool')}"}
        for tool, r in res.items():
            cell = _cell(r, key, unit)
            if tool not in doc["results"]:
                cell = "not run"
            elif cell is None and key == "visible_ms" and "median" in r:
                cell = "n/a (synchronous)"
            elif cell is None:
                cell = "failed" if "error" in r else "—"
            row[tool] = cell
        ours, theirs = (res[t].get("median", {}).get(key) for t in TOOLS)
        row["ratio"] = _ratio(ours, theirs, lower)
        out.append(row)
    return out


def markdown(doc: dict[str, Any], rows: list[dict[str, str]]) -> str:
    versions = ", ".join(f"{TOOL_NAMES[t]} {v}" for t, v in doc["versions"].items() if v)
    lines = [
        f"{doc['date']} — {doc['machine']} — scale {doc['scale']} — {versions}, {doc.get('postgresql', '')}",
        f"each cell: median of {doc['repeat']} rounds, each with a fresh server, database and client "
        "interpreter (min–max)",
        "",
        "| workload | labledger server | mlflow server | ratio (labledger vs MLflow) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['workload']} | {r['labledger']} | {r['mlflow']} | {r['ratio']} |" for r in rows]
    foot = notes(doc)
    foot.append(
        "readable on the server: labledger's client sends its points in the background and "
        "`end()` flushes them; MLflow's `log_metric` is synchronous here (its async logging, "
        "`synchronous=False` / `MLFLOW_ENABLE_ASYNC_LOGGING`, is off by default and not used), "
        "so its points are on the server when the call returns"
    )
    flags = {t: doc["results"][t].get("server_flags") for t in doc["results"]}
    foot.append(
        "server flags beyond the database, artifacts, host and port: "
        + "; ".join(f"{TOOL_NAMES[t]} {' '.join(f) or '(none)'}" for t, f in flags.items())
    )
    if "mlflow" in doc["results"]:
        foot.append(servers.MLFLOW_WORKERS_NOTE.format(n=doc["mlflow_workers"]))
    lines += ["", *(f"- {n}" for n in foot)]
    for tool in doc["results"]:
        for w, res in doc["results"][tool].items():
            if isinstance(res, dict):
                for err in dict.fromkeys(res.get("errors", []) + ([res["error"]] if "error" in res else [])):
                    lines.append(f"- {w} {TOOL_NAMES[tool]} failed: {err}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="shrink or grow every workload")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per figure; the median is kept")
    parser.add_argument("--json", type=Path, help="write the machine-readable results here")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS)
    )
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated subset of W1,W2,W4,W5")
    parser.add_argument(
        "--mlflow-workers", type=int, default=1, help="mlflow server --workers (see the footnote)"
    )
    for tool in TOOLS:
        parser.add_argument(
            f"--{tool}-python", default=sys.executable, help=f"the interpreter {tool} runs in"
        )
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "STAGE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--info", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        info = json.loads(args.info.read_text()) if args.info else {}
        tool, stage = args.worker
        args.out.write_text(json.dumps(worker(tool, stage, args.scale, max(1, args.repeat), info)))
        return 0
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    workloads = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(tools) - set(TOOLS)) + sorted(set(workloads) - set(WORKLOADS))
    if unknown or not tools:
        parser.error(f"unknown or missing choices: {unknown or 'no tool'}")
    pythons = {t: getattr(args, f"{t}_python") for t in TOOLS if t in tools}
    doc = run_all(pythons, workloads, args.scale, max(1, args.repeat), bench.log, args.mlflow_workers)
    doc["table"] = table(doc, workloads)
    print(markdown(doc, doc["table"]))
    print(f"\nwhole run: {doc['wall_s'] / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
