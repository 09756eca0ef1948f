"""Artifact bytes of a labledger server: its objects endpoints as an object store, and the
store's :class:`RemoteBlobs` (a local cache in front, each content uploaded once).

``HEAD``/``GET``/``PUT /api/v1/objects/<sha256>``: an upload is streamed from the file (the
server checks its SHA-256 and refuses a mismatch); a download is streamed and checked against
its SHA-256 before it lands in the cache. When the server's artifacts are in S3 and this
machine has AWS credentials, the bytes go to the bucket directly instead
(:meth:`labledger.store.remote.client.RemoteStore.objects`).

>>> objects = HttpObjectStore(store)  # doctest: +SKIP
>>> sha, size = objects.put_bytes(b"weights")  # doctest: +SKIP
>>> objects.exists(sha)  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from labledger.store.blobs import BlobStore
from labledger.store.objects.base import CHUNK, ObjectStore, VerifyingReader, check_digest, hash_open_file
from labledger.store.objects.cached import CachedBlobs
from labledger.store.objects.errors import ObjectMissingError, SourceChangedError
from labledger.store.remote.errors import RemoteError, ServerUnreachableError, error_from_answer
from labledger.store.remote.transport import RETRY_STATUSES, Transport

if TYPE_CHECKING:
    from labledger.store.remote.client import RemoteStore

__all__ = ["OBJECTS_PATH", "HttpObjectStore", "RemoteBlobs"]

OBJECTS_PATH = "/api/v1/objects/"
#: Seconds a transfer waits for the server between two blocks.
TRANSFER_TIMEOUT = 120.0


class HttpObjectStore(ObjectStore):
    """The objects endpoints of a labledger server as an :class:`ObjectStore`."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.uri = transport.url + OBJECTS_PATH.rstrip("/")

    def exists(self, sha256: str) -> bool:
        """Whether the server holds content ``sha256`` (``HEAD``)."""
        path = OBJECTS_PATH + check_digest(sha256)
        answer = self.transport.call("HEAD", path, deadline=5.0, ok=frozenset({200, 404}))
        return answer.status == 200

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Upload a file unless the server has its content; ``(sha256, size)``.

        :raises SourceChangedError: the file changed while it was sent.
        """
        with open(path, "rb") as file:
            sha, size = hash_open_file(file)
            if self.exists(sha):
                return sha, size
            file.seek(0)
            self._put(sha, file, size, str(path))
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Upload ``data`` unless the server has it; ``(sha256, size)``."""
        sha = hashlib.sha256(data).hexdigest()
        if not self.exists(sha):
            self._put(sha, io.BytesIO(data), len(data), "bytes")
        return sha, len(data)

    def _put(self, sha: str, file: io.BufferedIOBase | io.BytesIO, size: int, shown: str) -> None:
        conn = self.transport.connect(TRANSFER_TIMEOUT)
        headers = self.transport.headers(write=True, content_type="application/octet-stream")
        headers["Content-Length"] = str(size)
        try:
            conn.request("PUT", self.transport.prefix + OBJECTS_PATH + sha, body=file, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as e:
            raise ServerUnreachableError(self.transport.url, f"upload of {sha[:12]}: {e}") from e
        finally:
            conn.close()
        if response.status in (200, 201, 204):
            return
        if response.status in RETRY_STATUSES:
            raise ServerUnreachableError(self.transport.url, f"HTTP {response.status}", response.status)
        if response.status == 400 and shown != "bytes":
            raise SourceChangedError(shown, sha)
        raise error_from_answer(self.transport.url, response.status, body)

    def open(self, sha256: str) -> io.BufferedReader:
        """A reader of the content (streamed); reading it to its end checks its SHA-256.

        :raises ObjectMissingError: the server holds no such content.
        """
        path = OBJECTS_PATH + check_digest(sha256)
        conn = self.transport.connect(TRANSFER_TIMEOUT)
        try:
            conn.request("GET", self.transport.prefix + path, headers=self.transport.headers())
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise ServerUnreachableError(self.transport.url, f"download of {sha256[:12]}: {e}") from e
        if response.status != 200:
            body = response.read()
            conn.close()
            if response.status == 404:
                raise ObjectMissingError(sha256, self.uri + "/" + sha256)
            if response.status in RETRY_STATUSES:
                raise ServerUnreachableError(self.transport.url, f"HTTP {response.status}", response.status)
            raise error_from_answer(self.transport.url, response.status, body)
        length = response.getheader("Content-Length")

        def close() -> None:
            response.close()
            conn.close()

        def read(size: int) -> bytes:
            try:
                return response.read(size)
            except (OSError, http.client.HTTPException) as e:
                raise RemoteError(
                    self.transport.url,
                    f"the download of content {sha256[:12]} was cut short ({type(e).__name__}); nothing "
                    "was kept. The server may have found its copy damaged (see its log): try again, "
                    "or run `labledger fsck` there",
                ) from e

        reader = VerifyingReader(
            read,
            close,
            sha256,
            int(length) if length and length.isdigit() else None,
            f"{self.uri}/{sha256}",
        )
        return io.BufferedReader(reader, CHUNK)


class RemoteBlobs(CachedBlobs):
    """Artifact bytes of a labledger server, cached under ``root``: each content uploaded once
    (the server asked first), in order with the run's records — while the server cannot be
    reached, uploads are spooled with them (the cached file is sent later)."""

    def __init__(self, root: Path, store: RemoteStore) -> None:
        super().__init__(root, store.objects, store.url)
        self._store = store

    def _upload(self, objects: ObjectStore, sha: str) -> None:
        with self._lock:
            if sha in self._uploaded:
                return
        if self._store.upload_object(sha, BlobStore.path_for(self, sha)):
            with self._lock:
                self._uploaded.add(sha)
