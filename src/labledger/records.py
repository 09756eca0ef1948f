"""Plain records passed to hooks and returned by readers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ArtifactRecord",
    "DatasetRecord",
    "Fingerprint",
    "MetricBatch",
    "PipelineRecord",
    "RunInfo",
    "Series",
]


@dataclass(slots=True)
class Series:
    """The points of one metric key in one batch, as parallel columns.

    ``epochs`` holds ``None`` where no epoch was given.
    """

    steps: list[int] = field(default_factory=list)
    epochs: list[int | None] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(slots=True)
class MetricBatch:
    """Metric points buffered for one run, delivered together to sinks.

    :ivar run_id: the run the points belong to.
    :ivar seq: the batch's position in the run's sequence of batches (0, 1, ...).
    :ivar series: key -> :class:`Series` of the points logged since the last batch.
    """

    run_id: str
    seq: int
    series: dict[str, Series]

    def __len__(self) -> int:
        return sum(len(s) for s in self.series.values())

    def __repr__(self) -> str:  # short: a batch may hold millions of points (plugin tracing prints it)
        shown = f"seq={self.seq}, keys={len(self.series)}, points={len(self)}"
        return f"MetricBatch(run_id={self.run_id!r}, {shown})"

    def points(self) -> Iterator[tuple[str, int, int | None, float, float]]:
        """Iterate ``(key, step, epoch, timestamp, value)`` in logging order per key."""
        for key, s in self.series.items():
            yield from zip([key] * len(s), s.steps, s.epochs, s.timestamps, s.values, strict=True)


@dataclass(slots=True)
class ArtifactRecord:
    """An artifact as logged: a file or a directory stored by content.

    :ivar name: unique within its run.
    :ivar kind: one of :data:`labledger.ARTIFACT_KINDS`.
    :ivar sha256: content hash (for a directory: the hash of its manifest).
    :ivar size: bytes (for a directory: the sum of its files).
    :ivar media_type: e.g. ``image/png``; ``inode/directory`` for a directory.
    :ivar metadata: JSON-compatible dict given by the caller.
    :ivar local_path: where the content lives inside the store.
    :ivar files: for a directory, ``(relative path, sha256, size)`` per file.
    """

    name: str
    kind: str
    sha256: str
    size: int
    media_type: str
    metadata: dict[str, Any]
    local_path: str
    created_at: float
    files: list[tuple[str, str, int]] | None = None


@dataclass(slots=True)
class Fingerprint:
    """A dataset's content fingerprint (hex digest) and a JSON-compatible summary."""

    digest: str
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class DatasetRecord:
    """A dataset recorded for a run."""

    name: str
    role: str
    fingerprint: str | None
    summary: dict[str, Any]
    created_at: float


@dataclass(slots=True)
class PipelineRecord:
    """A feature pipeline recorded for a run: its structural version, structure and text."""

    name: str
    version: str
    structure: dict[str, Any]
    text: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A run about to start, as :func:`labledger.start_run` was asked for it (given to
    ``labledger_run_starting``).

    :ivar id: the run's id.
    :ivar experiment: the experiment's name.
    :ivar name: the run's name (given or generated; a taken name still gets a ``-2`` suffix).
    :ivar kind: ``offline`` or ``online``.
    :ivar hypothesis: what the run is meant to show, or ``None``.
    :ivar parent_id: the parent run's id for a child run, else ``None``.
    :ivar origin: the dotted name an integration started the run for, or ``None``.
    :ivar store: the store's location (a ``file:`` URI for a store folder).
    :ivar tags: the tags given to ``start_run``.
    :ivar params: the params given to ``start_run``, flattened with ``/``.

    >>> info.experiment, info.tags, info.params  # doctest: +SKIP
    ('digits-svm', {'team': 'vision'}, {'C': 1.0})
    """

    id: str
    experiment: str
    name: str
    kind: str
    hypothesis: str | None
    parent_id: str | None
    origin: str | None
    store: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
