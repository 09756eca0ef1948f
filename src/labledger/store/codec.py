"""Compact binary chunks for metric series.

A chunk holds consecutive points of one (run, key). Steps, epochs and
millisecond timestamps are delta-encoded as little-endian int64 and
zlib-compressed together (training loops make them nearly constant, so they
shrink to almost nothing); values stay raw float64 so NaN and ±inf round-trip
bit for bit. Encoding uses only the standard library (it runs in the
background writer, which must not import NumPy); decoding uses NumPy because
its callers build DataFrames.

Layout (little-endian)::

    u8 version | u32 count | u32 len(z) | z = zlib(steps Δ | epochs Δ | ms Δ) | count × f64 values
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Sequence
from itertools import chain
from operator import sub
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "NO_EPOCH",
    "DamagedChunkError",
    "decode_chunk",
    "decode_chunk_lists",
    "encode_chunk",
    "split_chunk",
]

VERSION = 1
NO_EPOCH = -1
_HEADER = struct.Struct("<BII")
_BIG = sys.byteorder == "big"


def _delta(xs: Sequence[int]) -> array:
    return array("q", map(sub, xs, chain((0,), xs)))


def _le(a: array) -> bytes:
    if _BIG:  # pragma: no cover - little-endian everywhere we run
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def encode_chunk(
    steps: Sequence[int],
    epochs: Sequence[int | None],
    timestamps: Sequence[float],
    values: Sequence[float],
) -> bytes:
    """Encode one series chunk; all four columns have the same length."""
    n = len(values)
    if epochs.count(None) == len(epochs):
        ep: Sequence[int] = [NO_EPOCH] * len(epochs)
    else:
        ep = [NO_EPOCH if e is None else e for e in epochs]
    ms = list(map(int, map((1000.0).__mul__, timestamps)))
    packed = _le(_delta(steps)) + _le(_delta(ep)) + _le(_delta(ms))
    z = zlib.compress(packed, 1)
    return _HEADER.pack(VERSION, n, len(z)) + z + _le(array("d", values))


class DamagedChunkError(ValueError):
    """A stored metric chunk cannot be decoded (the database was altered or damaged)."""


def split_chunk(blob: bytes) -> tuple[int, bytes, bytes]:
    """``(point count, packed steps/epochs/times, raw values)`` of a chunk; checks its header."""
    try:
        version, n, zlen = _HEADER.unpack_from(blob)
        if version != VERSION:
            raise DamagedChunkError(f"unknown metric chunk version {version}")
        start = _HEADER.size
        packed = zlib.decompress(blob[start : start + zlen])
    except (struct.error, zlib.error) as e:
        raise DamagedChunkError(f"damaged metric chunk ({e})") from None
    raw = blob[start + zlen :]
    if len(packed) != 24 * n or len(raw) != 8 * n:
        raise DamagedChunkError(f"damaged metric chunk (sizes do not match its {n} points)")
    return n, packed, raw


def decode_chunk(blob: bytes) -> dict[str, np.ndarray]:
    """Decode a chunk into NumPy columns ``step``, ``epoch`` (-1 = none), ``timestamp``, ``value``."""
    import numpy as np

    n, packed, raw = split_chunk(blob)
    deltas = np.frombuffer(packed, dtype="<i8")
    return {
        "step": np.cumsum(deltas[:n]),
        "epoch": np.cumsum(deltas[n : 2 * n]),
        "timestamp": np.cumsum(deltas[2 * n :]) / 1000.0,
        "value": np.frombuffer(raw, dtype="<f8", count=n),
    }


def decode_chunk_lists(blob: bytes) -> dict[str, list[Any]]:
    """Decode a chunk into plain lists (no NumPy), epochs ``None`` where absent."""
    from itertools import accumulate

    n, packed, raw = split_chunk(blob)
    d = array("q")
    d.frombytes(packed)
    v = array("d")
    v.frombytes(raw)
    if _BIG:  # pragma: no cover
        d.byteswap()
        v.byteswap()
    steps = list(accumulate(d[:n]))
    epochs = [None if e == NO_EPOCH else e for e in accumulate(d[n : 2 * n])]
    ts = [m / 1000.0 for m in accumulate(d[2 * n :])]
    return {"step": steps, "epoch": epochs, "timestamp": ts, "value": v.tolist()}
