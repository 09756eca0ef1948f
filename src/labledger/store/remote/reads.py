"""The reads of :class:`~labledger.store.remote.client.RemoteStore`: one ``POST /api/v1/read/<method>``
each, retried a few seconds while the server cannot be reached, then a clear
:class:`~labledger.errors.StoreError` (the caller never hangs).

Inside :meth:`ReadsMixin.snapshot`, a run's metric sizes and chunks come from one answer, so
they agree with each other as the server's snapshot does (points written meanwhile are in
neither).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from labledger.store.remote import wire

if TYPE_CHECKING:
    from labledger.query.filter_syntax import Field
    from labledger.store.backend import RunSelection
    from labledger.store.remote.transport import Transport

__all__ = ["ReadsMixin"]

_JSON = "application/json"
#: Seconds a read retries a server that cannot be reached (or answers 5xx) before raising.
READ_RETRY_SECONDS = 5.0

Chunks = list[tuple[str, int, bytes]]


class ReadsMixin:
    """Backend reads over the server's read endpoints."""

    transport: Transport
    _local: threading.local

    def _read(self, method: str, *args: Any) -> Any:
        body = wire.dumps_args(args)
        answer = self.transport.call(
            "POST", f"/api/v1/read/{method}", body, _JSON, deadline=READ_RETRY_SECONDS
        )
        return wire.loads_result(answer.body)

    # -- snapshots -------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads of metric sizes and chunks inside the block agree with each other (one answer
        per run); other reads ask the server each time.

        >>> with store.snapshot():                  # doctest: +SKIP
        ...     sizes = store.metric_sizes(run_id)
        ...     chunks = list(store.metric_chunks(run_id))
        """
        local = self._local
        if getattr(local, "chunks", None) is not None:
            yield
            return
        local.chunks = {}
        try:
            yield
        finally:
            local.chunks = None

    def _fetch_chunks(self, run_id: str, key: str | None) -> Chunks:
        body = wire.dumps_args([run_id, key])
        answer = self.transport.call(
            "POST", "/api/v1/read/metric_chunks", body, _JSON, deadline=READ_RETRY_SECONDS
        )
        return list(wire.decode_chunks(answer.body))

    def _chunks(self, run_id: str, key: str | None) -> Chunks:
        held: dict[tuple[str, str | None], Chunks] | None = getattr(self._local, "chunks", None)
        if held is None:
            return self._fetch_chunks(run_id, key)
        if (run_id, None) in held:
            return [c for c in held[(run_id, None)] if key is None or c[0] == key]
        if (run_id, key) not in held:
            held[(run_id, key)] = self._fetch_chunks(run_id, key)
        return held[(run_id, key)]

    def metric_sizes(self, run_id: str, key: str | None = None) -> list[tuple[str, int]]:
        if getattr(self._local, "chunks", None) is None:
            return [tuple(size) for size in self._read("metric_sizes", run_id, key)]
        sizes: dict[str, int] = {}
        for name, points, _ in self._chunks(run_id, key):
            sizes[name] = sizes.get(name, 0) + points
        return list(sizes.items())

    def metric_chunks(self, run_id: str, key: str | None = None) -> Iterator[tuple[str, int, bytes]]:
        yield from self._chunks(run_id, key)

    # -- runs and experiments --------------------------------------------------------------

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        return self._read("run_row", run_id)

    def run_row_by_name(self, experiment: str, name: str) -> dict[str, Any] | None:
        return self._read("run_row_by_name", experiment, name)

    def run_rows_by_prefix(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        return self._read("run_rows_by_prefix", prefix, limit)

    def child_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read("child_rows", run_id)

    def select_runs(self, selection: RunSelection) -> list[dict[str, Any]]:
        return self._read("select_runs", selection)

    def field_values(self, run_ids: Sequence[str], field: Field) -> dict[str, Any]:
        return self._read("field_values", list(run_ids), field)

    def experiment_rows(self) -> list[dict[str, Any]]:
        return self._read("experiment_rows")

    def run_ids(self) -> list[str]:
        return self._read("run_ids")

    def runs_version(self) -> int:
        return int(self._read("runs_version"))

    def latest_reproduction(self, run_id: str, since: float) -> str | None:
        return self._read("latest_reproduction", run_id, since)

    # -- records of many runs --------------------------------------------------------------

    def params_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._read("params_of", list(run_ids))

    def tags_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._read("tags_of", list(run_ids))

    def summaries_of(self, run_ids: Sequence[str], brief: bool = False) -> list[tuple[Any, ...]]:
        return self._read("summaries_of", list(run_ids), brief)

    def fold_stats_of(self, run_ids: Sequence[str], brief: bool = False) -> list[tuple[Any, ...]]:
        return self._read("fold_stats_of", list(run_ids), brief)

    def folds_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._read("folds_of", list(run_ids))

    def datasets_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self._read("datasets_of", list(run_ids))

    def keys_of(self, run_ids: Sequence[str]) -> list[tuple[str, str, str | None]]:
        """``(kind, key, split)``: every distinct param, metric, fold and tag key of the runs."""
        return self._read("keys_of", list(run_ids))

    # -- one run's records -----------------------------------------------------------------

    def tag_history_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read("tag_history_rows", run_id)

    def note_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read("note_rows", run_id)

    def artifact_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read("artifact_rows", run_id)

    def pipeline_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._read("pipeline_rows", run_id)

    def artifact_by_content(self, sha256: str, name: str) -> tuple[str, str] | None:
        found = self._read("artifact_by_content", sha256, name)
        return None if found is None else (str(found[0]), str(found[1]))

    def package_set(self, sha256: str) -> str | None:
        return self._read("package_set", sha256)

    def setting(self, key: str) -> str | None:
        return self._read("setting", key)

    def settings(self, prefix: str) -> dict[str, str]:
        return self._read("settings", prefix)
