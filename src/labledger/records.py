"""Plain records passed to hooks and returned by readers.

Each record is a small class with slots, keyword or positional construction,
equality and a repr over its fields (as a dataclass has them; written out,
since a dataclass costs a compilation per method when labledger starts).
"""

from __future__ import annotations

from collections.abc import Iterator
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


class _Record:
    """Equality and repr over the fields named in ``__match_args__``, in that order."""

    __slots__ = ()
    __match_args__: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{self.__class__.__qualname__}({shown})"


class Series(_Record):
    """The points of one metric key in one batch, as parallel columns (each a new list when not given).

    ``epochs`` holds ``None`` where no epoch was given.
    """

    __slots__ = __match_args__ = ("steps", "epochs", "timestamps", "values")
    steps: list[int]
    epochs: list[int | None]
    timestamps: list[float]
    values: list[float]

    def __init__(
        self,
        steps: list[int] | None = None,
        epochs: list[int | None] | None = None,
        timestamps: list[float] | None = None,
        values: list[float] | None = None,
    ) -> None:
        self.steps = [] if steps is None else steps
        self.epochs = [] if epochs is None else epochs
        self.timestamps = [] if timestamps is None else timestamps
        self.values = [] if values is None else values

    def __len__(self) -> int:
        return len(self.values)


class MetricBatch(_Record):
    """Metric points buffered for one run, delivered together to sinks.

    :ivar run_id: the run the points belong to.
    :ivar seq: the batch's position in the run's sequence of batches (0, 1, ...).
    :ivar series: key -> :class:`Series` of the points logged since the last batch.
    """

    __slots__ = __match_args__ = ("run_id", "seq", "series")
    run_id: str
    seq: int
    series: dict[str, Series]

    def __init__(self, run_id: str, seq: int, series: dict[str, Series]) -> None:
        self.run_id = run_id
        self.seq = seq
        self.series = series

    def __len__(self) -> int:
        return sum(len(s) for s in self.series.values())

    def __repr__(self) -> str:  # short: a batch may hold millions of points (plugin tracing prints it)
        shown = f"seq={self.seq}, keys={len(self.series)}, points={len(self)}"
        return f"MetricBatch(run_id={self.run_id!r}, {shown})"

    def points(self) -> Iterator[tuple[str, int, int | None, float, float]]:
        """Iterate ``(key, step, epoch, timestamp, value)`` in logging order per key."""
        for key, s in self.series.items():
            yield from zip([key] * len(s), s.steps, s.epochs, s.timestamps, s.values, strict=True)


class ArtifactRecord(_Record):
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

    __slots__ = __match_args__ = (
        "name",
        "kind",
        "sha256",
        "size",
        "media_type",
        "metadata",
        "local_path",
        "created_at",
        "files",
    )
    name: str
    kind: str
    sha256: str
    size: int
    media_type: str
    metadata: dict[str, Any]
    local_path: str
    created_at: float
    files: list[tuple[str, str, int]] | None

    def __init__(
        self,
        name: str,
        kind: str,
        sha256: str,
        size: int,
        media_type: str,
        metadata: dict[str, Any],
        local_path: str,
        created_at: float,
        files: list[tuple[str, str, int]] | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.sha256 = sha256
        self.size = size
        self.media_type = media_type
        self.metadata = metadata
        self.local_path = local_path
        self.created_at = created_at
        self.files = files


class Fingerprint(_Record):
    """A dataset's content fingerprint (hex digest) and a JSON-compatible summary (new when not given)."""

    __slots__ = __match_args__ = ("digest", "summary")
    digest: str
    summary: dict[str, Any]

    def __init__(self, digest: str, summary: dict[str, Any] | None = None) -> None:
        self.digest = digest
        self.summary = {} if summary is None else summary


class DatasetRecord(_Record):
    """A dataset recorded for a run."""

    __slots__ = __match_args__ = ("name", "role", "fingerprint", "summary", "created_at")
    name: str
    role: str
    fingerprint: str | None
    summary: dict[str, Any]
    created_at: float

    def __init__(
        self, name: str, role: str, fingerprint: str | None, summary: dict[str, Any], created_at: float
    ) -> None:
        self.name = name
        self.role = role
        self.fingerprint = fingerprint
        self.summary = summary
        self.created_at = created_at


class PipelineRecord(_Record):
    """A feature pipeline recorded for a run: its structural version, structure and text."""

    __slots__ = __match_args__ = ("name", "version", "structure", "text", "created_at")
    name: str
    version: str
    structure: dict[str, Any]
    text: str | None
    created_at: float

    def __init__(
        self, name: str, version: str, structure: dict[str, Any], text: str | None, created_at: float
    ) -> None:
        self.name = name
        self.version = version
        self.structure = structure
        self.text = text
        self.created_at = created_at


class RunInfo(_Record):
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

    Read-only: assigning or deleting a field raises ``dataclasses.FrozenInstanceError``.

    >>> info.experiment, info.tags, info.params  # doctest: +SKIP
    ('digits-svm', {'team': 'vision'}, {'C': 1.0})
    """

    __slots__ = __match_args__ = (
        "id",
        "experiment",
        "name",
        "kind",
        "hypothesis",
        "parent_id",
        "origin",
        "store",
        "tags",
        "params",
    )
    id: str
    experiment: str
    name: str
    kind: str
    hypothesis: str | None
    parent_id: str | None
    origin: str | None
    store: str
    tags: dict[str, str]
    params: dict[str, Any]

    def __init__(
        self,
        id: str,
        experiment: str,
        name: str,
        kind: str,
        hypothesis: str | None,
        parent_id: str | None,
        origin: str | None,
        store: str,
        tags: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        values = (id, experiment, name, kind, hypothesis, parent_id, origin, store)
        self.__setstate__((*values, {} if tags is None else tags, {} if params is None else params))

    def __setattr__(self, name: str, value: Any) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:
        return hash(self._values())

    def __getstate__(self) -> tuple[Any, ...]:
        return self._values()

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self.__match_args__, state, strict=True):
            object.__setattr__(self, name, value)
