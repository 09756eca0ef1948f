"""Artifact bytes kept in an object store (S3 or a shared folder), with a local cache in front.

:class:`CachedBlobs` has the interface of :class:`labledger.store.blobs.BlobStore`, which the rest
of labledger uses for artifacts: a file is stored in the local cache folder (``root``, the
layout of a store's ``artifacts`` folder) and uploaded unless the object store has its content
already, so the same bytes go up once whichever run logs them. Reading a blob that is not in the
cache downloads it first, checked against its SHA-256 on the way in (a changed object raises
:class:`~labledger.store.objects.errors.ObjectCorruptError` and nothing lands in the cache).

>>> from labledger.store.objects import open_objects
>>> cache = Path("~/.cache/ledger").expanduser()
>>> blobs = CachedBlobs(cache, open_objects("s3://ledger/artifacts"))  # doctest: +SKIP
>>> sha, size = blobs.put_file(Path("model.pt"))  # doctest: +SKIP
>>> blobs.path_for(sha).read_bytes() == Path("model.pt").read_bytes()  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from labledger.errors import StoreError
from labledger.store.blobs import BlobStore
from labledger.store.objects.base import ObjectStore
from labledger.store.objects.errors import ObjectMissingError

__all__ = ["ArtifactLocationMissingError", "CachedBlobs"]

#: Where the object store comes from: one, or a function answering it on first use (None: not set).
Objects = ObjectStore | Callable[[], ObjectStore | None] | None


class ArtifactLocationMissingError(StoreError):
    """A store keeps artifact bytes in an object store, and none is configured for it.

    ``path`` is the store; ``problem`` says how to configure one.
    """

    def __init__(self, path: str) -> None:
        super().__init__(
            path,
            "has no artifacts location, so artifacts cannot be stored. Start the server with "
            "`labledger server --artifacts s3://bucket/prefix` (or a shared folder), or set "
            "LABLEDGER_ARTIFACTS=s3://bucket/prefix on this machine",
        )


class CachedBlobs(BlobStore):
    """Files stored by their SHA-256 in an object store, cached under ``root``.

    :param root: the local cache folder (created on first write).
    :param objects: the object store, or a function giving it on first use (``None`` when
        none is configured: reads come from the cache only, writes raise
        :class:`ArtifactLocationMissingError` naming ``where``).
    :param where: the store, as error messages name it.
    """

    def __init__(self, root: Path, objects: Objects, where: str = "") -> None:
        super().__init__(root)
        self._objects = objects
        self._resolved: ObjectStore | None = objects if isinstance(objects, ObjectStore) else None
        self.where = where or str(root)
        self._uploaded: set[str] = set()  # contents known to be in the object store
        self._lock = threading.Lock()
        self._writing = threading.local()  # inside a put: path_for looks in the cache only

    def __repr__(self) -> str:
        return f"<labledger CachedBlobs {self.root} -> {self._resolved.uri if self._resolved else '?'}>"

    @property
    def objects(self) -> ObjectStore | None:
        """The object store (resolved on first use), or None when none is configured."""
        if self._resolved is None and callable(self._objects) and not isinstance(self._objects, ObjectStore):
            self._resolved = self._objects()
        return self._resolved

    def _required(self) -> ObjectStore:
        objects = self.objects
        if objects is None:
            raise ArtifactLocationMissingError(self.where)
        return objects

    # -- writes: the cache, then the object store -------------------------------------------

    def put_file(self, source: Path) -> tuple[str, int]:
        """Store ``source`` in the cache and upload it unless the object store has it; ``(sha256, size)``."""
        objects = self._required()  # before anything is written: no location, no artifact
        with self._cache_only():
            sha, size = super().put_file(source)
        self._upload(objects, sha)
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data`` in the cache and upload it unless the object store has it; ``(sha256, size)``."""
        objects = self._required()
        with self._cache_only():
            sha, size = super().put_bytes(data)
        self._upload(objects, sha)
        return sha, size

    @contextlib.contextmanager
    def _cache_only(self) -> Iterator[None]:
        depth = getattr(self._writing, "depth", 0)
        self._writing.depth = depth + 1
        try:
            yield
        finally:
            self._writing.depth = depth

    def _upload(self, objects: ObjectStore, sha: str) -> None:
        with self._lock:
            if sha in self._uploaded:
                return
        if not objects.exists(sha):
            objects.put_file(super().path_for(sha))
        with self._lock:
            self._uploaded.add(sha)

    # -- reads: the cache, filled from the object store -------------------------------------

    def path_for(self, sha256: str) -> Path:
        """The cached file of ``sha256``, downloaded (and checked) first when only the object store has it.

        A blob neither holds is returned as a path that does not exist, as a local store's is.

        :raises labledger.store.objects.errors.ObjectCorruptError: the stored object is not ``sha256``.
        """
        local = super().path_for(sha256)
        if getattr(self._writing, "depth", 0) or local.exists():
            return local
        objects = self.objects
        if objects is None:
            return local
        try:
            objects.get(sha256, local)
        except ObjectMissingError:
            return local
        with contextlib.suppress(OSError):  # read-only like the cache's other blobs
            os.chmod(local, 0o444)
        with self._lock:
            self._uploaded.add(sha256)
        return local
