"""Content-addressed files in a folder, in the layout of a local store's ``artifacts`` folder.

Content with SHA-256 ``abcdef…`` is the file ``<folder>/ab/cdef…``, written by
:class:`~labledger.store.blobs.BlobStore` (temporary file, then rename; identical content once).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from labledger.store.blobs import BlobStore
from labledger.store.objects.base import CHUNK, ObjectStore, VerifyingReader, check_digest
from labledger.store.objects.errors import ObjectMissingError

__all__ = ["FileObjectStore"]


class FileObjectStore(ObjectStore):
    """Content-addressed files under one folder (``file:///srv/ledger/artifacts``).

    >>> store = FileObjectStore(Path("/srv/ledger/artifacts"))  # doctest: +SKIP
    >>> sha, size = store.put_bytes(b"test")  # doctest: +SKIP
    >>> store.get(sha, "copy.txt")  # doctest: +SKIP
    PosixPath('copy.txt')
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.blobs = BlobStore(self.root)
        self.uri = self.root.absolute().as_uri()

    def path_for(self, sha256: str) -> Path:
        """The file of content: ``<folder>/ab/cdef…``.

        :raises InvalidDigestError: ``sha256`` is not a SHA-256 hex digest.
        """
        return self.blobs.path_for(check_digest(sha256))

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Copy a regular file in unless its content is there already; returns ``(sha256, size)``.

        :raises ArtifactSourceError: ``path`` is not a regular file.
        :raises ArtifactWriteError: the folder could not take it (disk full...).
        """
        return self.blobs.put_file(Path(path))

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data`` unless it is there already; returns ``(sha256, size)``."""
        return self.blobs.put_bytes(bytes(data))

    def exists(self, sha256: str) -> bool:
        """Whether content with this SHA-256 is stored."""
        return self.path_for(sha256).is_file()

    def open(self, sha256: str) -> io.BufferedReader:
        """A reader of the content; reading it to the end checks its SHA-256.

        :raises ObjectMissingError: nothing is stored under ``sha256``.
        """
        path = self.path_for(sha256)
        try:
            file = path.open("rb", buffering=0)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectMissingError(sha256, str(path)) from None
        size = os.fstat(file.fileno()).st_size
        return io.BufferedReader(VerifyingReader(file.read, file.close, sha256, size, str(path)), CHUNK)
