"""Reading metric histories fast: chunks decoded straight into preallocated NumPy arrays.

One pass over the chunks' point counts sizes the arrays (no chunk data is
read), a second pass decodes every chunk into its slice, and the DataFrame is
built once from those arrays without copying them; ``key`` is a Categorical.
Both passes read one snapshot of the store (:meth:`~labledger.store.backend.Backend.snapshot`),
so a run that is still being written gives a consistent history. NumPy and pandas
are imported here only, when asked for.
"""

from __future__ import annotations

import sys
import zlib
from typing import TYPE_CHECKING, Any

from labledger.errors import StoreError
from labledger.store.codec import NO_EPOCH, DamagedChunkError, split_chunk

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from labledger.store.backend import Backend

__all__ = ["all_histories", "history_arrays", "history_frame"]

_BIG = sys.byteorder == "big"
_BLOCK = 1 << 18  # elements per block of in-place work


def _damaged(store: Backend, run_id: str, key: str, e: Exception) -> StoreError:
    return StoreError(
        store.location,
        f"the history of {key!r} in run {run_id} is damaged ({e}); the other keys and runs are "
        "readable. Restore the store from a backup to recover it.",
    )


class _Columns:
    """Preallocated columns for ``n`` points, filled chunk by chunk.

    A chunk's bytes are copied as they are (delta-encoded little-endian integers,
    raw float64 values) into their slice; :meth:`finish` then turns every chunk's
    deltas into values at once, in place, with a cumulative sum that restarts at
    each chunk. No temporary the size of the history is made.
    """

    def __init__(self, n: int) -> None:
        import numpy as np

        self.n = n
        self.step = np.empty(n, dtype=np.int64)
        self.epoch = np.empty(n, dtype=np.int64)
        self.timestamp = np.empty(n, dtype=np.float64)
        self.value = np.empty(n, dtype=np.float64)
        self._ms = self.timestamp.view(np.int64)  # milliseconds, turned into seconds in place
        self._bytes = [a.data.cast("B") for a in (self.step, self.epoch, self._ms, self.value)]
        self._starts: list[int] = []

    def fill(self, at: int, blob: bytes, expected: int | None) -> int:
        """Copy one chunk into the columns from position ``at``; returns its point count."""
        n, packed, raw = split_chunk(blob)
        if expected is not None and n != expected:
            raise DamagedChunkError(f"damaged metric chunk (it holds {n} points, its row says {expected})")
        if at + n > self.n:
            raise DamagedChunkError("damaged metric chunk (more points than its rows count)")
        if n:
            lo, hi, w = 8 * at, 8 * (at + n), 8 * n
            view = memoryview(packed)
            step, epoch, ms, value = self._bytes
            step[lo:hi] = view[:w]
            epoch[lo:hi] = view[w : 2 * w]
            ms[lo:hi] = view[2 * w :]
            value[lo:hi] = raw
            self._starts.append(at)
        return n

    def finish(self) -> dict[str, np.ndarray]:
        import numpy as np

        starts = np.array(sorted(self._starts), dtype=np.intp)
        for column in (self.step, self.epoch, self._ms, self.value):
            if _BIG:  # pragma: no cover - little-endian everywhere we run
                column.byteswap(inplace=True)
        for column in (self.step, self.epoch, self._ms):
            _restarting_cumsum(column, starts)
        for lo in range(0, self.n, _BLOCK):  # whole milliseconds to seconds, in place, block by block
            np.divide(self._ms[lo : lo + _BLOCK], 1000.0, out=self.timestamp[lo : lo + _BLOCK])
        return {"step": self.step, "epoch": self.epoch, "timestamp": self.timestamp, "value": self.value}


def _restarting_cumsum(deltas: np.ndarray, starts: np.ndarray) -> None:
    """Cumulative sum in place that starts again at each index of ``starts`` (chunk boundaries).

    A chunk's first delta is its first value (the deltas start from 0), and its
    deltas sum to its last value; subtracting the previous chunk's last value
    from each chunk's first delta makes one cumulative sum over the whole array
    restart at every chunk (int64 arithmetic wraps, so every value comes out exact).
    """
    import numpy as np

    if len(deltas) == 0 or len(starts) == 0:
        return
    if len(starts) > 1:
        last = np.add.reduceat(deltas, starts)
        deltas[starts[1:]] -= last[:-1]
    carry = 0
    for lo in range(0, len(deltas), _BLOCK):  # in blocks: an in-place cumsum of it all would copy it all
        block = deltas[lo : lo + _BLOCK]
        block[0] += carry
        np.cumsum(block, out=block)
        carry = block[-1]


def history_arrays(store: Backend, run_id: str, key: str) -> dict[str, np.ndarray]:
    """One key's history as arrays ``step``, ``epoch`` (-1 = none), ``timestamp``, ``value``."""
    with store.snapshot():
        chunks = list(store.metric_chunks(run_id, key))
    cols = _Columns(sum(int(count) for _, count, _ in chunks))
    at = 0
    try:
        for _, count, data in chunks:
            at += cols.fill(at, data, int(count))
    except (DamagedChunkError, zlib.error, ValueError, TypeError) as e:
        raise _damaged(store, run_id, key, e) from e
    return cols.finish()


def _epochs(epoch: np.ndarray) -> Any:
    import pandas as pd

    return pd.arrays.IntegerArray(epoch, epoch == NO_EPOCH)


def history_frame(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """One key's history as a DataFrame: ``step``, ``epoch`` (nullable), ``timestamp``, ``value``."""
    import pandas as pd

    return pd.DataFrame(
        {
            "step": arrays["step"],
            "epoch": _epochs(arrays["epoch"]),
            "timestamp": arrays["timestamp"],
            "value": arrays["value"],
        },
        copy=False,
    )


def all_histories(store: Backend, run_id: str) -> pd.DataFrame:
    """Every point of a run: ``key`` (categorical, keys in order), ``step``, ``epoch``, ``timestamp``,
    ``value``; each key's points in logging order."""
    import numpy as np
    import pandas as pd

    with store.snapshot():
        sizes = sorted(store.metric_sizes(run_id), key=lambda size: size[0])
        names = [name for name, _ in sizes]
        start: dict[str, int] = {}
        total = 0
        for name, count in sizes:
            start[name] = total
            total += int(count)
        cols = _Columns(total)
        end = dict(start)
        for name, count, data in store.metric_chunks(run_id):
            try:
                end[name] += cols.fill(end[name], data, int(count))
            except (DamagedChunkError, zlib.error, ValueError, TypeError) as e:
                raise _damaged(store, run_id, name, e) from e
    cols.finish()
    counts = np.array([int(count) for _, count in sizes], dtype=np.int64)
    code_type = np.int8 if len(names) < 2**7 else np.int16 if len(names) < 2**15 else np.int32
    codes: Any = np.repeat(np.arange(len(names), dtype=code_type), counts)
    key = pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object))
    return pd.DataFrame(
        {
            "key": key,
            "step": cols.step,
            "epoch": _epochs(cols.epoch),
            "timestamp": cols.timestamp,
            "value": cols.value,
        },
        copy=False,
    )
