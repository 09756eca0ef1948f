"""The server's HTTP API (v1): every :class:`~labledger.store.backend.Backend` method as one
endpoint, in the wire format of :mod:`labledger.store.remote.wire`.

- ``GET /api/v1/info``: the API version, labledger's version, the schema, the artifacts location,
  the body bound and the caller's user;
- ``POST /api/v1/read/<method>`` (``metric_chunks``: binary frames, streamed) and
  ``POST /api/v1/write/<method>``: ``{"args": [...]}`` in, ``{"result": ...}`` out;
- ``POST /api/v1/write/write_metrics``: a binary batch in, ``{"result": null, "points": n}`` out;
- ``HEAD|GET|PUT /api/v1/objects/<sha256>``: artifact bytes (:mod:`labledger.server.api_objects`).

Store calls run in the thread pool, never on the event loop; errors answer as
:mod:`labledger.server.api_errors` says.

>>> routes = Api(scoped, objects, ApiConfig(artifacts="s3://ledger/artifacts")).routes()  # doctest: +SKIP
"""

from __future__ import annotations

import contextvars
import inspect
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

import labledger
from labledger.server.api_errors import BadRequestError, error_response, read_body
from labledger.server.api_objects import object_routes
from labledger.store.remote import wire

if TYPE_CHECKING:
    from labledger.server.scoped import ScopedBackend
    from labledger.store.objects.base import ObjectStore

__all__ = ["MAX_BODY", "MAX_OBJECT", "Api", "ApiConfig", "UnknownMethodError"]

#: Default bound of a call's or a batch's body.
MAX_BODY = 64 << 20
#: Default bound of an uploaded object.
MAX_OBJECT = 5 << 30
#: A metric batch may inflate to this many times the body bound.
INFLATE_FACTOR = 8
_QUEUED_FRAMES = 32
_END = object()


class UnknownMethodError(BadRequestError):
    """No store method of that name is served at this path (answers 404)."""

    status = 404

    def __init__(self, kind: str, method: str, names: frozenset[str]) -> None:
        self.method = method
        super().__init__(f"no {kind} method {method!r}: one of {', '.join(sorted(names))}")


@dataclass(frozen=True)
class ApiConfig:
    """What the API says of itself, and its bounds.

    :param artifacts: where artifact bytes go (``s3://bucket/prefix`` or ``file:///folder``).
    :param schema: the database's schema version, when known.
    :param spool: the folder uploads are written to before they are stored (default: the temp folder).
    """

    artifacts: str | None = None
    schema: int | None = None
    max_body: int = MAX_BODY
    max_object: int = MAX_OBJECT
    spool: Path | None = None


def _bound(fn: Callable[..., Any], args: list[Any], method: str) -> None:
    try:
        inspect.signature(fn).bind(*args)
    except TypeError as e:
        raise BadRequestError(f"{method}: {e}") from None


def _points(batch: Any) -> int:
    return sum(
        min(len(s.values), len(s.steps), len(s.epochs), len(s.timestamps)) for s in batch.series.values()
    )


class Api:
    """The API's routes over a store (normally a :class:`~labledger.server.scoped.ScopedBackend`).

    >>> app = Starlette(routes=Api(scoped, objects, ApiConfig()).routes())  # doctest: +SKIP
    """

    def __init__(self, store: ScopedBackend, objects: ObjectStore | None, config: ApiConfig) -> None:
        self.store = store
        self.objects = objects
        self.config = config

    def routes(self) -> list[BaseRoute]:
        """The routes, under ``/api/v1``."""
        return [
            Route("/api/v1/info", self.info, methods=["GET"]),
            Route("/api/v1/read/{method}", self.read, methods=["POST"]),
            Route("/api/v1/write/write_metrics", self.write_metrics, methods=["POST"]),
            Route("/api/v1/write/{method}", self.write, methods=["POST"]),
            *object_routes(self.objects, self.config.max_object, self.config.spool),
        ]

    async def info(self, request: Request) -> Response:
        principal = request.scope.get("state", {}).get("principal")
        return JSONResponse(
            {
                "api": wire.API,
                "version": labledger.__version__,
                "schema": self.config.schema,
                "artifacts": self.config.artifacts,
                "max_body": self.config.max_body,
                "max_object": self.config.max_object,
                "user": getattr(principal, "user", None),
            }
        )

    def _method(self, kind: str, method: str, names: frozenset[str]) -> Callable[..., Any]:
        fn = getattr(self.store, method, None) if method in names else None
        if fn is None:
            raise UnknownMethodError(kind, method, names)
        return fn

    async def read(self, request: Request) -> Response:
        try:
            method = request.path_params["method"]
            fn = self._method("read", method, wire.READ_METHODS)
            args = wire.loads_args(await read_body(request, self.config.max_body))
            _bound(fn, args, method)
            if method == "metric_chunks":
                return await self._chunks(fn, args)
            return await self._call(fn, args)
        except Exception as e:
            return error_response(e)

    async def write(self, request: Request) -> Response:
        try:
            method = request.path_params["method"]
            fn = self._method("write", method, wire.WRITE_METHODS - {"write_metrics"})
            args = wire.loads_args(await read_body(request, self.config.max_body))
            _bound(fn, args, method)
            return await self._call(fn, args)
        except Exception as e:
            return error_response(e)

    async def write_metrics(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.config.max_body)
            limit = self.config.max_body * INFLATE_FACTOR
            batch = await run_in_threadpool(wire.decode_batch, body, limit)
            await run_in_threadpool(self.store.write_metrics, batch)
            return JSONResponse({"result": None, "points": _points(batch)})
        except Exception as e:
            return error_response(e)

    @staticmethod
    async def _call(fn: Callable[..., Any], args: list[Any]) -> Response:
        def call() -> bytes:
            result = fn(*args)
            try:
                return wire.dumps_result(result)
            except wire.WireFormatError as e:  # the store answered something that cannot travel
                raise RuntimeError(f"cannot send the answer of {fn.__name__}: {e}") from e

        return Response(await run_in_threadpool(call), media_type="application/json")

    async def _chunks(self, fn: Callable[..., Any], args: list[Any]) -> Response:
        """Stream ``metric_chunks`` as frames, read in one thread inside one snapshot of the store."""
        frames: queue.Queue[Any] = queue.Queue(_QUEUED_FRAMES)
        stop = threading.Event()
        store = self.store

        def produce() -> None:
            try:
                with store.snapshot():
                    for frame in wire.encode_chunks(fn(*args)):
                        while not stop.is_set():
                            try:
                                frames.put(frame, timeout=0.5)
                                break
                            except queue.Full:
                                continue
                        if stop.is_set():
                            return
                item: Any = _END
            except BaseException as e:  # handed to the response, which answers or ends it
                item = e
            while not stop.is_set():
                try:
                    frames.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue

        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(produce,), name="labledger-chunks", daemon=True).start()
        first = await run_in_threadpool(frames.get)
        if isinstance(first, BaseException):
            stop.set()
            raise first

        async def stream() -> AsyncIterator[bytes]:
            item = first
            try:
                while item is not _END:
                    if isinstance(item, BaseException):  # the answer has begun: end it short
                        raise item
                    yield item
                    item = await run_in_threadpool(frames.get)
            finally:
                stop.set()

        return StreamingResponse(stream(), media_type=wire.CHUNKS_TYPE)
