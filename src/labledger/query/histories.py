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
from labledger.store.codec import HEADS, NO_EPOCH, DamagedChunkError, split_chunk, v1_lanes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from labledger.store.backend import Backend

__all__ = ["all_histories", "history_arrays", "history_frame"]

_BIG = sys.byteorder == "big"
_BLOCK = 1 << 13  # elements per block of in-place work: its temporaries (64 KiB) reuse freed memory
_STRETCH = 1 << 16  # points whose chunks' planes are gathered before they are placed


def _damaged(store: Backend, run_id: str, key: str, e: Exception) -> StoreError:
    return StoreError(
        store.location,
        f"the history of {key!r} in run {run_id} is damaged ({e}); the other keys and runs are "
        "readable. Restore the store from a backup to recover it.",
    )


class _Columns:
    """Preallocated columns for ``n`` points, filled chunk by chunk.

    Each chunk's columns are placed as the 64-bit lanes :mod:`labledger.store.codec`
    stores (zigzagged deltas of deltas of steps and milliseconds, zigzagged deltas
    of epochs, each value's bits XOR the previous value's). The byte planes of
    consecutive chunks are gathered and each goes into its byte of the lanes with
    one NumPy copy per stretch of up to :data:`_STRETCH` points (a plane left out
    stays zero); the chunks' heads are placed at the end, all at once.
    :meth:`finish` then undoes the transforms of every chunk at once, in place,
    with cumulative sums and XORs that restart at each chunk. No temporary the
    size of the history is made.
    """

    def __init__(self, n: int) -> None:
        import numpy as np

        self.n = n
        self.step = np.zeros(n, dtype=np.int64)
        self.epoch = np.zeros(n, dtype=np.int64)
        self.timestamp = np.zeros(n, dtype=np.float64)
        self.value = np.zeros(n, dtype=np.float64)
        self._ms = self.timestamp.view(np.int64)  # milliseconds, turned into seconds in place
        self._columns = (self.step, self.epoch, self._ms, self.value.view(np.int64))
        self._lanes = [c.view(np.uint8).reshape(n, 8) for c in self._columns]
        self._starts: list[int] = []
        self._heads: list[tuple[int, int, tuple[int, ...]]] = []  # position, points, heads
        self._filled = [False] * 4  # columns that hold more than heads
        self._stretch = (0, 0)  # the points whose planes are gathered in _pieces
        self._pieces: list[list[tuple[int, memoryview]]] = [[] for _ in range(32)]  # by column * 8 + plane

    def fill(self, at: int, blob: bytes, expected: int | None) -> int:
        """Place one chunk into the columns from position ``at``; returns its point count."""
        chunk = split_chunk(blob)
        n = chunk.points
        if expected is not None and n != expected:
            raise DamagedChunkError(f"damaged metric chunk (it holds {n} points, its row says {expected})")
        if at + n > self.n:
            raise DamagedChunkError("damaged metric chunk (more points than its rows count)")
        if not n:
            return n
        self._starts.append(at)
        lo, hi = self._stretch
        if chunk.version == 1 or at != hi or hi - lo >= _STRETCH:
            self._place()
            lo = at
        if chunk.version == 1:
            for target, lanes in zip(self._columns, v1_lanes(chunk), strict=True):
                target[at : at + n] = _np().frombuffer(lanes, dtype=_np().int64)
            self._filled = [True] * 4
            self._stretch = (at + n, at + n)
            return n
        pieces = self._pieces
        for slot, plane in chunk.stored_planes():
            pieces[slot].append((at, plane))
        self._heads.append((at, n, chunk.heads))
        self._stretch = (lo, at + n)
        return n

    def _place(self) -> None:
        """Copy the gathered planes into their bytes of the lanes, gaps as zeros."""
        np = _np()
        lo, hi = self._stretch
        for slot, pieces in enumerate(self._pieces):
            if not pieces:
                continue
            parts: list[bytes | memoryview] = []
            end = lo
            for start, piece in pieces:
                parts += (bytes(start - end), piece) if start > end else (piece,)
                end = start + len(piece)
            parts.append(bytes(hi - end))
            self._lanes[slot // 8][lo:hi, slot % 8] = np.frombuffer(b"".join(parts), dtype=np.uint8)
            self._filled[slot // 8] = True
            pieces.clear()
        self._stretch = (hi, hi)

    def finish(self) -> dict[str, np.ndarray]:
        np = _np()
        self._place()
        starts = np.array(self._starts, dtype=np.intp)
        if len(starts) > 1 and np.any(starts[1:] < starts[:-1]):
            starts.sort()
        for column, filled in zip(self._columns, self._filled, strict=True):
            if _BIG and filled:  # pragma: no cover - little-endian everywhere we run
                column.byteswap(inplace=True)
        for column, filled in zip(self._columns[:3], self._filled, strict=False):
            if filled:
                _unzigzag(column)
        if self._heads:
            at = np.array([h[0] for h in self._heads], dtype=np.intp)
            count = np.array([h[1] for h in self._heads], dtype=np.intp)
            heads = np.array([h[2] for h in self._heads], dtype=np.uint64)
            zigzagged = heads[:, :5]
            zigzagged[...] = (zigzagged >> np.uint64(1)) ^ (np.uint64(0) - (zigzagged & np.uint64(1)))
            i = 0
            for column, h in zip(self._columns, HEADS, strict=True):
                for j in range(h):  # the j-th lane of every chunk that has one
                    has = count > j
                    column[at[has] + j] = heads[has, i].view(np.int64)
                    i += 1
        for column in (self.step, self.step, self.epoch, self._ms, self._ms):
            _restarting(column, starts, np.add, np.subtract)
        _restarting(self._columns[3], starts, np.bitwise_xor, np.bitwise_xor)
        for lo in range(0, self.n, _BLOCK):  # whole milliseconds to seconds, in place, block by block
            np.divide(self._ms[lo : lo + _BLOCK], 1000.0, out=self.timestamp[lo : lo + _BLOCK])
        return {"step": self.step, "epoch": self.epoch, "timestamp": self.timestamp, "value": self.value}


def _np() -> Any:
    import numpy as np

    return np


def _unzigzag(column: np.ndarray) -> None:
    """Zigzagged lanes back to int64, in place: 0, 1, 2, 3, ... -> 0, -1, 1, -2, ..."""
    import numpy as np

    for lo in range(0, len(column), _BLOCK):
        block = column[lo : lo + _BLOCK]
        sign = np.bitwise_and(block, 1)
        np.negative(sign, out=sign)
        unsigned = block.view(np.uint64)
        np.right_shift(unsigned, np.uint64(1), out=unsigned)
        np.bitwise_xor(block, sign, out=block)


def _restarting(column: np.ndarray, starts: np.ndarray, op: np.ufunc, undo: np.ufunc) -> None:
    """Accumulate ``op`` (a cumulative sum or XOR) in place, starting again at each index of ``starts``.

    Subtracting (``undo``) the previous chunk's total from each chunk's first
    element makes one accumulation over the whole array restart at every chunk
    (the totals telescope; int64 arithmetic wraps, so every value comes out exact).
    """
    if len(column) == 0 or len(starts) == 0:
        return
    if len(starts) > 1:
        totals = op.reduceat(column, starts)
        column[starts[1:]] = undo(column[starts[1:]], totals[:-1])
    carry = None
    for lo in range(0, len(column), _BLOCK):  # in blocks: one pass of it all would copy it all
        block = column[lo : lo + _BLOCK]
        if carry is not None:
            block[0] = op(block[0], carry)
        op.accumulate(block, out=block)
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
