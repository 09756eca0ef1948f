"""A metric batch as the stores keep it: one encoded chunk and one summary row per key.

Shared by the SQLite store (:mod:`labledger.store.writes`) and the PostgreSQL one
(:mod:`labledger.store.postgres.metrics`), so both store the same bytes and summaries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from labledger.store.codec import encode_chunk

if TYPE_CHECKING:
    from labledger.records import MetricBatch

__all__ = ["BatchSummary", "EncodedChunk", "encode_batch", "value_range"]

#: ``(key, points, chunk)`` of one key of a batch.
EncodedChunk = tuple[str, int, bytes]
#: ``(key, count, nan_count, last, last_step, last_time, min, max)`` of one key of a batch.
BatchSummary = tuple[str, int, int, float | None, int, float, float | None, float | None]


def encode_batch(batch: MetricBatch) -> tuple[list[EncodedChunk], list[BatchSummary]]:
    """A batch's chunks and summaries, as the SQLite store makes them: one chunk a non-empty key,
    columns cut to their shortest (a point interrupted mid-logging is dropped), ``last`` ``None``
    when NaN, ``min``/``max`` over the non-NaN values.

    >>> from labledger.records import MetricBatch, Series
    >>> chunks, sums = encode_batch(MetricBatch("r", 0, {"acc": Series([5], [1], [1.7e9], [0.5])}))
    >>> [(key, n) for key, n, _ in chunks], sums
    ([('acc', 1)], [('acc', 1, 0, 0.5, 5, 1700000000.0, 0.5, 0.5)])
    """
    chunks: list[EncodedChunk] = []
    sums: list[BatchSummary] = []
    for key, s in batch.series.items():
        n = min(len(s.values), len(s.steps), len(s.epochs), len(s.timestamps))
        if n == 0:
            continue
        values = s.values if n == len(s.values) else s.values[:n]
        if n == len(s.steps) == len(s.epochs) == len(s.timestamps):
            chunk = encode_chunk(s.steps, s.epochs, s.timestamps, values)
        else:
            chunk = encode_chunk(s.steps[:n], s.epochs[:n], s.timestamps[:n], values)
        lo, hi, nans = value_range(values)
        last = values[-1]
        sums.append(
            (key, n, nans, None if math.isnan(last) else last, s.steps[n - 1], s.timestamps[n - 1], lo, hi)
        )
        chunks.append((key, n, chunk))
    return chunks, sums


def value_range(values: Sequence[float]) -> tuple[float | None, float | None, int]:
    """``(min, max, NaN count)`` of a batch's values; min and max skip NaN (``None`` when all are NaN)."""
    total = sum(values)  # NaN only when a value is NaN or both infinities are present
    if total == total:
        return min(values), max(values), 0
    finite = [v for v in values if v == v]
    if not finite:
        return None, None, len(values)
    return min(finite), max(finite), len(values) - len(finite)
