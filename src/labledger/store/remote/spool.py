"""Records waiting on disk for a labledger server that cannot be reached, in order.

Each process spools into a folder of its own, ``<cache>/spool/<pid>-<random>/``, holding an
exclusive ``flock`` on its ``owner.lock`` for as long as it lives: a folder whose lock can be
taken belongs to a process that is gone, and a later process (or ``labledger sync --spool``)
sends what it holds. A record is one file, ``<number>.rec`` (a JSON header line, then the
body), written to a temporary name, flushed to disk (``fsync``) and renamed into place
before :meth:`SpoolFolder.append` returns: an acknowledged record survives the client being
killed. Records are sent in number order and removed once the server took them.

>>> folder = SpoolFolder.create(Path("/tmp/cache/spool"))  # doctest: +SKIP
>>> folder.append({"kind": "call", "method": "add_note"}, b'{"args": ["r1", "hi", 1.0]}')  # doctest: +SKIP
>>> [r.meta["method"] for r in folder.records()]  # doctest: +SKIP
['add_note']
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labledger.errors import StoreError
from labledger.store.remote.errors import SpoolFullError

__all__ = ["LOCK_NAME", "SERVER_FILE", "Record", "SpoolFolder", "orphaned_folders", "remember_server"]

LOCK_NAME = "owner.lock"
#: The file beside ``spool/`` naming the server its records are for.
SERVER_FILE = "server.json"
_SUFFIX = ".rec"
_REJECTED = "rejected"


@dataclass
class Record:
    """One spooled record: its file, its header and its body."""

    path: Path
    meta: dict[str, Any]
    body: bytes


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolFolder:
    """One process's spool folder, owned (locked) by the process using it.

    :param limit: bytes of records the folder holds at most (``None``: no bound).
    """

    def __init__(self, folder: Path, lock_fd: int, limit: int | None = None) -> None:
        self.folder = folder
        self.limit = limit
        self._lock_fd: int | None = lock_fd
        self._lock = threading.Lock()
        numbers = [int(p.stem) for p in self._files()]
        self._next = max(numbers, default=0) + 1
        self.size = sum(p.stat().st_size for p in self._files())

    def __repr__(self) -> str:
        return f"<labledger SpoolFolder {self.folder}>"

    @classmethod
    def create(cls, root: Path, limit: int | None = None) -> SpoolFolder:
        """A new folder for this process under ``root``, locked.

        :raises StoreError: the folder cannot be made.
        """
        folder = root / f"{os.getpid()}-{secrets.token_hex(4)}"
        try:
            folder.mkdir(parents=True)
            fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as e:
            raise StoreError(str(root), f"cannot make a spool folder ({e.strerror or e})") from e
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(folder, fd, limit)

    @classmethod
    def adopt(cls, folder: Path) -> SpoolFolder | None:
        """The folder of a process that is gone, now locked by this one (``None``: its owner
        lives, or another process adopted it first)."""
        try:
            fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        if not folder.is_dir():  # emptied and removed by its adopter meanwhile
            os.close(fd)
            return None
        return cls(folder, fd)

    def _files(self) -> list[Path]:
        try:
            names = [
                n for n in os.listdir(self.folder) if n.endswith(_SUFFIX) and n[: -len(_SUFFIX)].isdigit()
            ]
        except FileNotFoundError:
            return []
        return [self.folder / n for n in sorted(names, key=lambda n: int(n[: -len(_SUFFIX)]))]

    def __len__(self) -> int:
        return len(self._files())

    def append(self, meta: dict[str, Any], body: bytes) -> None:
        """Write a record durably (fsynced, renamed into place, folder fsynced).

        :raises SpoolFullError: it would take the folder past its limit.
        :raises StoreError: the disk refused it.
        """
        header = json.dumps(meta, separators=(",", ":")).encode() + b"\n"
        size = len(header) + len(body)
        with self._lock:
            if self.limit is not None and self.size + size > self.limit:
                raise SpoolFullError(str(self.folder), self.limit)
            number = self._next
            final = self.folder / f"{number:016d}{_SUFFIX}"
            tmp = self.folder / f".{number:016d}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
                try:
                    view = memoryview(header + body)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, final)
                _fsync_dir(self.folder)
            except OSError as e:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise StoreError(str(self.folder), f"cannot spool a record ({e.strerror or e})") from e
            self._next = number + 1
            self.size += size

    def records(self) -> Iterator[Record]:
        """The records in order (read one at a time; a file removed meanwhile is skipped)."""
        for path in self._files():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            head, _, body = data.partition(b"\n")
            try:
                meta = json.loads(head)
            except ValueError:
                meta = {"kind": "damaged"}
            yield Record(path, meta if isinstance(meta, dict) else {"kind": "damaged"}, body)

    def remove(self, record: Record) -> None:
        """Forget a record the server took."""
        try:
            size = record.path.stat().st_size
            record.path.unlink()
        except FileNotFoundError:
            return
        with self._lock:
            self.size = max(0, self.size - size)

    def reject(self, record: Record) -> Path:
        """Move a record the server refused for good to ``rejected/``; returns where it went."""
        target = self.folder / _REJECTED
        target.mkdir(exist_ok=True)
        dest = target / record.path.name
        with contextlib.suppress(FileNotFoundError):
            size = record.path.stat().st_size
            os.replace(record.path, dest)
            with self._lock:
                self.size = max(0, self.size - size)
        return dest

    def has_rejected(self) -> bool:
        return (self.folder / _REJECTED).is_dir()

    def close(self, remove_if_empty: bool = True) -> None:
        """Let go of the folder (removed when it holds nothing, rejected records included)."""
        if remove_if_empty and not self._files() and not self.has_rejected():
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None

    def forget_lock(self) -> None:
        """In a forked child: close the inherited lock descriptor without touching the parent's lock."""
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None


def orphaned_folders(root: Path) -> list[Path]:
    """Spool folders under ``root`` holding records (their owners may or may not live), oldest first."""
    try:
        entries = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    folders = []
    for entry in entries:
        with contextlib.suppress(OSError):
            if any(n.endswith(_SUFFIX) for n in os.listdir(entry.path)):
                folders.append((entry.stat().st_mtime, Path(entry.path)))
    return [p for _, p in sorted(folders)]


def remember_server(cache: Path, url: str) -> None:
    """Write ``<cache>/server.json``, naming the server of the cache's spool (``sync --spool`` reads it)."""
    path = cache / SERVER_FILE
    if path.exists():
        return
    with contextlib.suppress(OSError):
        tmp = cache / f".{SERVER_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps({"url": url}))
        os.replace(tmp, path)
