"""The reads of one run's records and of many runs' records, mixed into
:class:`~labledger.store.postgres.store.PostgresStore`: each runs the function of
:mod:`labledger.store.postgres.reads` of the same name through the store's ``_read``.

>>> store.params_of([run_id])  # doctest: +SKIP
[('0123abcd', 'C', '1.0')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from labledger.store.postgres import reads

if TYPE_CHECKING:
    import psycopg

__all__ = ["RecordReads"]

_T = TypeVar("_T")


class RecordReads:
    """The record reads of :class:`labledger.store.backend.Backend` over PostgreSQL."""

    def _read(self, fn: Callable[..., _T], *args: Any) -> _T:  # provided by PostgresStore
        raise NotImplementedError

    def _naming(self) -> AbstractContextManager[None]:  # provided by PostgresStore
        raise NotImplementedError

    def _borrow(self) -> AbstractContextManager[psycopg.Connection[Any]]:  # provided by PostgresStore
        raise NotImplementedError

    # -- reads: records of many runs -----------------------------------------------------

    def params_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._read(reads.params_of, run_ids)

    def tags_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._read(reads.tags_of, run_ids)

    def summaries_of(self, run_ids: Sequence[str], brief: bool = False) -> list[tuple[Any, ...]]:
        return self._read(reads.summaries_of, run_ids, brief)

    def fold_stats_of(self, run_ids: Sequence[str], brief: bool = False) -> list[tuple[Any, ...]]:
        return self._read(reads.fold_stats_of, run_ids, brief)

    def folds_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._read(reads.folds_of, run_ids)

    def datasets_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._read(reads.datasets_of, run_ids)

    def keys_of(self, run_ids: Sequence[str]) -> list[tuple[str, str, str | None]]:
        """``(kind, key, split)``: every distinct param, metric, fold and tag key of the runs."""
        return self._read(reads.keys_of, run_ids)

    # -- reads: one run's records --------------------------------------------------------

    def tag_history_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read(reads.tag_history_rows, run_id)

    def note_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read(reads.note_rows, run_id)

    def artifact_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read(reads.artifact_rows, run_id)

    def pipeline_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read(reads.pipeline_rows, run_id)

    def artifact_sha(self, run_id: str, name: str) -> str | None:
        return self._read(reads.artifact_sha, run_id, name)

    def artifact_by_content(self, sha256: str, name: str) -> tuple[str, str] | None:
        return self._read(reads.artifact_by_content, sha256, name)

    def package_set(self, sha256: str) -> str | None:
        return self._read(reads.package_set, sha256)

    def setting(self, key: str) -> str | None:
        return self._read(reads.setting, key)

    def settings(self, prefix: str) -> dict[str, str]:
        return self._read(reads.settings, prefix)

    def metric_sizes(self, run_id: str, key: str | None = None) -> list[tuple[str, int]]:
        return self._read(reads.metric_sizes, run_id, key)

    def metric_chunks(self, run_id: str, key: str | None = None) -> Iterator[tuple[str, int, bytes]]:
        with self._naming(), self._borrow() as conn:
            yield from reads.metric_chunks(conn, run_id, key)
