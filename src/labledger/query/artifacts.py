"""Stored artifacts as read back: :class:`ArtifactView`.

Bytes are checked before they are handed out: ``path``, ``open()``, ``files``
and ``download()`` verify the SHA-256 the artifact was logged with (once per
process while the file is unchanged) and raise
:class:`labledger.errors.ArtifactCorruptError` for a changed, truncated or
missing blob. A directory is recreated from its checked manifest, and no path
from it may leave the folder it is recreated in.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from labledger.errors import ArtifactCorruptError
from labledger.store.integrity import BlobProblem, copy_verified, is_sha256, matches, materialize, verify

if TYPE_CHECKING:
    from labledger.store.backend import Backend

__all__ = ["ArtifactView"]

_private: dict[tuple[str, str], Path] = {}  # where a read-only store's directories were recreated
_lock = threading.Lock()


@dataclass(frozen=True)
class ArtifactView:
    """A stored artifact. ``path`` is read-only content inside the store, checked against ``sha256``.

    >>> art = ll.get_run("digits-svm/swift-otter-3").artifact("model.joblib")  # doctest: +SKIP
    >>> with art.open() as f:                                                  # doctest: +SKIP
    ...     model = joblib.load(f)
    """

    name: str
    kind: str
    sha256: str
    size: int
    media_type: str
    metadata: dict[str, Any]
    created_at: float
    store: Backend

    @property
    def is_dir(self) -> bool:
        return self.media_type == "inode/directory"

    def _corrupt(self, e: BlobProblem) -> ArtifactCorruptError:
        return ArtifactCorruptError(self.name, self.sha256, e.path, e.problem)

    def _blob(self) -> Path:
        if not is_sha256(self.sha256):
            raise ArtifactCorruptError(
                self.name,
                str(self.sha256),
                self.store.location,
                "its recorded sha256 is not a hex digest",
            )
        return self.store.blobs.path_for(self.sha256)

    @property
    def path(self) -> Path:
        """The file inside the store, checked; for a directory, a checked copy in the store's cache.

        :raises ArtifactCorruptError: the bytes are not what was logged.
        """
        if not self.is_dir:
            try:
                return verify(self._blob(), self.sha256)
            except BlobProblem as e:
                raise self._corrupt(e) from None
        return self._directory()

    @property
    def files(self) -> list[tuple[str, str, int]]:
        """For a directory: ``(relative path, sha256, size)`` of every file (from its checked manifest)."""
        if not self.is_dir:
            return []
        self._blob()
        try:
            return self.store.blobs.read_manifest(self.sha256)
        except BlobProblem as e:
            raise self._corrupt(e) from None

    def open(self, mode: str = "rb") -> IO[Any]:
        """Open a file artifact for reading (``rb`` or ``r``), after checking its bytes."""
        if mode not in ("rb", "r"):
            raise ValueError("artifacts are read-only: open them with 'rb' or 'r'")
        if self.is_dir:
            raise IsADirectoryError(f"artifact {self.name!r} is a directory; use .path or .files")
        return open(self.path, mode)

    def download(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the artifact (file or directory) to ``dest``, checking every byte on the way.

        :raises ArtifactCorruptError: the bytes are not what was logged, or a path of a
            directory's manifest would leave ``dest`` (nothing is written outside it).
        """
        target = Path(dest)
        if self.is_dir:
            files = self.files
            try:
                return materialize(files, self.store.blobs.path_for, target, self._blob())
            except BlobProblem as e:
                raise self._corrupt(e) from None
        blob = self._blob()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            copy_verified(blob, self.sha256, fd, target)
        except BlobProblem as e:
            os.close(fd)
            target.unlink(missing_ok=True)
            raise self._corrupt(e) from None
        except BaseException:
            os.close(fd)
            target.unlink(missing_ok=True)
            raise
        os.close(fd)
        return target

    def _directory(self) -> Path:
        files = self.files
        cache = self.store.path / "cache" / "dirs"
        dest = cache / self.sha256
        try:
            self._check_cache(cache)
            if os.path.lexists(dest):
                if matches(files, self.store.blobs.path_for, dest):  # hashes cached per file
                    return dest
                _remove(dest)  # tampered with (or half-built): recreate it
            cache.mkdir(parents=True, exist_ok=True)
            self._check_cache(cache)
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.sha256}.", dir=cache))
        except OSError:
            return self._private_copy(files)  # a read-only store: recreate it in a private folder
        try:
            self.store.blobs.materialize_directory(self.sha256, tmp, read_only=True)
            os.rename(tmp, dest)
        except BlobProblem as e:
            _remove(tmp)
            raise self._corrupt(e) from None
        except OSError:
            _remove(tmp)  # another process put it there first
            if not matches(files, self.store.blobs.path_for, dest):
                return self._private_copy(files)
        return dest

    def _check_cache(self, cache: Path) -> None:
        """Refuse a cache folder (or its parent) that leads outside the store."""
        root = self.store.path.resolve()
        for folder in (cache.parent, cache):
            if os.path.lexists(folder) and not folder.resolve().is_relative_to(root):
                raise ArtifactCorruptError(
                    self.name, self.sha256, str(folder), "the store's cache folder leads outside the store"
                )

    def _private_copy(self, files: list[tuple[str, str, int]]) -> Path:
        key = (str(self.store.path), self.sha256)
        with _lock:
            known = _private.get(key)
            if known is not None and matches(files, self.store.blobs.path_for, known):
                return known
            folder = Path(tempfile.mkdtemp(prefix="labledger-artifact-"))
            atexit.register(_remove, folder)
            try:
                self.store.blobs.materialize_directory(self.sha256, folder / self.sha256, read_only=True)
            except BlobProblem as e:
                raise self._corrupt(e) from None
            _private[key] = folder / self.sha256
            return _private[key]


def _remove(path: Path) -> None:
    """Remove a file, symlink or folder (never following a symlink)."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass
