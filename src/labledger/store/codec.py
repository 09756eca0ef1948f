"""Compact binary chunks for metric series.

A chunk holds consecutive points of one (run, key). Each column becomes 64-bit
lanes that are mostly zero for a training curve: steps and millisecond
timestamps delta-of-delta, epochs delta, all three zigzagged (small negatives
become small numbers); values the float64 bits XOR the previous value's
(Gorilla, Pelkonen et al. 2015), so unchanged sign, exponent and leading
mantissa bits give zero bytes, as do the 29 low bits of a value that came from
float32. Values round-trip bit for bit (NaN payloads, ±inf, -0.0).

A column's first lanes (two for a delta-of-delta, one otherwise) are stored
apart as *heads*; the rest is byte-shuffled: plane ``k`` is byte ``k`` of each
lane (little-endian). All-zero planes are left out; value planes that look like
noise are stored raw (they would barely compress and cost the most to inflate).
Encoding uses only the standard library (the background writer must not import
NumPy) and no Python code per point beyond turning the logged lists into arrays:
a block of lanes is one Python integer, each transform a few whole-integer
operations (SWAR: each lane computed as if alone). :mod:`labledger.query.histories`
decodes many chunks into NumPy columns at once; :func:`decode_chunk_lists` needs no NumPy.

Layout of version 2 (little-endian)::

    u8 version | u32 count | u8 planes of steps, epochs, ms, values (bit k: plane k stored)
    | u8 value planes stored raw | u32 len(zi)
    | zi = zlib(u32 count | the 5 plane bytes again | 6 × u64 heads | integer planes)
    | zv = zlib(other value planes) | raw value planes

Version 1, still read (and upgraded by :func:`upgrade_chunk`)::

    u8 version | u32 count | u32 len(z) | z = zlib(steps Δ | epochs Δ | ms Δ) | count × f64 values
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import accumulate
from operator import xor
from typing import TYPE_CHECKING, Any, NamedTuple, cast

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "HEADS",
    "NO_EPOCH",
    "VERSION",
    "Chunk",
    "DamagedChunkError",
    "decode_chunk",
    "decode_chunk_lists",
    "encode_chunk",
    "split_chunk",
    "upgrade_chunk",
    "v1_lanes",
]

VERSION = 2
NO_EPOCH = -1
#: lanes of each column (steps, epochs, ms, values) stored as heads
HEADS = (2, 1, 2, 1)
_V1 = struct.Struct("<BII")
_V2 = struct.Struct("<BI5BI")
_HEADS = struct.Struct("<I5B6Q")  # the header again (under zlib's checksum), then the heads
_BIG = sys.byteorder == "big"
_U64 = (1 << 64) - 1
_I64 = 1 << 63
_MILLI = (1000.0).__mul__
_BITS = [tuple(k for k in range(8) if mask >> k & 1) for mask in range(256)]
_BLOCK = 4096  # lanes transformed at once: small masks and temporaries, few Python steps
_SAMPLE = 4096  # bytes of a value plane looked at to tell noise
_MAX_RATIO = 1100  # deflate expands at most ~1032-fold: a count beyond that is damage


class DamagedChunkError(ValueError):
    """A stored metric chunk cannot be decoded (the database was altered or damaged)."""


class Chunk(NamedTuple):
    """A chunk's parts, checked (:func:`split_chunk`). Version 1: ``ints`` holds the steps, epochs and
    ms deltas (little-endian int64), ``values`` the float64 values; see :meth:`stored_planes` for 2."""

    version: int
    points: int
    heads: tuple[int, ...] = ()
    planes: tuple[int, ...] = ()
    raw_planes: int = 0
    ints: bytes = b""
    values: bytes = b""
    raw: bytes | memoryview = b""

    def stored_planes(self) -> list[tuple[int, memoryview]]:
        """``(8 × column + k, plane k)`` of the planes stored (columns 0-3: steps, epochs, ms, values)."""
        n, (s, e, t, v), r = self.points, self.planes, self.raw_planes
        out = []
        view, at = memoryview(self.ints), _HEADS.size
        for base, mask in ((0, s), (8, e), (16, t)):
            for k in _BITS[mask]:
                out.append((base + k, view[at : at + n]))
                at += n
        for mask, buffer in ((v & ~r, self.values), (r, self.raw)):
            view, at = memoryview(buffer), 0
            for k in _BITS[mask]:
                out.append((24 + k, view[at : at + n]))
                at += n
        return out


# -- lanes: many 64-bit integers held in one Python integer --------------------

_PER_LANE = (0xFFF << 52, 0x41D << 52, 0x41C << 52, 511, 1 << 62, (1 << 42) - 1)


class _Masks(NamedTuple):
    """Constants of ``n`` lanes."""

    low: int  # bit 0
    high: int  # bit 63
    rest: int  # bits 0-62
    upper: int  # bits 1-63
    full: int
    exponent: int  # sign and exponent of a float64
    seconds: int  # ... of one in [2**30, 2**31)
    mantissa: int  # XOR: clears those, sets the implicit bit
    half: int  # 511
    bit62: int
    millis: int  # bits 0-41


@lru_cache(maxsize=4)
def _masks(n: int) -> _Masks:
    low = int.from_bytes(b"\x01\0\0\0\0\0\0\0" * n, "little")
    high = low << 63
    rest = high - low
    return _Masks(low, high, rest, rest << 1, rest | high, *(low * c for c in _PER_LANE))


def _bytes_of(a: array) -> memoryview:
    """The array's items as little-endian bytes (the array is ours to change)."""
    if _BIG:  # pragma: no cover - little-endian everywhere we run
        a.byteswap()
    return memoryview(a).cast("B")


def _blocks(raw: bytes | memoryview) -> Iterator[tuple[int, int]]:
    """``(lanes, count)`` of little-endian 64-bit lanes, block by block."""
    for at in range(0, len(raw), 8 * _BLOCK):
        block = raw[at : at + 8 * _BLOCK]
        yield int.from_bytes(block, "little"), len(block) // 8


def _delta(x: int, m: _Masks, before: int) -> int:
    """Lane ``i`` becomes ``x[i] - x[i - 1]`` modulo 2**64 (``x[-1] = before``), no borrow leaving a lane."""
    y = (x << 64) | before
    return ((x | m.high) - (y & m.rest)) ^ ((x ^ y ^ m.high) & m.high)


def _zigzag(x: int, m: _Masks) -> int:
    """Lanes as int64 to zigzag: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    sign = (x >> 63) & m.low
    return ((x << 1) & m.upper) ^ ((sign << 64) - sign)


def _unzigzag(z: int, m: _Masks) -> int:
    low = z & m.low
    return ((z >> 1) & m.rest) ^ ((low << 64) - low)


def _zigzag_deltas(source: Iterable[tuple[int, int]], order: int) -> bytes:
    """The zigzagged ``order``-th deltas of lanes given block by block."""
    out = []
    before = [0] * order  # the lane before the block: of the lanes, of their deltas
    for x, k in source:
        m = _masks(k)
        for i in range(order):
            d = _delta(x, m, before[i])
            before[i] = (x >> (64 * k - 64)) & _U64  # the last lane
            x = d
        out.append(_zigzag(x, m).to_bytes(8 * k, "little"))
    return b"".join(out)


def _xors(source: Iterable[tuple[int, int]]) -> bytes:
    """Each lane XOR the one before it."""
    out = []
    before = 0
    for x, k in source:
        out.append(((x ^ ((x << 64) | before)) & _masks(k).full).to_bytes(8 * k, "little"))
        before = (x >> (64 * k - 64)) & _U64  # the last lane
    return b"".join(out)


def _millis(timestamps: Sequence[float]) -> Iterator[tuple[int, int]]:
    """Lanes of ``int(t * 1000.0)`` block by block.

    For timestamps of 2004-2038 (2**30 <= t < 2**31 and 1000 * t >= 2**40) the
    product is computed on the lanes as the FPU computes it: the exact 63-bit
    product of mantissa and 1000 rounded half-even to 53 bits, then truncated.
    Other timestamps take the per-point path.
    """
    raw = _bytes_of(array("d", timestamps))
    for at, (bits, k) in zip(range(0, len(timestamps), _BLOCK), _blocks(raw), strict=True):
        m = _masks(k)
        if bits & m.exponent == m.seconds:
            p = (bits ^ m.mantissa) * 1000
            if p & m.bit62 == m.bit62:  # every product has 63 bits: rounding drops the 10 lowest
                yield ((p + m.half + ((p >> 10) & m.low)) >> 22) & m.millis, k
                continue
        ms = array("q", list(map(int, map(_MILLI, timestamps[at : at + k]))))
        yield int.from_bytes(_bytes_of(ms), "little"), k


def _epochs(epochs: Sequence[int | None], n: int) -> bytes:
    """Zigzagged delta lanes of the epochs (``None`` stored as :data:`NO_EPOCH`)."""
    first = epochs[0] if n else None
    if epochs.count(first) == n:  # one epoch (or none) for the whole chunk: deltas e, 0, 0, ...
        e = NO_EPOCH if first is None else int(first)
        return (((e << 1) ^ (e >> 63)) & _U64).to_bytes(8, "little")[: 8 * n] + bytes(max(8 * n - 8, 0))
    try:
        a = array("q", cast("Sequence[int]", epochs))  # raises at the first None
    except TypeError:
        a = array("q", [NO_EPOCH if e is None else e for e in epochs])
    return _zigzag_deltas(_blocks(_bytes_of(a)), 1)


def _noise(plane: bytes) -> bool:
    """Whether a plane's first bytes look uniform: zero is rare, and so are the values at scattered places."""
    k = min(len(plane), _SAMPLE)
    most = k // 64  # a chance of 1/64 that two bytes are equal (1/256 for noise): barely compressible
    sampled = sum(plane.count(plane[j * 0x9E3779B1 % k], 0, k) for j in range(1, 7))  # mean: k x that chance
    return plane.count(0, 0, k) <= most and sampled <= 6 * most


def _pack(n: int, columns: Iterable[bytes]) -> bytes:
    """A version 2 chunk of the transformed lanes of its four columns (8 bytes a point each)."""
    zero = bytes(n)
    heads: list[int] = []
    masks = []
    raw_mask = 0
    ints: list[bytes] = []
    vals: list[bytes] = []
    raw: list[bytes] = []
    for column, (lanes, h) in enumerate(zip(columns, HEADS, strict=True)):
        heads += (int.from_bytes(lanes[8 * i : 8 * i + 8], "little") for i in range(h))
        lanes = bytes(min(8 * h, len(lanes))) + lanes[8 * h :]
        mask = 0
        for k in range(8):
            plane = lanes[k::8]
            if plane != zero:
                mask |= 1 << k
                if column < 3:
                    ints.append(plane)
                elif _noise(plane):
                    raw_mask |= 1 << k
                    raw.append(plane)
                else:
                    vals.append(plane)
        masks.append(mask)
    zi = zlib.compress(b"".join((_HEADS.pack(n, *masks, raw_mask, *heads), *ints)), 1)
    rle = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)  # as small as LZ on value planes, faster
    zv = rle.compress(b"".join(vals)) + rle.flush()
    return b"".join((_V2.pack(VERSION, n, *masks, raw_mask, len(zi)), zi, zv, *raw))


def encode_chunk(
    steps: Sequence[int],
    epochs: Sequence[int | None],
    timestamps: Sequence[float],
    values: Sequence[float],
) -> bytes:
    """Encode one series chunk; all four columns have the same length."""
    n = len(values)
    step = _zigzag_deltas(_blocks(_bytes_of(array("q", steps))), 2)
    ms = _zigzag_deltas(_millis(timestamps), 2)
    return _pack(n, (step, _epochs(epochs, n), ms, _xors(_blocks(_bytes_of(array("d", values))))))


def v1_lanes(chunk: Chunk) -> tuple[bytes, bytes, bytes, bytes]:
    """A version 1 chunk's columns as the lanes version 2 stores, 8 bytes a point each."""
    w = 8 * chunk.points
    ints = memoryview(chunk.ints)
    return (
        _zigzag_deltas(_blocks(ints[:w]), 1),
        _zigzag_deltas(_blocks(ints[w : 2 * w]), 0),
        _zigzag_deltas(_blocks(ints[2 * w :]), 1),
        _xors(_blocks(chunk.values)),
    )


def upgrade_chunk(blob: bytes) -> bytes:
    """The chunk in the current version, every point unchanged (checked like :func:`split_chunk`)."""
    chunk = split_chunk(blob)
    return bytes(blob) if chunk.version == VERSION else _pack(chunk.points, v1_lanes(chunk))


# -- reading ---------------------------------------------------------------------


def _inflate(z: bytes | memoryview, size: int) -> bytes:
    if size > _MAX_RATIO * len(z) + 64:
        raise DamagedChunkError(f"damaged metric chunk ({size} bytes cannot come from {len(z)})")
    out = zlib.decompress(z, 15, max(size, 1))
    if len(out) != size:
        raise DamagedChunkError(f"damaged metric chunk ({len(out)} bytes where {size} belong)")
    return out


def split_chunk(blob: bytes) -> Chunk:
    """A chunk's parts, its header and sizes checked; raises :class:`DamagedChunkError`."""
    try:
        version = blob[0]
        if version == VERSION:
            _, n, s, e, t, v, r, zlen = _V2.unpack_from(blob)
            start = _V2.size
            raw_at = len(blob) - n * len(_BITS[r])
            if r & ~v or raw_at < start + zlen:
                raise DamagedChunkError(f"damaged metric chunk (sizes do not match its {n} points)")
            view = memoryview(blob)
            ints = _inflate(view[start : start + zlen], _HEADS.size + n * len(_BITS[s] + _BITS[e] + _BITS[t]))
            checked = _HEADS.unpack_from(ints)
            if checked[:6] != (n, s, e, t, v, r):
                raise DamagedChunkError("damaged metric chunk (its header does not match its checked copy)")
            values = _inflate(view[start + zlen : raw_at], n * len(_BITS[v & ~r]))
            return Chunk(version, n, checked[6:], (s, e, t, v), r, ints, values, view[raw_at:])
        if version != 1:
            raise DamagedChunkError(f"unknown metric chunk version {version}")
        _, n, zlen = _V1.unpack_from(blob)
        packed = _inflate(blob[_V1.size : _V1.size + zlen], 24 * n)
    except (struct.error, zlib.error, IndexError) as e:
        raise DamagedChunkError(f"damaged metric chunk ({e})") from None
    raw = bytes(blob[_V1.size + zlen :])
    if len(raw) != 8 * n:
        raise DamagedChunkError(f"damaged metric chunk (sizes do not match its {n} points)")
    return Chunk(version, n, ints=packed, values=raw)


def _unzigzagged(raw: bytes) -> array:
    """Zigzagged lanes as int64."""
    out = array("q")
    for z, k in _blocks(raw):
        out.frombytes(_unzigzag(z, _masks(k)).to_bytes(8 * k, "little"))
    if _BIG:  # pragma: no cover
        out.byteswap()
    return out


def _int64(sums: Iterable[int]) -> list[int]:  # sums that wrapped in int64 arithmetic, as int64 again
    return [((s + _I64) & _U64) - _I64 for s in sums]


def decode_chunk_lists(blob: bytes) -> dict[str, list[Any]]:
    """Decode a chunk of either version into plain lists (no NumPy), epochs ``None`` where absent."""
    chunk = split_chunk(blob)
    if chunk.version == 1:
        step, epoch, ms, xors = v1_lanes(chunk)
    else:
        lanes = [bytearray(8 * chunk.points) for _ in range(4)]
        for slot, plane in chunk.stored_planes():
            lanes[slot // 8][slot % 8 :: 8] = plane
        heads = iter(chunk.heads)
        for out, h in zip(lanes, HEADS, strict=True):
            for i in range(h):
                out[8 * i : 8 * i + 8] = next(heads).to_bytes(8, "little")[: len(out) - 8 * i]
        step, epoch, ms, xors = map(bytes, lanes)
    bits = array("q")
    bits.frombytes(xors)
    if _BIG:  # pragma: no cover
        bits.byteswap()
    values = array("d")
    values.frombytes(array("q", accumulate(bits, xor)).tobytes())
    return {
        "step": _int64(accumulate(accumulate(_unzigzagged(step)))),
        "epoch": [None if e == NO_EPOCH else e for e in _int64(accumulate(_unzigzagged(epoch)))],
        "timestamp": [t / 1000.0 for t in _int64(accumulate(accumulate(_unzigzagged(ms))))],
        "value": values.tolist(),
    }


def decode_chunk(blob: bytes) -> dict[str, np.ndarray]:
    """Decode one chunk into NumPy columns ``step``, ``epoch`` (-1 = none), ``timestamp``, ``value``.

    Point by point, the reference decoding; a whole history decodes faster with
    :func:`labledger.query.histories.history_arrays`.
    """
    import numpy as np

    cols = decode_chunk_lists(blob)
    return {
        "step": np.array(cols["step"], dtype=np.int64),
        "epoch": np.array([NO_EPOCH if e is None else e for e in cols["epoch"]], dtype=np.int64),
        "timestamp": np.array(cols["timestamp"], dtype=np.float64),
        "value": np.array(cols["value"], dtype=np.float64),
    }
