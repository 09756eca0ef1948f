"""Stored artifacts as read back: :class:`ArtifactView`."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from labledger.store import Store

__all__ = ["ArtifactView"]


@dataclass(frozen=True)
class ArtifactView:
    """A stored artifact. ``path`` is read-only content inside the store."""

    name: str
    kind: str
    sha256: str
    size: int
    media_type: str
    metadata: dict[str, Any]
    created_at: float
    store: Store

    @property
    def is_dir(self) -> bool:
        return self.media_type == "inode/directory"

    @property
    def path(self) -> Path:
        """The file inside the store; for a directory, a materialized copy in the store's cache."""
        if not self.is_dir:
            return self.store.blobs.path_for(self.sha256)
        dest = self.store.path / "cache" / "dirs" / self.sha256
        if not dest.exists():
            tmp = dest.with_name(f".{self.sha256}.{os.getpid()}")
            self.store.blobs.materialize_directory(self.sha256, tmp)
            try:
                os.replace(tmp, dest)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
        return dest

    @property
    def files(self) -> list[tuple[str, str, int]]:
        """For a directory: ``(relative path, sha256, size)`` of every file."""
        return self.store.blobs.read_manifest(self.sha256) if self.is_dir else []

    def open(self, mode: str = "rb") -> IO[Any]:
        """Open a file artifact for reading (``rb`` or ``r``)."""
        if mode not in ("rb", "r"):
            raise ValueError("artifacts are read-only: open them with 'rb' or 'r'")
        if self.is_dir:
            raise IsADirectoryError(f"artifact {self.name!r} is a directory; use .path or .files")
        return open(self.path, mode)

    def download(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the artifact (file or directory) to ``dest``."""
        target = Path(dest)
        if self.is_dir:
            return self.store.blobs.materialize_directory(self.sha256, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, target)
        return target
