"""Content-addressed file storage under ``<store>/artifacts/ab/abcdef…``.

Identical content is stored once. Files are written to a temporary name in
the same folder and renamed into place, so a reader never sees half a file
and a crash never leaves a corrupt blob under its final name.

Temporary files are named ``.incoming-<pid>-<host>-<random>``. A failed write
removes its own; those of a writer that was killed (``SIGKILL``, power loss)
are removed by the first process that writes blobs to the store afterwards:
when their writer's pid is gone on this host, or when they have not changed
for :data:`STALE_SECONDS`.

Only regular files are read (symlinks to them included): a FIFO, socket or
device is never opened, so logging one can neither block nor read a stream.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from labledger.errors import ArtifactSourceError, ArtifactWriteError

__all__ = ["STALE_SECONDS", "TEMP_PREFIX", "BlobStore"]

_CHUNK = 1 << 20
TEMP_PREFIX = ".incoming-"
#: A temporary file unchanged for this long is left over, whoever wrote it.
STALE_SECONDS = 3600.0
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_swept: set[tuple[int, Path]] = set()
_swept_lock = threading.Lock()


class BlobStore:
    """Files stored by their SHA-256 under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this hash lives (whether or not it exists)."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:]

    def put_file(self, source: Path) -> tuple[str, int]:
        """Copy ``source`` in by content; returns ``(sha256, size)``.

        :raises ArtifactSourceError: ``source`` is not a regular file (nor a symlink to one).
        :raises ArtifactWriteError: the store could not take it (disk full, file-size limit...).
        """
        src_fd = _open_regular(source)
        with os.fdopen(src_fd, "rb") as src:
            needed = os.fstat(src.fileno()).st_size
            fd, tmp = self._temp(source, needed)
            digest = hashlib.sha256()
            size = 0
            try:
                try:
                    while block := src.read(_CHUNK):
                        digest.update(block)
                        self._write(fd, tmp, block, source, max(needed, size + len(block)))
                        size += len(block)
                finally:
                    os.close(fd)
                return self._settle(tmp, digest.hexdigest(), source, size), size
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; returns ``(sha256, size)``.

        :raises ArtifactWriteError: the store could not take it.
        """
        sha = hashlib.sha256(data).hexdigest()
        if self.path_for(sha).exists():
            with contextlib.suppress(OSError):  # referenced anew: not an orphan for `fsck --repair`
                os.utime(self.path_for(sha))
            return sha, len(data)
        fd, tmp = self._temp(None, len(data))
        try:
            try:
                self._write(fd, tmp, data, None, len(data))
            finally:
                os.close(fd)
            return self._settle(tmp, sha, None, len(data)), len(data)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _temp(self, source: Path | None, needed: int) -> tuple[int, Path]:
        """A new temporary file in the blob folder: ``(fd, path)``."""
        self._sweep_once()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-{_HOST}-", dir=self.root)
        except OSError as e:
            raise self._write_error(source, needed, e) from e
        return fd, Path(name)

    def _write(self, fd: int, tmp: Path, data: bytes, source: Path | None, needed: int) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as e:
            raise self._write_error(source, needed, e) from e

    def _write_error(self, source: Path | None, needed: int, error: OSError) -> ArtifactWriteError:
        try:
            free: int | None = shutil.disk_usage(self.root if self.root.exists() else self.root.parent).free
        except OSError:
            free = None
        reason = error.strerror or str(error)
        if error.errno == errno.EFBIG:
            reason += " (the process's file-size limit, `ulimit -f`, is below the artifact's size)"
        shown = str(source) if source is not None else "bytes"
        return ArtifactWriteError(str(self.root), Path(shown).name, shown, needed, free, reason)

    def _settle(self, tmp: Path, sha: str, source: Path | None = None, size: int = 0) -> str:
        final = self.path_for(sha)
        if final.exists():
            tmp.unlink()
            with contextlib.suppress(OSError):  # referenced anew: not an orphan for `fsck --repair`
                os.utime(final)
            return sha
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        except OSError as e:
            raise self._write_error(source, size, e) from e
        return sha

    def _sweep_once(self) -> None:
        key = (os.getpid(), self.root)
        with _swept_lock:
            if key in _swept:
                return
            _swept.add(key)
        self.remove_stale_temp_files()

    def remove_stale_temp_files(self, now: float | None = None) -> list[Path]:
        """Remove temporary files whose writer is gone (this host) or that are over an hour old.

        :returns: the files removed.
        """
        now = time.time() if now is None else now
        removed: list[Path] = []
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return removed
        for entry in entries:
            if not entry.name.startswith(TEMP_PREFIX):
                continue
            try:
                if _stale(entry.name, entry.stat(follow_symlinks=False).st_mtime, now):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                continue  # gone already, or not ours to remove
        return removed

    def put_directory(
        self, source: Path, skipped: list[dict[str, str]] | None = None
    ) -> tuple[str, int, list[tuple[str, str, int]]]:
        """Store every regular file below ``source`` and a JSON manifest of them.

        Symlinks to files and directories are followed (a loop is not). FIFOs,
        sockets, devices and dangling symlinks are not stored: each is appended
        to ``skipped`` as ``{"path": relative path, "reason": ...}``.

        :returns: ``(manifest sha256, total size, [(relative path, sha256, size), ...])``.
        :raises ArtifactWriteError: the store could not take a file; ``needed`` is the whole directory's size.
        """
        found, left_out = _scan(source)
        needed = sum(size for _, _, size in found)
        files: list[tuple[str, str, int]] = []
        for rel, path, _ in found:
            try:
                sha, size = self.put_file(path)
            except ArtifactSourceError as e:  # replaced by something else since the scan
                left_out.append({"path": rel, "reason": e.file_type})
                continue
            except ArtifactWriteError as e:
                raise ArtifactWriteError(e.path, source.name, str(source), needed, e.free, e.reason) from e
            files.append((rel, sha, size))
        manifest = json.dumps({"files": files}, sort_keys=True).encode()
        sha, _ = self.put_bytes(manifest)
        if skipped is not None:
            skipped.extend(sorted(left_out, key=lambda s: s["path"]))
        return sha, sum(f[2] for f in files), files

    def read_manifest(self, sha256: str) -> list[tuple[str, str, int]]:
        """The files of a directory blob, checked (its hash, and every path stays inside its folder).

        :raises labledger.store.integrity.BlobProblem: the manifest is missing, changed or malformed.
        """
        from labledger.store.integrity import BlobProblem, parse_manifest

        path = self.path_for(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobProblem(path, "the directory manifest is missing") from None
        except OSError as e:
            raise BlobProblem(path, f"the directory manifest cannot be read ({e.strerror or e})") from e
        if hashlib.sha256(data).hexdigest() != sha256:
            raise BlobProblem(path, "the directory manifest has changed")
        return parse_manifest(data, path)

    def materialize_directory(self, sha256: str, dest: Path, read_only: bool = False) -> Path:
        """Recreate a stored directory at ``dest`` (files copied and checked, never written outside it).

        :raises labledger.store.integrity.BlobProblem: a file or the manifest is damaged, or a
            path would leave ``dest``.
        """
        from labledger.store.integrity import materialize

        files = self.read_manifest(sha256)
        return materialize(files, self.path_for, dest, self.path_for(sha256), read_only=read_only)


# -- reading sources and recognising leftovers (write side) --------------------

_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def file_kind(mode: int) -> str:
    """``regular file``, ``directory``, ``fifo``, ``socket``, ``character device``, ``block device``."""
    if stat.S_ISREG(mode):
        return "regular file"
    return next((name for test, name in _KINDS if test(mode)), "special file")


def _open_regular(path: Path) -> int:
    """A read-only descriptor of ``path`` if it is a regular file; never blocks on a FIFO."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise ArtifactSourceError(str(path), file_kind(mode))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd).st_mode  # it may have been replaced between stat and open
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ArtifactSourceError(str(path), file_kind(mode))
    return fd


def _scan(top: Path) -> tuple[list[tuple[str, Path, int]], list[dict[str, str]]]:
    """Regular files below ``top`` in path order ``(relative path, path, size)``, and what was left out."""
    found: list[tuple[tuple[str, ...], Path, int]] = []
    skipped: list[dict[str, str]] = []
    root = os.stat(top)
    pending: list[tuple[tuple[str, ...], Path, frozenset[tuple[int, int]]]] = [
        ((), top, frozenset({(root.st_dev, root.st_ino)}))
    ]
    while pending:
        parts, folder, ancestors = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            skipped.append({"path": "/".join(parts) or ".", "reason": f"unreadable directory ({e.strerror})"})
            continue
        for entry in entries:
            rel = (*parts, entry.name)
            info: Any
            try:
                info = os.stat(entry.path)
            except FileNotFoundError:
                if entry.is_symlink():
                    skipped.append({"path": "/".join(rel), "reason": "dangling symlink"})
                continue  # removed while the folder was read
            except OSError as e:
                reason = "symlink loop" if e.errno == errno.ELOOP else f"unreadable ({e.strerror})"
                skipped.append({"path": "/".join(rel), "reason": reason})
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((rel, Path(entry.path), info.st_size))
            elif stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    skipped.append({"path": "/".join(rel), "reason": "symlink loop"})
                else:
                    pending.append((rel, Path(entry.path), ancestors | {key}))
            else:
                skipped.append({"path": "/".join(rel), "reason": file_kind(info.st_mode)})
    found.sort(key=lambda f: f[0])
    return [("/".join(parts), path, size) for parts, path, size in found], skipped


def _stale(name: str, mtime: float, now: float) -> bool:
    """Whether a temporary file was left by a dead writer (pid gone, same host) or is over an hour old."""
    if now - mtime > STALE_SECONDS:
        return True
    pid, _, rest = name[len(TEMP_PREFIX) :].partition("-")
    host = rest.partition("-")[0]
    if not pid.isdigit() or host != _HOST or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (not ours to signal)
    return False
