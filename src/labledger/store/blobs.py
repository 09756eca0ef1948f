"""Content-addressed file storage under ``<store>/artifacts/ab/abcdef…``.

Identical content is stored once. Files are written to a temporary name in
the same folder and renamed into place, so a reader never sees half a file
and a crash never leaves a corrupt blob under its final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["BlobStore"]

_CHUNK = 1 << 20


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
        """Copy ``source`` in by content; returns ``(sha256, size)``."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                while block := src.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
            return self._settle(Path(tmp_name), digest.hexdigest()), size
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; returns ``(sha256, size)``."""
        sha = hashlib.sha256(data).hexdigest()
        if self.path_for(sha).exists():
            return sha, len(data)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return self._settle(Path(tmp_name), sha), len(data)

    def _settle(self, tmp: Path, sha: str) -> str:
        final = self.path_for(sha)
        if final.exists():
            tmp.unlink()
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        return sha

    def put_directory(self, source: Path) -> tuple[str, int, list[tuple[str, str, int]]]:
        """Store every file below ``source`` and a JSON manifest of them.

        :returns: ``(manifest sha256, total size, [(relative path, sha256, size), ...])``.
        """
        files: list[tuple[str, str, int]] = []
        for path in sorted(source.rglob("*")):
            if path.is_file():
                sha, size = self.put_file(path)
                files.append((path.relative_to(source).as_posix(), sha, size))
        manifest = json.dumps({"files": files}, sort_keys=True).encode()
        sha, _ = self.put_bytes(manifest)
        return sha, sum(f[2] for f in files), files

    def read_manifest(self, sha256: str) -> list[tuple[str, str, int]]:
        """The files of a directory blob."""
        data = json.loads(self.path_for(sha256).read_bytes())
        return [(str(rel), str(sha), int(size)) for rel, sha, size in data["files"]]

    def materialize_directory(self, sha256: str, dest: Path) -> Path:
        """Recreate a stored directory at ``dest`` (files copied, not linked)."""
        for rel, sha, _size in self.read_manifest(sha256):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.path_for(sha), target)
        dest.mkdir(parents=True, exist_ok=True)
        return dest
