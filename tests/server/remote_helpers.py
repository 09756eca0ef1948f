"""A labledger server for the client's tests, in a process of its own that a test can kill.

:class:`LedgerServer` runs ``labledger server --no-auth`` over a SQLite store folder on a
loopback port, waits until it answers, and kills (SIGKILL) or restarts it on the same port.
This module also serves the API itself from the wire codec over a SQLite store
(``python remote_helpers.py --store DIR --port N [--token T]``): for a token without a
PostgreSQL database of accounts, and to count uploads (``GET /test/uploads``).

>>> with LedgerServer(tmp_path / "server-store") as server:   # doctest: +SKIP
...     ll.start_run("x", store=server.url).end()
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
#: The real server's command; while it does not exist, this module's server stands in.
REAL_SERVER = HERE.parents[2] / "src" / "labledger" / "cli" / "commands" / "server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the server (runs in its own process) ------------------------------------------------------


def _fields(error: BaseException) -> dict[str, Any]:
    out = {}
    for key, value in vars(error).items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        out[key] = value
    return out


def _status(error: BaseException) -> int:
    from labledger.errors import LabledgerError, StoreError
    from labledger.store.backend import FilterTooLargeError
    from labledger.store.remote.wire import WireFormatError

    if isinstance(error, WireFormatError | FilterTooLargeError | TypeError):
        return 400
    if isinstance(error, StoreError):
        return 503
    if isinstance(error, LabledgerError):
        return 409
    return 500


def make_app(store_path: Path, token: str | None = None) -> Any:
    """The API's routes over the SQLite store in ``store_path``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    import labledger
    from labledger.store import open_store
    from labledger.store.remote import wire

    store = open_store(store_path)
    uploads: dict[str, int] = {}  # PUTs per object, for the tests (GET /test/uploads)

    def authorized(request: Request) -> Response | None:
        if token is None or request.headers.get("authorization") == f"Bearer {token}":
            return None
        return JSONResponse({"error": "invalid API token (unknown, revoked or expired)"}, status_code=401)

    def failure(error: BaseException) -> Response:
        body = {"error": str(error), "kind": type(error).__name__, **_fields(error)}
        return JSONResponse(body, status_code=_status(error))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": labledger.__version__})

    async def info(request: Request) -> Response:
        return authorized(request) or JSONResponse(
            {
                "api": wire.API,
                "version": labledger.__version__,
                "schema": None,
                "artifacts": store.blobs.root.as_uri(),
                "max_body": 64 << 20,
                "user": None,
            }
        )

    async def read(request: Request) -> Response:
        refused = authorized(request)
        if refused:
            return refused
        method = request.path_params["method"]
        if method not in wire.READ_METHODS:
            return JSONResponse({"error": f"no read {method!r}"}, status_code=404)
        try:
            args = wire.loads_args(await request.body())
            if method == "metric_chunks":
                with store.snapshot():
                    data = b"".join(wire.encode_chunks(store.metric_chunks(*args)))
                return Response(data, media_type=wire.CHUNKS_TYPE)
            return Response(wire.dumps_result(getattr(store, method)(*args)), media_type="application/json")
        except Exception as e:
            return failure(e)

    async def write(request: Request) -> Response:
        refused = authorized(request)
        if refused:
            return refused
        method = request.path_params["method"]
        if method not in wire.WRITE_METHODS:
            return JSONResponse({"error": f"no write {method!r}"}, status_code=404)
        try:
            body = await request.body()
            if method == "write_metrics":
                batch = wire.decode_batch(body)
                store.write_metrics(batch)
                return JSONResponse({"result": None, "points": len(batch)})
            args = wire.loads_args(body)
            if method == "insert_run":
                known = store.run_row(args[0]["id"])
                if known is not None and known["experiment_id"] == args[0]["experiment_id"]:
                    return Response(wire.dumps_result(known["name"]), media_type="application/json")
            result = getattr(store, method)(*args)
            return Response(wire.dumps_result(result), media_type="application/json")
        except Exception as e:
            return failure(e)

    async def objects(request: Request) -> Response:
        refused = authorized(request)
        if refused:
            return refused
        sha = request.path_params["sha"]
        try:
            path = store.blobs.path_for(sha)
        except ValueError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        if request.method == "HEAD":
            return Response(status_code=200 if path.is_file() else 404)
        if request.method == "GET":
            if not path.is_file():
                return JSONResponse({"error": "no such object"}, status_code=404)
            return FileResponse(path, media_type="application/octet-stream")
        digest = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=store_path, delete=False) as tmp:
            async for block in request.stream():
                digest.update(block)
                tmp.write(block)
        uploads[sha] = uploads.get(sha, 0) + 1
        try:
            if digest.hexdigest() != sha:
                return JSONResponse({"error": "the body does not hash to its address"}, status_code=400)
            store.blobs.put_file(Path(tmp.name))
        finally:
            os.unlink(tmp.name)
        return Response(status_code=201)

    async def counted(request: Request) -> Response:
        return JSONResponse(uploads)

    return Starlette(
        routes=[
            Route("/test/uploads", counted),
            Route("/api/health", health),
            Route("/api/v1/info", info),
            Route("/api/v1/read/{method}", read, methods=["POST"]),
            Route("/api/v1/write/{method}", write, methods=["POST"]),
            Route("/api/v1/objects/{sha}", objects, methods=["GET", "HEAD", "PUT"]),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token")
    args = parser.parse_args()
    app = make_app(Path(args.store), args.token)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


# -- the test side ------------------------------------------------------------------------------


def start_script(tmp_path: Path, code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """A Python snippet in a process of its own (as the ``run_script`` fixture, without waiting)."""
    import textwrap

    script = tmp_path / f"script_{abs(hash(code))}.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.Popen(
        [sys.executable, str(script)],
        env={**os.environ, **env},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen[str] | None = None, timeout: float = 60.0) -> None:
    """Wait until ``path`` exists (the script wrote it); fail early if the script exited."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the script exited ({process.returncode}) before {path.name}:\n{out}{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} did not appear within {timeout}s")
        time.sleep(0.02)


def uploads(url: str) -> dict[str, int]:
    """PUTs of each object the test server received."""
    with urllib.request.urlopen(url + "/test/uploads", timeout=5) as answer:
        return dict(json.loads(answer.read()))


class LedgerServer:
    """A server process on a fixed loopback port: started, killed, restarted by the test."""

    def __init__(
        self, store: Path, token: str | None = None, port: int | None = None, real: bool | None = None
    ) -> None:
        self.store = store
        self.token = token
        #: ``labledger server --no-auth`` itself (a token, or the upload counts, need this module's)
        self.real = token is None and REAL_SERVER.exists() if real is None else real
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = store.parent / f"server-{self.port}.log"

    def __enter__(self) -> LedgerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> LedgerServer:
        self.store.mkdir(parents=True, exist_ok=True)
        if self.real:
            command = [sys.executable, "-m", "labledger.cli", "server", "--no-auth"]
            command += ["--backend", str(self.store), "--port", str(self.port)]
        else:
            command = [sys.executable, str(HERE), "--store", str(self.store), "--port", str(self.port)]
        if self.token:
            command += ["--token", self.token]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABLEDGER_")}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the test server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the test server did not answer within {timeout}s")

    def kill(self) -> None:
        """SIGKILL: the server dies at once, answers in flight lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


if __name__ == "__main__":
    main()
