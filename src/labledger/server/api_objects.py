"""Artifact bytes through the server: ``HEAD``, ``GET`` and ``PUT /api/v1/objects/<sha256>``.

Objects are addressed by their SHA-256 and kept in the server's
:class:`~labledger.store.objects.base.ObjectStore` (S3 or a folder). An upload is streamed
to a temporary file while it is hashed, never held in memory; one whose bytes do not hash
to the address is refused (400) and nothing is stored; one already stored is not read again
(idempotent). A download is streamed as the object store reads it (the client checks the hash).

>>> routes = object_routes(open_objects("s3://ledger/artifacts"), max_object=5 << 30)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from labledger.server.api_errors import BadRequestError, BodyTooLargeError, error_response
from labledger.store.objects.base import CHUNK, check_digest

if TYPE_CHECKING:
    from labledger.store.objects.base import ObjectStore

__all__ = ["DigestMismatchError", "ObjectRoutes", "object_routes"]


class DigestMismatchError(BadRequestError):
    """An uploaded object's bytes do not hash to the address it was sent to; nothing was stored."""

    def __init__(self, sha256: str, actual: str, size: int) -> None:
        self.sha256 = sha256
        self.actual = actual
        self.size = size
        super().__init__(
            f"the {size:,} bytes sent hash to {actual[:12]}, not {sha256[:12]}: nothing was stored. "
            "Send the object again (it may have changed while it was sent)."
        )


class ObjectRoutes:
    """The ``/api/v1/objects/<sha256>`` endpoint over ``objects``; uploads spool in ``spool``."""

    def __init__(self, objects: ObjectStore | None, max_object: int, spool: Path | None = None) -> None:
        self.objects = objects
        self.max_object = max_object
        self.spool = spool

    async def __call__(self, request: Request) -> Response:
        try:
            sha = check_digest(request.path_params["sha256"])
            if self.objects is None:
                raise BadRequestError("this server keeps no artifact bytes (no --artifacts location)")
            if request.method == "PUT":
                return await self._put(request, self.objects, sha)
            if request.method == "HEAD":
                found = await run_in_threadpool(self.objects.exists, sha)
                return Response(status_code=200 if found else 404)
            return await self._get(self.objects, sha)
        except Exception as e:
            return error_response(e)

    async def _get(self, objects: ObjectStore, sha: str) -> Response:
        reader = await run_in_threadpool(objects.open, sha)

        async def stream() -> AsyncIterator[bytes]:
            try:
                while block := await run_in_threadpool(reader.read, CHUNK):
                    yield block
            finally:
                await run_in_threadpool(reader.close)

        return StreamingResponse(stream(), media_type="application/octet-stream")

    async def _put(self, request: Request, objects: ObjectStore, sha: str) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_object:
            raise BodyTooLargeError(self.max_object, "object")
        if await run_in_threadpool(objects.exists, sha):
            return JSONResponse({"sha256": sha, "stored": False})
        if self.spool is not None:
            self.spool.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=self.spool)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                actual, size = await self._receive(request, out)
            if actual != sha:
                raise DigestMismatchError(sha, actual, size)
            stored, _ = await run_in_threadpool(objects.put_file, path)
            if stored != sha:  # the file changed under us: cannot happen to a private temporary file
                raise DigestMismatchError(sha, stored, size)
        finally:
            path.unlink(missing_ok=True)
        return JSONResponse({"sha256": sha, "size": size, "stored": True}, status_code=201)

    async def _receive(self, request: Request, out: Any) -> tuple[str, int]:
        """Write the body to ``out`` (in the thread pool, a MiB at a time) while hashing it."""
        digest = hashlib.sha256()
        pending: list[bytes] = []
        held = size = 0

        def flush(parts: list[bytes]) -> None:
            for part in parts:
                digest.update(part)
                out.write(part)

        try:
            async for part in request.stream():
                size += len(part)
                if size > self.max_object:
                    raise BodyTooLargeError(self.max_object, "object")
                pending.append(part)
                held += len(part)
                if held >= CHUNK:
                    await run_in_threadpool(flush, pending)
                    pending, held = [], 0
        except ClientDisconnect:
            raise BadRequestError(
                "the client went away before the object arrived: nothing was stored"
            ) from None
        await run_in_threadpool(flush, pending)
        return digest.hexdigest(), size


def object_routes(objects: ObjectStore | None, max_object: int, spool: Path | None = None) -> list[BaseRoute]:
    """The objects endpoint as routes (``HEAD``, ``GET``, ``PUT``).

    :param objects: where artifact bytes are kept (``None``: every call answers 400).
    :param max_object: the largest upload taken, in bytes (larger answers 413).
    :param spool: the folder uploads are written to before they are stored (default: the temp folder).
    """
    endpoint = ObjectRoutes(objects, max_object, spool)
    return [Route("/api/v1/objects/{sha256}", endpoint.__call__, methods=["HEAD", "GET", "PUT"])]
