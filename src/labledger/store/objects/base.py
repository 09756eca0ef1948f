"""What every object store does, and the checks they share: digests, prefixes, verified reads."""

from __future__ import annotations

import abc
import hashlib
import io
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labledger.store.objects.errors import InvalidDigestError, ObjectCorruptError, ObjectLocationError

__all__ = [
    "CHUNK",
    "ObjectStore",
    "VerifyingReader",
    "check_digest",
    "hash_open_file",
    "normalise_prefix",
    "write_beside",
]

#: Bytes read or written at a time.
CHUNK = 1 << 20
_DIGEST = re.compile(r"[0-9a-f]{64}")
_SEGMENT = re.compile(r"[A-Za-z0-9._~+=@,-]+")
#: An S3 key holds at most 1,024 bytes; ``/sha256/ab/`` and 62 hex characters follow the prefix.
MAX_PREFIX = 900


def check_digest(sha256: object) -> str:
    """``sha256`` itself when it is a SHA-256 hex digest (64 lowercase hex characters).

    :raises InvalidDigestError: it is anything else.

    >>> check_digest("0" * 64) == "0" * 64
    True
    """
    if not isinstance(sha256, str) or not _DIGEST.fullmatch(sha256):
        raise InvalidDigestError(sha256)
    return sha256


def normalise_prefix(prefix: str, uri: str) -> tuple[str, ...]:
    """The segments of a key prefix (``"team/artifacts"`` → ``("team", "artifacts")``).

    One trailing ``/`` is dropped; a leading ``/``, a backslash, an empty, ``.`` or ``..``
    segment, or a character outside letters, digits and ``. _ ~ + = @ , -`` is refused.

    :raises ObjectLocationError: the prefix is refused (``uri`` names the store in the message).

    >>> normalise_prefix("team/artifacts/", "s3://bucket/team/artifacts/")
    ('team', 'artifacts')
    """
    if not isinstance(prefix, str):
        raise ObjectLocationError(uri, f"the prefix must be a string, not {type(prefix).__name__}")
    if prefix == "":
        return ()
    if "\\" in prefix:
        raise ObjectLocationError(uri, f"the prefix {prefix!r} holds a backslash")
    if prefix.startswith("/"):
        raise ObjectLocationError(uri, f"the prefix {prefix!r} starts with '/'")
    if len(prefix.encode()) > MAX_PREFIX:
        size = len(prefix.encode())
        raise ObjectLocationError(uri, f"the prefix is {size} bytes long (at most {MAX_PREFIX})")
    segments = tuple(prefix.removesuffix("/").split("/"))
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ObjectLocationError(uri, f"the prefix {prefix!r} has an empty, '.' or '..' segment")
        if not _SEGMENT.fullmatch(segment):
            raise ObjectLocationError(
                uri,
                f"the prefix segment {segment!r} holds a character other than letters, digits "
                "and . _ ~ + = @ , -",
            )
    return segments


class VerifyingReader(io.RawIOBase):
    """Reads a stored object and checks its SHA-256 once all of it has been read.

    The check runs when ``length`` bytes have been read or the source ends, whichever
    comes first: a reader that stops early has not been checked.
    """

    def __init__(
        self,
        read: Callable[[int], bytes],
        close: Callable[[], None],
        sha256: str,
        length: int | None,
        where: str,
    ) -> None:
        super().__init__()
        self._read = read
        self._close = close
        self._sha256 = sha256
        self._length = length
        self._where = where
        self._digest = hashlib.sha256()
        self._seen = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read(len(view))
        n = len(data)
        if self._checked and n:
            raise ObjectCorruptError(self._sha256, self._where, f"it is longer than {self._seen:,} bytes")
        view[:n] = data
        self._digest.update(data)
        self._seen += n
        if not self._checked and (n == 0 or self._seen == self._length):
            self._check()
        return n

    def _check(self) -> None:
        actual = self._digest.hexdigest()
        if actual != self._sha256:
            raise ObjectCorruptError(
                self._sha256, self._where, f"its {self._seen:,} bytes hash to {actual[:12]}"
            )
        self._checked = True

    def close(self) -> None:
        if not self.closed:
            self._close()
        super().close()


def write_beside(dest: Path, fill: Callable[[io.BufferedRandom], None]) -> Path:
    """Write ``dest`` through a temporary file beside it, renamed into place once ``fill``
    returns (``fill`` may read back what it wrote); when ``fill`` raises, the temporary file is
    removed and ``dest`` left as it was."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(6)}.part"
        try:  # O_EXCL: never write through someone else's file; 0o666: the umask applies as for dest
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "w+b") as out:
            fill(out)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


class ObjectStore(abc.ABC):
    """Files stored by their SHA-256: each content once, every read checked against its hash.

    Open one with :func:`labledger.store.objects.open_objects`.
    """

    #: Where the store is (``s3://bucket/prefix`` or ``file:///folder``).
    uri: str

    @abc.abstractmethod
    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a regular file (unless its content is there already); returns ``(sha256, size)``."""

    @abc.abstractmethod
    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data`` (unless it is there already); returns ``(sha256, size)``."""

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether content with this SHA-256 is stored."""

    @abc.abstractmethod
    def open(self, sha256: str) -> io.BufferedReader:
        """A reader of the content; reading to its end raises :class:`ObjectCorruptError` if it
        does not hash to ``sha256``."""

    def get(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        """Copy the content to ``dest`` (checked, then renamed into place); returns ``dest``.

        :raises ObjectMissingError: nothing is stored under ``sha256``.
        :raises ObjectCorruptError: the stored bytes do not hash to ``sha256``; ``dest`` is untouched.
        """
        with self.open(sha256) as source:
            return write_beside(Path(dest), lambda out: shutil.copyfileobj(source, out, CHUNK))

    def __repr__(self) -> str:
        return f"<labledger {type(self).__name__} {self.uri}>"


def hash_open_file(file: io.BufferedIOBase, digest: Any = None) -> tuple[str, int]:
    """``(sha256, size)`` of what is left to read in ``file`` (fed to ``digest`` if given, which
    may hold what came before it)."""
    digest = hashlib.sha256() if digest is None else digest
    size = 0
    while block := file.read(CHUNK):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size
