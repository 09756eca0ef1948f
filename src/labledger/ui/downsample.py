"""Downsampling a metric history for a chart: MinMaxLTTB, or the min and the max of each bucket.

:func:`chart_indices` uses MinMaxLTTB (the ``tsdownsample`` package, installed with
``labledger[ui]``: min-max preselection, then largest-triangle-three-buckets) on finite values
over non-decreasing steps, and :func:`minmax_indices` otherwise (or without the package).
:func:`minmax_indices` is vectorised with NumPy (no Python loop over points). The first and the last point
are always kept, so the curve starts and ends where the history does, and every
bucket's extremes are kept, so no spike disappears.

>>> import numpy as np
>>> minmax_indices(np.array([0.0, 5.0, 1.0, -3.0, 2.0, 4.0, 0.5, 9.0]), 6).tolist()
[0, 1, 3, 5, 6, 7]
"""

from __future__ import annotations

import numpy as np

__all__ = ["chart_indices", "minmax_indices"]


def _first_where(mask: np.ndarray, bucket: np.ndarray, buckets: int) -> np.ndarray:
    """For each bucket, the first index where ``mask`` holds (every bucket has one)."""
    hits = np.flatnonzero(mask)
    _, first = np.unique(bucket[hits], return_index=True)
    assert len(first) == buckets  # each bucket holds its own extreme
    return hits[first]


def minmax_indices(values: np.ndarray, max_points: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points of ``values`` that keep its shape.

    The inner points (all but the first and the last) are split into
    ``(max_points - 2) // 2`` buckets of (nearly) equal size; each bucket gives the index of
    its minimum and of its maximum (NaN is ignored; an all-NaN bucket gives its first point).
    A history no longer than ``max_points`` is kept whole.

    :param values: the metric's values, in logging order.
    :param max_points: the most points to keep; at least 4.
    :raises ValueError: ``max_points`` is below 4.
    """
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, not {max_points}")
    n = len(values)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    buckets = (max_points - 2) // 2
    inner = np.asarray(values[1:-1], dtype=np.float64)
    edges = np.linspace(0, len(inner), buckets + 1).astype(np.int64)
    bucket = np.repeat(np.arange(buckets), np.diff(edges))
    low = np.where(np.isnan(inner), np.inf, inner)
    high = np.where(np.isnan(inner), -np.inf, inner)
    mins = np.minimum.reduceat(low, edges[:-1])
    maxs = np.maximum.reduceat(high, edges[:-1])
    argmin = _first_where(low == mins[bucket], bucket, buckets)
    argmax = _first_where(high == maxs[bucket], bucket, buckets)
    keep = np.concatenate(([0], argmin + 1, argmax + 1, [n - 1]))
    return np.unique(keep)


def chart_indices(x: np.ndarray, values: np.ndarray, max_points: int) -> tuple[np.ndarray, str]:
    """Sorted indices of at most ``max_points`` points that draw like the whole history, and the
    method used (``"none"``, ``"minmax-lttb"`` or ``"minmax"``).

    >>> chart_indices(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 10)[1]
    'none'
    """
    n = len(values)
    if n <= max_points:
        return np.arange(n, dtype=np.int64), "none"
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, not {max_points}")
    try:
        from tsdownsample import MinMaxLTTBDownsampler
    except ImportError:
        return minmax_indices(values, max_points), "minmax"
    y = np.ascontiguousarray(values, dtype=np.float64)
    steps = np.ascontiguousarray(x)
    if not (np.isfinite(y).all() and bool((np.diff(steps) >= 0).all())):
        return minmax_indices(values, max_points), "minmax"
    keep = MinMaxLTTBDownsampler().downsample(steps, y, n_out=max_points)
    return np.asarray(keep, dtype=np.int64), "minmax-lttb"
