"""Load on a labledger server: many training processes logging through several server processes
into one PostgreSQL database, while a reader lists runs in a loop.

    python benchmarks/server_load.py [--clients 16] [--points 100000] [--servers 2] [--rate 0] [--json F]

Starts a throw-away PostgreSQL cluster (fsync on), ``labledger db upgrade``, one API token,
``--servers`` ``labledger server`` processes on loopback, a reader process listing the
experiment's runs in a loop (``ll.runs``), then ``--clients`` client processes at once, each
``log_metric`` ``--points`` times in one run through server ``i % servers`` and ending it. Then
checks that every point is stored (counted in PostgreSQL) and prints: aggregate points/s into
PostgreSQL (from the first client's start to the last run's end, with every point readable),
p50/p99 of a batch's round trip (the client's background send of one batch: encoding, request,
answer), the clients' ``log_metric`` cost under load, the reader's
listing latency, and errors (any error fails the run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server.postgres import PostgresCluster, free_port  # noqa: E402

from server_processes import cli, wait_healthy  # noqa: E402

EXPERIMENT = "load"

CLIENT = textwrap.dedent(
    """
    import json, math, os, random, sys, time
    import labledger as ll

    from labledger.store.remote.client import RemoteStore

    rtts = []
    send = RemoteStore.write_metrics

    def timed(self, batch):  # one batch's round trip: encoding, request, answer
        began = time.perf_counter()
        try:
            return send(self, batch)
        finally:
            rtts.append(time.perf_counter() - began)

    RemoteStore.write_metrics = timed
    index, points, start_file, rate = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    while not os.path.exists(start_file):
        time.sleep(0.001)
    noise = random.Random(index)  # a training curve's values (not the user's random stream)
    values = [math.exp(-i / 20_000) + noise.gauss(0.0, 0.01) for i in range(points)]
    began = time.time()
    run = ll.start_run(EXPERIMENT, name=f"client-{index}")
    log = run.log_metric
    t0 = time.perf_counter()
    spent = cpu = 0.0
    for block in range(0, points, 1000):
        began_block, began_cpu = time.perf_counter(), time.thread_time()
        for i in range(block, min(points, block + 1000)):
            log("loss", values[i], step=i)
        spent += time.perf_counter() - began_block
        cpu += time.thread_time() - began_cpu
        if rate:  # a training loop's pace: sleep until this block's time has come
            time.sleep(max(0.0, t0 + (block + 1000) / rate - time.perf_counter()))
    t1 = time.perf_counter()
    run.end()
    ended = time.time()
    waited = ended - began - (t1 - t0)
    figures = {"began": began, "ended": ended, "loop": spent, "cpu": cpu, "end_wait": waited, "id": run.id}
    print(json.dumps({**figures, "rtts": rtts}))
    """
).replace("EXPERIMENT", repr(EXPERIMENT))

READER = textwrap.dedent(
    """
    import json, os, sys, time
    import labledger as ll

    stop_file = sys.argv[1]
    times, errors = [], []
    while not os.path.exists(stop_file):
        began = time.perf_counter()
        try:
            ll.runs(experiment=EXPERIMENT)
        except Exception as e:  # counted and reported: any error fails the benchmark
            errors.append(f"{type(e).__name__}: {e}")
        times.append(time.perf_counter() - began)
    print(json.dumps({"times": times, "errors": errors[:20], "error_count": len(errors)}))
    """
).replace("EXPERIMENT", repr(EXPERIMENT))


def _request_rate(url: str, token: str, run_id: str, seconds: float = 5.0, threads: int = 16) -> float:
    """Small requests (a run's heartbeat) one server process answers per second, from ``threads``
    kept-alive connections at once."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    from labledger.store.remote import wire

    host, port = urlsplit(url).hostname, urlsplit(url).port
    body = wire.dumps_args([run_id])
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def hammer(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while time.monotonic() < deadline:
            conn.request("POST", "/api/v1/write/heartbeat", body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                raise SystemExit(f"a heartbeat answered {answer.status}")
            counts[i] += 1
        conn.close()

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / seconds


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_load(clients: int, points: int, servers: int, folder: Path, rate: float = 0.0) -> dict[str, object]:
    """Run the load once; returns the figures (SystemExit when a point is missing or an error happened)."""
    import psycopg

    cluster = PostgresCluster.start(fsync=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with psycopg.connect(cluster.dsn, autocommit=True) as admin:
            admin.execute("CREATE DATABASE ledger")
        dsn = cluster.dsn_for("ledger")
        env = {**os.environ, "LABLEDGER_CACHE": str(folder / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}
        cli(sys.executable, "labledger", "db", "upgrade", "--backend", dsn, env=env)
        create = ["token", "create", "--backend", dsn, "--user", "load", "--scope", "write", "--create-user"]
        token = cli(sys.executable, "labledger", *create, env=env).split()[-1]
        urls = []
        for _ in range(servers):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            objects = (folder / "objects").as_uri()
            command = ["server", "--backend", dsn, "--artifacts", objects, "--port", str(port)]
            with (folder / f"server-{port}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "labledger.cli", *command],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(url)
        for url, proc in zip(urls, procs, strict=True):
            wait_healthy(f"{url}/api/health", proc, folder / f"server-{url.rsplit(':', 1)[1]}.log")
        client_env = {**env, "LABLEDGER_TOKEN": token, "LABLEDGER_CAPTURE_CODE": "0"}
        client_env["LABLEDGER_COMPLETENESS"] = "off"
        start_file, stop_file = folder / "start", folder / "stop"
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(stop_file)],
            env={**client_env, "LABLEDGER_STORE": urls[-1]},
            stdout=subprocess.PIPE,
        )
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", CLIENT, str(i), str(points), str(start_file), str(rate)],
                env={**client_env, "LABLEDGER_STORE": urls[i % servers]},
                stdout=subprocess.PIPE,
            )
            for i in range(clients)
        ]
        time.sleep(3.0)  # every client imported labledger and waits
        start_file.touch()
        results = []
        for worker in workers:
            out, _ = worker.communicate(timeout=1800)
            if worker.returncode:
                raise SystemExit(f"a client failed with {worker.returncode}")
            results.append(json.loads(out.splitlines()[-1]))
        stop_file.touch()
        read_out, _ = reader.communicate(timeout=120)
        requests = _request_rate(urls[0], token, results[0]["id"])
        reads = json.loads(read_out.splitlines()[-1])
        with psycopg.connect(dsn) as conn:
            stored = conn.execute(
                "SELECT r.name, coalesce(sum(c.count), 0) FROM runs r LEFT JOIN metric_chunks c "
                "ON c.run_id = r.id GROUP BY r.name"
            ).fetchall()
            statuses = conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
            (chunk_bytes,) = conn.execute("SELECT pg_total_relation_size('metric_chunks')").fetchone()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        cluster.stop()
    missing = {name: points - int(n) for name, n in stored if int(n) != points}
    if len(stored) != clients or missing or reads["error_count"]:
        problem = f"runs={len(stored)} missing={missing} reader errors={reads['errors']}"
        raise SystemExit(f"LOST OR FAILED: {problem}")
    wall = max(r["ended"] for r in results) - min(r["began"] for r in results)
    rtts = [t for r in results for t in r["rtts"]]
    per_call = [r["loop"] / points * 1e9 for r in results]
    cpu_per_call = [r["cpu"] / points * 1e9 for r in results]
    return {
        "clients": clients,
        "points_per_client": points,
        "servers": servers,
        "rate": rate,
        "stored_points": sum(int(n) for _, n in stored),
        "statuses": dict(statuses),
        "wall_s": wall,
        "bytes_per_point": chunk_bytes / max(1, sum(int(n) for _, n in stored)),
        "points_per_s": clients * points / wall,
        "batches": len(rtts),
        "batch_rtt_p50_ms": _percentile(rtts, 0.5) * 1e3,
        "batch_rtt_p99_ms": _percentile(rtts, 0.99) * 1e3,
        "log_metric_ns_median": statistics.median(per_call),
        "log_metric_ns_max": max(per_call),
        "log_metric_cpu_ns_median": statistics.median(cpu_per_call),
        "end_wait_s_max": max(r["end_wait"] for r in results),
        "reader_lists": len(reads["times"]),
        "reader_list_p50_ms": _percentile(reads["times"], 0.5) * 1e3,
        "reader_errors": reads["error_count"],
        "requests_per_s_one_process": requests,
    }


def table(figures: dict[str, object]) -> str:
    f = figures
    pace = f", each at {f['rate']:,.0f} points/s" if f["rate"] else ", each as fast as it can"
    load = f"{f['clients']} × {f['points_per_client']:,} through {f['servers']} server processes{pace}"
    rtt = f"p50 {f['batch_rtt_p50_ms']:.1f} ms, p99 {f['batch_rtt_p99_ms']:.1f} ms ({f['batches']} batches)"
    cost = (
        f"{f['log_metric_cpu_ns_median']:.0f} ns CPU per call (median client); wall "
        f"{f['log_metric_ns_median']:.0f} ns median, {f['log_metric_ns_max']:.0f} ns worst (cores shared)"
    )
    reader = (
        f"{f['reader_lists']} listings, p50 {f['reader_list_p50_ms']:.0f} ms, {f['reader_errors']} errors"
    )
    rows = [
        ("clients × points", load),
        ("stored", f"{f['stored_points']:,} points, every one (runs: {f['statuses']})"),
        ("aggregate into PostgreSQL", f"{f['points_per_s']:,.0f} points/s ({f['wall_s']:.1f} s wall)"),
        ("stored size", f"{f['bytes_per_point']:.1f} bytes/point (metric_chunks with its TOAST and index)"),
        ("batch round trip", rtt),
        ("log_metric under load", cost),
        ("run end (flush) wait", f"{f['end_wait_s_max']:.2f} s worst client"),
        ("reader", reader),
        (
            "small requests, one server process",
            f"{f['requests_per_s_one_process']:,.0f}/s (heartbeats, 16 connections)",
        ),
    ]
    return "\n".join(["| figure | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0.0, help="points/s per client (0: as fast as it can)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labledger-load-") as folder:
        figures = run_load(args.clients, args.points, args.servers, Path(folder), args.rate)
    print(table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
