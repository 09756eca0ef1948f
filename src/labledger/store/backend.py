"""The store interface: :class:`Backend`, what labledger asks of a store.

Everything above :mod:`labledger.store` reads and writes through these methods
only; the built-in :class:`labledger.store.Store` (SQLite) implements them, and
another backend (a server database, say) plugs in by answering the
``labledger_open_store(uri)`` hook with an object that does too. Methods take
and return plain Python values, records of :mod:`labledger.records` and the
small types below; JSON fields travel as JSON text (readers decode them and
report damage). Rows of one run's records are dicts; rows of many runs' records
are tuples, run id first, in the column order each method names.

>>> from labledger.store import open_store
>>> from labledger.store.backend import Backend
>>> isinstance(open_store("/tmp/ledger"), Backend)  # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from labledger.query.filter_syntax import Field
    from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord
    from labledger.store.blobs import BlobStore

__all__ = ["Backend", "FilterTooLargeError", "RunSelection"]


@dataclass(frozen=True)
class RunSelection:
    """Which runs :meth:`Backend.select_runs` returns, in which order.

    ``where`` is a filter in normal form (:func:`labledger.query.filters.normal_form`:
    ``not`` pushed down to the comparisons, ``best`` resolved to ``min``/``max``);
    ``order_by`` holds ``(field, descending)`` pairs (nulls last, newest run first on ties);
    ``brief`` asks only for the listing columns (id, experiment, name, status,
    parent_id, start_time, end_time, author, hypothesis).

    >>> RunSelection(experiment="digits", include_children=False, limit=10)
    RunSelection(experiment='digits', include_children=False, where=None, order_by=(), limit=10, brief=False)
    """

    experiment: str | None = None
    include_children: bool = True
    where: Any = None
    order_by: tuple[tuple[Field, bool], ...] = ()
    limit: int | None = None
    brief: bool = False


class FilterTooLargeError(Exception):
    """A filter the backend cannot run (too many values, nested too deeply): the query layer
    turns it into a :class:`labledger.query.filters.FilterSyntaxError` pointing at ``column``.

    >>> FilterTooLargeError(12, "simplify the filter").column
    12
    """

    def __init__(self, column: int, problem: str) -> None:
        self.column = column
        self.problem = problem
        super().__init__(f"column {column}: {problem}")


@runtime_checkable
class Backend(Protocol):
    """What labledger asks of a store. :class:`labledger.store.Store` is the SQLite one.

    >>> def last_values(store: Backend, run_id: str) -> dict[str, float | None]:
    ...     return {key: last for _, key, last, *_ in store.summaries_of([run_id], brief=True)}
    """

    #: A local folder for the store's caches and spool files (the built-in store: its folder).
    path: Path
    #: Where artifact bytes are kept.
    blobs: BlobStore

    @property
    def uri(self) -> str:
        """The store's location as a URI."""

    @property
    def location(self) -> str:
        """What error messages name as the store (the built-in store: its database file)."""

    # -- lifecycle and transactions ----------------------------------------------

    def create(self) -> None:
        """Create the store when it does not exist yet."""

    def transaction(self) -> AbstractContextManager[object]:
        """Group this thread's writes into one transaction (bulk recording)."""

    def in_transaction(self) -> bool:
        """Whether this thread holds a :meth:`transaction`."""

    def snapshot(self) -> AbstractContextManager[None]:
        """Make this thread's reads inside the block see one consistent state of the store."""

    # -- writes ------------------------------------------------------------------

    def ensure_experiment(self, name: str, description: str | None = None) -> int:
        """The id of experiment ``name``, created when missing."""

    def insert_run(self, row: dict[str, Any]) -> str:
        """Create a run (``id``, ``experiment_id``, ``name``, ...); returns the unique name used."""

    def end_run(self, run_id: str, status: str, end_time: float, error: str | None) -> None:
        """Give a running run its final status."""

    def heartbeat(self, run_id: str) -> None:
        """Mark a run alive."""

    def insert_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Record params; keys already present keep their value."""

    def set_tags(self, run_id: str, tags: dict[str, str], when: float) -> None:
        """Set tags and append each change to the tag history."""

    def add_note(self, run_id: str, text: str, when: float, author: str | None = None) -> None:
        """Append a note (also to an ended run: findings come after it)."""

    def write_metrics(self, batch: MetricBatch) -> None:
        """Append a batch of metric points (once per sequence number) and update the summaries."""

    def insert_folds(
        self, run_id: str, key: str, split: str, values: list[float], stats: dict[str, float | None]
    ) -> None:
        """Record per-fold values and their statistics."""

    def insert_dataset(self, run_id: str, ds: DatasetRecord) -> None:
        """Record a dataset fingerprint."""

    def record_lineage(self, run_id: str, lineage: dict[str, Any], packages: dict[str, str] | None) -> None:
        """Merge lineage sections into the run's; keep a package set once per digest."""

    def insert_pipeline(self, run_id: str, pipe: PipelineRecord) -> None:
        """Record a feature pipeline."""

    def insert_artifact(self, run_id: str, art: ArtifactRecord) -> None:
        """Record an artifact whose bytes are in :attr:`blobs`."""

    def set_setting(self, key: str, value: str) -> None:
        """Store a store-wide setting."""

    # -- reads: runs and experiments ---------------------------------------------

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        """A run's row (its columns and ``experiment``), or None."""

    def run_row_by_name(self, experiment: str, name: str) -> dict[str, Any] | None:
        """The row of run ``name`` in ``experiment``, or None."""

    def run_rows_by_prefix(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        """Rows of runs whose id starts with ``prefix``, by id, at most ``limit``."""

    def child_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Rows of a run's children, by id."""

    def select_runs(self, selection: RunSelection) -> list[dict[str, Any]]:
        """Rows of the runs a :class:`RunSelection` picks, in its order (may raise FilterTooLargeError)."""

    def field_values(self, run_ids: Sequence[str], field: Field) -> dict[str, Any]:
        """Run id -> the value of a filter-language field (``best`` resolved), for these runs."""

    def experiment_rows(self) -> list[dict[str, Any]]:
        """Experiments by name: name, description, created_at, runs, running, last_run."""

    def run_ids(self) -> list[str]:
        """Every run id, sorted."""

    def runs_version(self) -> int:
        """A number that changes whenever a run is added (tells when to read :meth:`run_ids` again)."""

    def latest_reproduction(self, run_id: str, since: float) -> str | None:
        """The newest run started since ``since`` that reproduces ``run_id``."""

    # -- reads: records of many runs (tuples, run id first) ----------------------

    def params_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """``(run_id, key, value JSON)``."""

    def tags_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """``(run_id, key, value)``."""

    def summaries_of(self, run_ids: Sequence[str], brief: bool = False) -> list[tuple[Any, ...]]:
        """``(run_id, key, last, min, max, count, nan_count, last_step, last_time)`` per metric
        (``brief``: the first six)."""

    def fold_stats_of(self, run_ids: Sequence[str], brief: bool = False) -> list[tuple[Any, ...]]:
        """``(run_id, key, split, n, mean, std, min, max)`` (``brief``: the first six)."""

    def folds_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """``(run_id, key, split, fold, value)`` by run id, key, split, fold (None: a failed fold)."""

    def datasets_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """``(run_id, name, role, fingerprint, summary JSON, created_at)`` by time."""

    # -- reads: one run's records ------------------------------------------------

    def tag_history_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Tag changes in order: key, value, changed_at."""

    def note_rows(self, run_id: str) -> list[dict[str, Any]]:  # created_at, text, author
        """Notes in order: created_at, text."""

    def artifact_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Artifacts in order: name, kind, sha256, size, media_type, metadata JSON, created_at."""

    def pipeline_rows(self, run_id: str) -> list[dict[str, Any]]:
        """Pipelines by name: name, version, structure JSON, text, created_at."""

    def artifact_sha(self, run_id: str, name: str) -> str | None:
        """The SHA-256 of a run's artifact ``name``, or None."""

    def artifact_by_content(self, sha256: str, name: str) -> tuple[str, str] | None:
        """``(run_id, artifact name)`` of stored bytes ``sha256``: name ``name`` first, then checkpoints,
        then the earliest."""

    def package_set(self, sha256: str) -> str | None:
        """The JSON text of package set ``sha256``, or None."""

    def setting(self, key: str) -> str | None:
        """A store-wide setting, or None."""

    def settings(self, prefix: str) -> dict[str, str]:
        """The store-wide settings whose key starts with ``prefix``."""

    def metric_sizes(self, run_id: str, key: str | None = None) -> list[tuple[str, int]]:
        """``(key, points)`` of a run's metric histories (one key, or all)."""

    def metric_chunks(self, run_id: str, key: str | None = None) -> Iterator[tuple[str, int, bytes]]:
        """``(key, points, chunk)`` of a run's histories, each key's chunks in order
        (:mod:`labledger.store.codec` encoding); read inside :meth:`snapshot` with :meth:`metric_sizes`."""
