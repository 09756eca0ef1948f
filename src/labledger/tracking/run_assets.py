"""Run methods that record files and objects: artifacts, datasets, pipelines, models, config.

Mixed into :class:`labledger.Run`; kept apart so ``run.py`` stays about the
logging path and the run's life.
"""

from __future__ import annotations

import mimetypes
import os
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from labledger.errors import (
    ArtifactConflictError,
    ArtifactSourceError,
    ArtifactWriteError,
    InvalidKeyError,
    InvalidValueError,
)
from labledger.hooks import manager as plugins
from labledger.hooks.manager import LabledgerWarning
from labledger.records import ArtifactRecord, DatasetRecord, Fingerprint, PipelineRecord
from labledger.store.blobs import file_kind
from labledger.store.schema import ARTIFACT_KINDS
from labledger.tracking import validate as _validate

if TYPE_CHECKING:
    from labledger.store import Store

_now = time.time


class SkippedFilesWarning(LabledgerWarning):
    """A directory artifact held entries that cannot be stored (FIFOs, sockets, dangling symlinks...)."""


class AssetsMixin:
    """Artifacts, datasets, pipelines, models and training configuration of a run."""

    id: str
    store: Store
    _params: dict[str, str]
    _assets: list[tuple[str, dict[str, Any]]]
    _datasets: list[dict[str, Any]]
    _pipelines: list[dict[str, Any]]

    def _check_open(self, action: str) -> None:  # provided by Run
        raise NotImplementedError

    def _notify(self, hook: str, **kwargs: Any) -> None:  # provided by Run
        raise NotImplementedError

    def log_params(self, params: Mapping[str, Any]) -> None:  # provided by Run
        raise NotImplementedError

    # -- artifacts and datasets ------------------------------------------

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        kind: str = "other",
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRecord:
        """Store a file or a whole directory by content (identical content is stored once).

        Only regular files and directories (and symlinks to them) can be stored: a
        FIFO, socket or device raises :class:`~labledger.errors.ArtifactSourceError`
        and is never opened. Inside a directory such entries (and dangling symlinks)
        are left out, listed in ``metadata["skipped"]`` as ``{"path", "reason"}``, and
        reported by one :class:`SkippedFilesWarning`.

        A store that cannot take the bytes (disk full, file-size limit) raises
        :class:`~labledger.errors.ArtifactWriteError` naming the artifact and the
        space it needs; no partial file is left behind and the run stays usable.
        Unlike metrics, an artifact is not retried in the background: its source
        file may be gone by then, so the caller decides (free space, log it again).

        :param path: file or directory to copy into the store.
        :param kind: one of ``model``, ``checkpoint``, ``plot``, ``predictions``,
            ``feature_importance``, ``table``, ``dataset``, ``code``, ``other``.
        :param name: unique within the run (default: the file name).
        :param metadata: JSON-compatible details (epoch, score, ...).

        >>> run.log_artifact("model.joblib", kind="model")  # doctest: +SKIP
        """
        self._check_open("log an artifact")
        source = Path(path)
        if not source.exists():
            broken = " (a dangling symlink)" if source.is_symlink() else ""
            raise FileNotFoundError(f"cannot log artifact: {source} does not exist{broken}")
        if kind not in ARTIFACT_KINDS:
            raise InvalidValueError("kind", kind, f"choose one of {', '.join(ARTIFACT_KINDS)}")
        art_name = _artifact_name(name if name is not None else source.name)
        meta = _validate.json_value("metadata", dict(metadata or {}))
        sha, size, local, files, skipped = self._put_blobs(source, art_name)
        if skipped:
            meta["skipped" if "skipped" not in meta else "skipped_by_labledger"] = skipped
        existing = self.store.artifact_sha(self.id, art_name)
        if existing is not None and existing != sha:
            raise ArtifactConflictError(self.id, art_name, existing, sha)
        if files is not None:
            media_type = "inode/directory"
        else:
            media_type = mimetypes.guess_type(art_name)[0] or "application/octet-stream"
        record = ArtifactRecord(
            name=art_name,
            kind=kind,
            sha256=sha,
            size=size,
            media_type=media_type,
            metadata=meta,
            local_path=str(local),
            created_at=_now(),
            files=files,
        )
        if existing is None:
            self._notify("labledger_artifact_logged", artifact=record)
            self._assets.append((kind, meta))
        if skipped:
            shown = ", ".join(f"{s['path']} ({s['reason']})" for s in skipped[:5])
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            plugins.warn_once(
                ("artifact-skipped", self.id, art_name),
                f"artifact {art_name!r} of run {self.id}: {len(skipped)} entries of {source} are not "
                f"regular files or directories and were not stored: {shown}{more}. They are listed "
                "in the artifact's metadata['skipped'].",
                SkippedFilesWarning,
            )
        return record

    def _put_blobs(
        self, source: Path, name: str
    ) -> tuple[str, int, Path, list[tuple[str, str, int]] | None, list[dict[str, str]]]:
        """Copy a file or directory into the blob area: sha, size, local path, files, skipped entries."""
        blobs = self.store.blobs
        mode = os.stat(source).st_mode
        skipped: list[dict[str, str]] = []
        try:
            if stat.S_ISDIR(mode):
                sha, size, files = blobs.put_directory(source, skipped=skipped)
                return sha, size, blobs.path_for(sha), files, skipped
            if not stat.S_ISREG(mode):
                raise ArtifactSourceError(str(source), file_kind(mode))
            sha, size = blobs.put_file(source)
        except ArtifactWriteError as e:
            raise ArtifactWriteError(e.path, name, str(source), e.needed, e.free, e.reason) from e
        return sha, size, blobs.path_for(sha), None, skipped

    def _store_code_bytes(self, data: bytes, name: str, metadata: Mapping[str, Any]) -> None:
        """Store bytes as a ``code`` artifact, even after the run ended (the lineage capture's diff)."""
        sha, size = self.store.blobs.put_bytes(data)
        if self.store.artifact_sha(self.id, name) is not None:
            return
        record = ArtifactRecord(
            name=name,
            kind="code",
            sha256=sha,
            size=size,
            media_type="text/x-diff",
            metadata=_validate.json_value("metadata", dict(metadata)),
            local_path=str(self.store.blobs.path_for(sha)),
            created_at=_now(),
        )
        self._notify("labledger_artifact_logged", artifact=record)
        self._assets.append(("code", record.metadata))

    def log_dataset(
        self,
        name: str,
        data: Any = None,
        *,
        role: str = "train",
        fingerprint: str | None = None,
        **summary: Any,
    ) -> str:
        """Record a dataset the run used, by content fingerprint; returns the fingerprint.

        With ``data``, the ``labledger_fingerprint_dataset`` hook computes the
        fingerprint; with only ``fingerprint=``, that value is recorded. Extra
        keyword arguments are stored in the dataset's summary.

        >>> run.log_dataset("digits", fingerprint="9f2c…", role="train", rows=1437)  # doctest: +SKIP
        """
        self._check_open("log a dataset")
        _validate.check_key(name, "dataset name")
        _validate.check_key(role, "dataset role")
        info: dict[str, Any] = {}
        if data is not None and fingerprint is None:
            result = plugins.call_first("labledger_fingerprint_dataset", data=data)
            if not isinstance(result, Fingerprint):
                raise InvalidValueError(
                    name,
                    data,
                    f"no plugin can fingerprint a {type(data).__module__}.{type(data).__qualname__}; "
                    "pass fingerprint= or register a labledger_fingerprint_dataset hook",
                )
            fingerprint, info = result.digest, dict(result.summary)
        if fingerprint is None:
            raise InvalidValueError(name, None, "give data= or fingerprint=")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise InvalidValueError(name, fingerprint, "a fingerprint is a non-empty str")
        info.update(_validate.json_value("summary", summary))
        record = DatasetRecord(name=name, role=role, fingerprint=fingerprint, summary=info, created_at=_now())
        self._notify("labledger_dataset_logged", dataset=record)
        self._datasets.append({"name": name, "role": role, "fingerprint": fingerprint})
        return fingerprint

    def log_pipeline(self, estimator: Any, name: str = "pipeline") -> str:
        """Record a feature pipeline (or any estimator) by structure; returns its version.

        The version is a hash of the step names, classes, library versions and
        parameters, independent of fitted state: two runs with the same pipeline
        get the same version.

        >>> version = run.log_pipeline(make_pipeline(StandardScaler(), SVC()))  # doctest: +SKIP
        """
        from labledger.lineage.pipeline import describe, pipeline_version, text

        self._check_open("log a pipeline")
        _validate.check_key(name, "pipeline name")
        structure = describe(estimator)
        version = pipeline_version(estimator)
        record = PipelineRecord(
            name=name, version=version, structure=structure, text=text(estimator), created_at=_now()
        )
        self._notify("labledger_pipeline_logged", pipeline=record)
        self._pipelines.append({"name": name, "version": version})
        return version

    def log_model(
        self,
        model: Any,
        name: str = "model",
        *,
        path: str | os.PathLike[str] | None = None,
        kind: str = "model",
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRecord:
        """Store a model as an artifact and record its type (fully qualified class name).

        Without ``path`` the object is serialized with joblib (pickle when joblib
        is missing); with ``path`` that file or directory is stored as it is.
        The class is recorded in the artifact's metadata (``class``) and, once per
        run, as the param ``model/class``.

        >>> run.log_model(fitted_pipeline)                       # doctest: +SKIP
        >>> run.log_model(net, path="net.pt", name="net.pt")     # doctest: +SKIP
        """
        from labledger.lineage.pipeline import qualified_name

        self._check_open("log a model")
        class_name = qualified_name(model)
        meta: dict[str, Any] = {"class": class_name, **dict(metadata or {})}
        if path is not None:
            meta.setdefault("serializer", "file")
            record = self.log_artifact(path, kind=kind, name=name, metadata=meta)
        else:
            with tempfile.TemporaryDirectory(prefix="labledger-model-") as tmp:
                target = Path(tmp) / name
                try:
                    import joblib

                    joblib.dump(model, target)
                    meta.setdefault("serializer", "joblib")
                except ImportError:
                    import pickle

                    target.write_bytes(pickle.dumps(model))
                    meta.setdefault("serializer", "pickle")
                record = self.log_artifact(target, kind=kind, name=name, metadata=meta)
        if "model/class" not in self._params:
            self.log_params({"model/class": class_name})
        return record

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Log the training configuration (epochs, batch size, CV scheme, ...) as ``config/*`` params.

        >>> run.log_config({"epochs": 10, "batch_size": 64})  # doctest: +SKIP
        """
        self.log_params({"config": dict(config)})


def _artifact_name(name: Any) -> str:
    _validate.check_key(name, "artifact name")
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts:
        raise InvalidKeyError(name, "must be a relative name without '..' parts", "artifact name")
    return str(name)
