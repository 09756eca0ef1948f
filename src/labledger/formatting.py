"""Turning runs into readable terminal text."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labledger.store.backend import Backend

#: Printed ids have at least this many hex digits (the id's millisecond timestamp), more when needed.
MIN_ID_LENGTH = 12
_RECHECK_SECONDS = 1.0


class ShortIds:
    """Shortest unique prefixes of a store's run ids, like git's abbreviated hashes.

    Built from the sorted ids of the store (one query); a run's printed id is
    long enough to tell it from its neighbours in sort order, so any printed id
    names exactly one run of the store.

    >>> ShortIds(["01a2168810f0705a", "01a2168810f0705b", "01a2168810f1700c"])("01a2168810f0705a")
    '01a2168810f0705a'
    """

    def __init__(self, sorted_ids: list[str], minimum: int = MIN_ID_LENGTH) -> None:
        self.ids = sorted_ids
        self.minimum = minimum

    def length(self, run_id: str) -> int:
        """How many characters of ``run_id`` tell it apart from every other id."""
        from bisect import bisect_left

        i = bisect_left(self.ids, run_id)
        here = i < len(self.ids) and self.ids[i] == run_id
        neighbours = [self.ids[j] for j in (i - 1, i + 1 if here else i) if 0 <= j < len(self.ids)]
        common = max((_common_prefix(run_id, other) for other in neighbours), default=0)
        return min(len(run_id), max(self.minimum, common + 1))

    def __call__(self, run_id: str) -> str:
        return run_id[: self.length(run_id)]


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


_cache: dict[str, tuple[float, int | None, ShortIds]] = {}


def store_ids(store: Backend) -> ShortIds:
    """The :class:`ShortIds` of a store (re-read when runs were added, checked at most once a second)."""
    key = str(store.path)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and now - cached[0] < _RECHECK_SECONDS:
        return cached[2]
    top = store.runs_version()
    if cached is not None and cached[1] == top:
        _cache[key] = (now, top, cached[2])
        return cached[2]
    _cache[key] = (now, top, ShortIds(store.run_ids()))
    return _cache[key][2]


def short_id(run_id: str, store: Any = None) -> str:
    """The run id as printed: its shortest unique prefix in ``store`` (default: every store open in
    this process), at least :data:`MIN_ID_LENGTH` digits. Any printed id works wherever a run is named."""
    from labledger.errors import LabledgerError

    if store is None:
        from labledger.store import open_stores

        stores = open_stores()
    else:
        stores = [store]
    length = MIN_ID_LENGTH
    for st in stores:
        try:
            length = max(length, store_ids(st).length(run_id))
        except LabledgerError:  # a store that cannot be read here: the others decide
            continue
    return run_id[:length]


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def value(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}"
    if v is None:
        return "-"
    text = str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{value(mean)} ± {value(std)}"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=list(headers), tablefmt="simple", disable_numparse=True)
