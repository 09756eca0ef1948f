"""W9 and W10 of ``benchmarks/run.py``: the web dashboard, ``labledger ui`` beside ``mlflow server``.

- W9: the first page of an experiment of 10,000 runs (3 params, 2 metrics each). labledger:
  ``GET`` :data:`PAGE_PATH` (50 rows), and apart the same 50 rows as JSON (:data:`JSON_PATH`).
  MLflow: what its runs page asks for, ``GET experiments/get`` then ``POST runs/search``
  (``max_results`` 100, newest first), and apart the search alone.
- W10: a 1,000,000-point metric as a chart. labledger: ``GET`` :data:`METRIC_PATH` (downsampled
  on the server to 2,000 points). MLflow: what its charts ask for,
  ``GET metrics/get-history-bulk-interval`` with ``max_results`` 320 (sampled in SQL).

Each round starts the server as a real subprocess on a free loopback port, waits until the
port accepts connections, and times the first request (cold) and the median of
:data:`WARM_REQUESTS` more (warm): wall time from sending the request to the last byte of the
answer, with the standard library's HTTP client. Only the data requests are timed; the
pages' static files (scripts, styles) are not. MLflow runs one worker (``--workers 1``, as
labledger serves from one process) on its SQLite backend, without its job runner.

The stores are built once per size and tool version by a subprocess (``python ui_serving.py
--build TOOL FOLDER RUNS POINTS``) into a cache folder (:func:`cache_root`) and reused; a
store's ``manifest.json`` is written last, so an unfinished build is built again.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import TOOLS, median, ms, training_curve  # noqa: E402

#: labledger's runs page of an experiment (HTML, its first 50 runs); "/api/runs?experiment=
#: {experiment}&limit=50" (JSON_PATH) where a build has no HTML page
PAGE_PATH = "/experiments/{experiment}"
#: the same 50 runs from the JSON API
JSON_PATH = "/api/runs?experiment={experiment}&limit=50"
#: one metric's history, downsampled on the server for a chart
METRIC_PATH = "/api/runs/{run_id}/metrics/{key}?max_points=2000"

MLFLOW_API = "/ajax-api/2.0/mlflow"
#: ``max_results`` of MLflow's runs page (its UI's SEARCH_MAX_RESULTS), sorted newest first
MLFLOW_PAGE_SIZE = 100
#: ``max_results`` its run charts pass to ``get-history-bulk-interval`` (the installed UI's
#: sampled-metric hook), which samples in SQL; its time hardly changes at 2,000 points, and the
#: whole ``get-history`` of a 1,000,000-point metric takes tens of seconds
MLFLOW_CHART_POINTS = 320

WORKLOADS = ("W9", "W10")
#: per workload: (size at ``--scale 1``, floor at small scales): runs, then metric points
_SIZES = {"W9": (10_000, 10), "W10": (1_000_000, 100)}
#: requests after the first, of which the median is the warm figure
WARM_REQUESTS = 10
EXPERIMENT, CURVE_EXPERIMENT, METRIC = "dashboard", "dashboard-curve", "loss"
#: bump when the stores' contents change, so that cached stores are rebuilt
STORE_FORMAT = 1
BUILD_TIMEOUT = 3600.0
START_TIMEOUT = 120.0
REQUEST_TIMEOUT = 300.0


def size(workload: str, scale: float) -> int:
    base, floor = _SIZES[workload]
    return max(floor, round(base * scale))


def sizes(scale: float) -> dict[str, dict[str, int]]:
    """Every tool serves the same runs: ``{workload: {tool: size}}`` as ``workloads.sizes``."""
    return {w: dict.fromkeys(TOOLS, size(w, scale)) for w in _SIZES}


def run_values(i: int) -> tuple[dict[str, Any], dict[str, float]]:
    """Run ``i``'s 3 params and 2 metrics (the same in both stores)."""
    params: dict[str, Any] = {"model": ("svc", "logreg", "knn", "tree")[i % 4], "C": 10 ** (i % 5 - 2)}
    params["seed"] = i
    metrics = {"accuracy": ((i * 7919) % 10_000) / 10_000, "loss": ((i * 104729) % 10_000) / 5_000}
    return params, metrics


# --------------------------------------------------------------------------------------------
# Building the stores (in a subprocess: python ui_serving.py --build ...)
# --------------------------------------------------------------------------------------------


def build_labledger(folder: Path, runs: int, points: int) -> dict[str, Any]:
    import labledger as ll

    store = folder / "store"
    ll.open_store(store)
    for i in range(runs):
        params, metrics = run_values(i)
        with ll.start_run(EXPERIMENT, name=f"run-{i}", store=store) as run:
            run.log_params(params)
            run.log_metrics(metrics, step=0)
    values = training_curve(points)
    with ll.start_run(CURVE_EXPERIMENT, name="curve", store=store) as run:
        for i, v in enumerate(values):
            run.log_metric(METRIC, v, step=i)
    return {"store": str(store), "run_id": run.id}


def build_mlflow(folder: Path, runs: int, points: int) -> dict[str, Any]:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    db = folder / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    artifacts = (folder / "mlruns").as_uri()
    experiment_id = client.create_experiment(EXPERIMENT, artifact_location=artifacts)
    for i in range(runs):
        params, metrics = run_values(i)
        run_id = client.create_run(experiment_id, run_name=f"run-{i}").info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        client.set_terminated(run_id)
    values = training_curve(points)
    run_id = client.create_run(
        client.create_experiment(CURVE_EXPERIMENT, artifact_location=artifacts)
    ).info.run_id
    for lo in range(0, points, 1000):  # log_batch takes at most 1,000 metrics a call
        now = int(time.time() * 1000)
        client.log_batch(
            run_id, metrics=[Metric(METRIC, values[i], now, i) for i in range(lo, min(points, lo + 1000))]
        )
    client.set_terminated(run_id)
    return {"db": str(db), "experiment_id": experiment_id, "run_id": run_id}


def cache_root() -> Path:
    """``$LABLEDGER_BENCH_CACHE``, else ``labledger-bench-ui`` in the system's temporary folder."""
    return Path(os.environ.get("LABLEDGER_BENCH_CACHE") or Path(tempfile.gettempdir()) / "labledger-bench-ui")


def _store_key(tool: str, runs: int, points: int) -> str:
    try:
        tag = version(tool)
    except PackageNotFoundError:
        tag = "unknown"
    if tool == "labledger":
        from labledger.store.schema import SCHEMA_VERSION

        tag += f"-schema{SCHEMA_VERSION}"
    return f"{tool}-{tag}-{runs}runs-{points}pts-v{STORE_FORMAT}"


def ensure_store(
    tool: str, scale: float, env_for: Callable[[Path], dict[str, str]], log: Callable[[str], None]
) -> dict[str, Any]:
    """The tool's store at this scale (its manifest): from the cache, or built now into it."""
    runs, points = size("W9", scale), size("W10", scale)
    folder = cache_root() / _store_key(tool, runs, points)
    manifest = folder / "manifest.json"
    if manifest.exists():
        found: dict[str, Any] = json.loads(manifest.read_text())
        return found
    shutil.rmtree(folder, ignore_errors=True)  # a build that did not finish
    folder.mkdir(parents=True)
    log(f"building the {tool} store: {runs:,} runs and a {points:,}-point metric (cached in {folder})")
    args = ("--build", tool, str(folder), str(runs), str(points))
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(
        cmd, cwd=folder, env=env_for(folder), capture_output=True, text=True, timeout=BUILD_TIMEOUT
    )
    if proc.returncode != 0 or not manifest.exists():
        shutil.rmtree(folder, ignore_errors=True)
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"building the {tool} store failed ({proc.returncode}): {tail}")
    info: dict[str, Any] = json.loads(manifest.read_text())
    log(f"built the {tool} store in {info['build_s']:.0f} s")
    return info


# --------------------------------------------------------------------------------------------
# Serving and requesting
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _executable(name: str) -> str:
    """The tool's command beside this interpreter (the environment's own), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"no {name} command beside {sys.executable} nor on PATH")
    return found


def server_command(tool: str, info: dict[str, Any], port: int) -> list[str]:
    if tool == "labledger":
        return [_executable("labledger"), "ui", "--store", info["store"], "--port", str(port)]
    flags = {"--backend-store-uri": f"sqlite:///{info['db']}", "--host": "127.0.0.1", "--port": str(port)}
    return [_executable("mlflow"), "server", *(x for kv in flags.items() for x in kv), "--workers", "1"]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the server and every process it started (its own process group), then reap it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + 10.0
        try:
            os.killpg(proc.pid, sig)
            while time.monotonic() < deadline:
                proc.poll()  # reaps the leader once it exits
                os.killpg(proc.pid, 0)  # raises once no process of the group is left
                time.sleep(0.05)
        except ProcessLookupError:
            break
    proc.wait(timeout=5.0)


@contextmanager
def serving(tool: str, info: dict[str, Any], env_for: Callable[[Path], dict[str, str]]) -> Iterator[int]:
    """Start the tool's server on a free port; yield the port once it accepts connections."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-ui-"))
    env = env_for(folder)
    if tool == "mlflow":
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job runner process beside it
    port = free_port()
    out = (folder / "server.log").open("wb")
    proc = subprocess.Popen(
        server_command(tool, info, port),
        cwd=folder,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                tail = (folder / "server.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"{tool} server exited ({proc.returncode}): {' | '.join(tail)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{tool} server did not listen within {START_TIMEOUT:.0f}s") from None
                time.sleep(0.02)
        yield port
    finally:
        _stop(proc)
        out.close()
        shutil.rmtree(folder, ignore_errors=True)


#: a request: (method, path, JSON body or None)
Request = tuple[str, str, dict[str, Any] | None]


def fetch(port: int, req: Request) -> tuple[float, bytes, str]:
    """Seconds from sending ``req`` to the answer's last byte, the body and its content type."""
    method, path, body = req
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        t0 = time.perf_counter()
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        dt = time.perf_counter() - t0
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {payload[:200]!r}")
    return dt, payload, resp.getheader("Content-Type", "")


def views(tool: str, workload: str, info: dict[str, Any]) -> dict[str, list[Request]]:
    """Per figure prefix, the requests one view makes (timed together)."""
    if tool == "labledger":
        experiment = quote(EXPERIMENT, safe="")
        if workload == "W9":
            return {
                "page": [("GET", PAGE_PATH.format(experiment=experiment), None)],
                "json": [("GET", JSON_PATH.format(experiment=experiment), None)],
            }
        path = METRIC_PATH.format(run_id=info["run_id"], key=quote(METRIC, safe=""))
        return {"": [("GET", path, None)]}
    if workload == "W9":
        body = {"experiment_ids": [info["experiment_id"]], "max_results": MLFLOW_PAGE_SIZE}
        body |= {"order_by": ["attributes.start_time DESC"], "run_view_type": "ACTIVE_ONLY"}
        search: Request = ("POST", f"{MLFLOW_API}/runs/search", body)
        lookup: Request = ("GET", f"{MLFLOW_API}/experiments/get?experiment_id={info['experiment_id']}", None)
        return {"page": [lookup, search], "json": [search]}
    query = urlencode({"run_ids": info["run_id"], "metric_key": METRIC, "max_results": MLFLOW_CHART_POINTS})
    return {"": [("GET", f"{MLFLOW_API}/metrics/get-history-bulk-interval?{query}", None)]}


def check(tool: str, workload: str, req: Request, body: bytes, content_type: str, scale: float) -> None:
    """The answer holds what the view shows (not timed)."""
    if "json" not in content_type:
        assert "text/html" in content_type and body, f"{req[1]}: {content_type}"
        return
    doc = json.loads(body)
    if tool == "labledger" and workload == "W9":
        assert len(doc["rows"]) == min(50, size("W9", scale)) and doc["total"] == size("W9", scale), req[1]
    elif tool == "labledger":
        assert doc["points"] == size("W10", scale) and len(doc["value"]) <= 2000, req[1]
    elif req[1].endswith("/runs/search"):
        assert len(doc["runs"]) == min(MLFLOW_PAGE_SIZE, size("W9", scale)), req[1]
    elif "get-history-bulk-interval" in req[1]:
        assert 0 < len(doc["metrics"]) <= MLFLOW_CHART_POINTS, req[1]


def one_round(
    tool: str, workload: str, scale: float, info: dict[str, Any], env_for: Callable[[Path], dict[str, str]]
) -> dict[str, Any]:
    """Each view against its own fresh server: the first time (cold), then the median of the warm."""
    out: dict[str, Any] = {"warm_requests": WARM_REQUESTS}
    for prefix, requests in views(tool, workload, info).items():
        with serving(tool, info, env_for) as port:
            times = []
            for _ in range(1 + WARM_REQUESTS):
                total = 0.0
                for req in requests:
                    dt, body, content_type = fetch(port, req)
                    check(tool, workload, req, body, content_type, scale)
                    total += dt
                times.append(total)
        name = f"{prefix}_" if prefix else ""
        out[f"{name}cold_ms"] = ms(times[0])
        out[f"{name}warm_ms"] = ms(median(times[1:]))
    return out


def rounds(
    tool: str,
    workload: str,
    scale: float,
    repeat: int,
    log: Callable[[str], None],
    env_for: Callable[[Path], dict[str, str]],
) -> list[dict[str, Any]]:
    """``repeat`` rounds of W9 or W10 for one tool (run.py's ``measure`` summarises them)."""
    if tool not in ("labledger", "mlflow"):
        return [{"unavailable": "n/a (no server)"}]
    try:
        info = ensure_store(tool, scale, env_for, log)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        return [{"error": f"{workload} store: {e}"}]
    out = []
    for k in range(repeat):
        log(f"{workload} {tool} {k + 1}/{repeat}")
        try:
            out.append(one_round(tool, workload, scale, info, env_for))
        except (RuntimeError, AssertionError, OSError, http.client.HTTPException) as e:
            out.append({"error": f"{workload} failed: {e}"})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--build", nargs=4, metavar=("TOOL", "FOLDER", "RUNS", "POINTS"), required=True)
    args = parser.parse_args(argv)
    tool, folder, runs, points = args.build[0], Path(args.build[1]), int(args.build[2]), int(args.build[3])
    os.environ.setdefault("LABLEDGER_COMPLETENESS", "off")  # no advice printed at each run's end
    build = {"labledger": build_labledger, "mlflow": build_mlflow}[tool]
    started = time.perf_counter()
    info = {**build(folder, runs, points), "runs": runs, "points": points}
    info["build_s"] = time.perf_counter() - started
    (folder / "manifest.json").write_text(json.dumps(info))  # last: the build is complete
    return 0


if __name__ == "__main__":
    sys.exit(main())
