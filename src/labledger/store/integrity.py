"""Reading blobs back without trusting them.

Every blob is checked against the SHA-256 it is stored under before its bytes
are handed out (streamed; a blob already checked in this process is not hashed
again while its path, size, modification time and inode stay the same). A
directory's manifest is checked too, and every path it names must stay inside
the folder it is recreated in: a relative path of plain names, no ``..``, no
absolute path, and no symlink on the way.

Problems are raised as :class:`BlobProblem` (path and what is wrong); callers
that know the artifact's name turn them into
:class:`labledger.errors.ArtifactCorruptError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["BlobProblem", "copy_verified", "hash_file", "materialize", "parse_manifest", "verify"]

_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")
_verified: dict[tuple[str, int, int, int], str] = {}  # (path, size, mtime_ns, inode) -> sha256
_lock = threading.Lock()


class BlobProblem(Exception):
    """A blob or a manifest entry is not what it should be."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{problem} ({self.path})")


def is_sha256(text: object) -> bool:
    return isinstance(text, str) and len(text) == 64 and _HEX.issuperset(text)


def hash_file(path: Path) -> tuple[str, int]:
    """``(sha256, size)`` of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _key(path: Path) -> tuple[str, int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def verify(path: Path, sha256: str) -> Path:
    """``path`` after checking that its bytes hash to ``sha256``; raises :class:`BlobProblem`."""
    key = _key(path)
    if key is None:
        raise BlobProblem(path, "the file is missing")
    if _verified.get(key) == sha256:
        return path
    try:
        found, _size = hash_file(path)
    except IsADirectoryError:
        raise BlobProblem(path, "a folder stands where the file should be") from None
    except OSError as e:
        raise BlobProblem(path, f"the file cannot be read ({e.strerror or e})") from e
    if found != sha256:
        raise BlobProblem(path, f"its content has changed (it hashes to {found[:12]})")
    with _lock:
        _verified[key] = sha256
    return path


def copy_verified(source: Path, sha256: str, target_fd: int, target: Path) -> None:
    """Copy a blob into an open file, hashing on the way; raises :class:`BlobProblem` on a mismatch."""
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as f:
            while block := f.read(_CHUNK):
                digest.update(block)
                view = memoryview(block)
                while view:
                    view = view[os.write(target_fd, view) :]
    except FileNotFoundError:
        raise BlobProblem(source, "the file is missing") from None
    found = digest.hexdigest()
    if found != sha256:
        raise BlobProblem(source, f"its content has changed (it hashes to {found[:12]})")
    key = _key(source)
    if key is not None:
        with _lock:
            _verified[key] = sha256


def safe_parts(rel: object) -> tuple[str, ...] | None:
    """The parts of a manifest path when it is a plain relative path, else ``None``."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        return None
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith("/"):
        return None
    parts = tuple(rel.split("/"))
    if any(p in ("", ".", "..") for p in parts):
        return None
    return parts


def parse_manifest(data: bytes, where: Path) -> list[tuple[str, str, int]]:
    """The ``(relative path, sha256, size)`` entries of a directory manifest, all checked."""
    try:
        doc: Any = json.loads(data)
        entries = doc["files"]
        if not isinstance(entries, list):
            raise TypeError("files is not a list")
        files = []
        for entry in entries:
            rel, sha, size = entry
            files.append((rel, sha, size))
    except (ValueError, TypeError, KeyError) as e:
        raise BlobProblem(where, f"the directory manifest cannot be read ({e})") from None
    seen: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()
    for rel, sha, size in files:
        parts = safe_parts(rel)
        if parts is None:
            raise BlobProblem(where, f"the directory manifest names the path {rel!r}, outside its folder")
        if not is_sha256(sha) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BlobProblem(where, f"the directory manifest entry {rel!r} is malformed")
        if parts in seen or parts in folders:
            raise BlobProblem(where, f"the directory manifest names {rel!r} twice")
        seen.add(parts)
        folders.update(parts[:i] for i in range(1, len(parts)))
    if seen & folders:
        raise BlobProblem(where, "the directory manifest names a file as a folder")
    return [(str(rel), str(sha), int(size)) for rel, sha, size in files]


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def _folder(root: Path, parts: tuple[str, ...], where: Path, rel: str) -> Path:
    """``root/parts`` as a real folder inside ``root`` (created when missing, never a symlink)."""
    folder = root
    for part in parts:
        folder = folder / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
        mode = os.lstat(folder).st_mode
        if not stat.S_ISDIR(mode):
            raise BlobProblem(where, f"the path {rel!r} would leave {root} (a symlink or file is on the way)")
    return folder


def materialize(
    files: list[tuple[str, str, int]], path_for: Any, dest: Path, where: Path, read_only: bool = False
) -> Path:
    """Recreate a directory at ``dest`` from checked manifest entries, checking every file's hash.

    ``path_for(sha)`` gives a blob's path. Nothing is written outside ``dest``: each
    target is resolved and refused when it would leave it, and no symlink is followed.
    ``read_only`` leaves the files read-only (the store's own cache).
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    for rel, sha, _size in files:
        parts = safe_parts(rel)
        if parts is None:  # pragma: no cover - parse_manifest refuses these
            raise BlobProblem(where, f"the directory manifest names the path {rel!r}, outside its folder")
        folder = _folder(root, parts[:-1], where, rel)
        target = folder / parts[-1]
        if not _inside(target, root):
            raise BlobProblem(where, f"the path {rel!r} would leave {root}")
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        )
        try:
            fd = os.open(target, flags, 0o644)
        except OSError as e:
            raise BlobProblem(where, f"the path {rel!r} cannot be written in {root} ({e.strerror})") from e
        try:
            copy_verified(path_for(sha), sha, fd, target)
        except BaseException:
            os.close(fd)
            target.unlink(missing_ok=True)
            raise
        os.close(fd)
        if read_only:
            os.chmod(target, 0o444)
    return dest


def matches(files: list[tuple[str, str, int]], path_for: Any, folder: Path) -> bool:
    """Whether an existing folder holds exactly these files (regular files only, hashes checked)."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return False
        want = {tuple(rel.split("/")): sha for rel, sha, _ in files}
        found: set[tuple[str, ...]] = set()
        for top, dirs, names in os.walk(folder, followlinks=False):
            base = Path(top).relative_to(folder).parts
            for d in dirs:
                if not stat.S_ISDIR(os.lstat(Path(top) / d).st_mode):
                    return False
            for name in names:
                path = Path(top) / name
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    return False
                key = (*base, name)
                if key not in want:
                    return False
                verify(path, want[key])
                found.add(key)
        return found == set(want)
    except (OSError, BlobProblem):
        return False
