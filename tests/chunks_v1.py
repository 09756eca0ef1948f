"""Metric chunks in format version 1, as labledger wrote them up to schema v4 (for migration tests)."""

from __future__ import annotations

import struct
import zlib
from array import array


def v1_chunk(
    steps: list[int], epochs: list[int | None], timestamps: list[float], values: list[float]
) -> bytes:
    """A version-1 chunk: ``u8 version | u32 count | u32 len(z) | zlib(Δsteps Δepochs Δms) | f64 values``."""

    def deltas(xs: list[int]) -> bytes:
        return array("q", [b - a for a, b in zip([0, *xs], xs, strict=False)]).tobytes()

    ms = [int(t * 1000.0) for t in timestamps]
    packed = deltas(steps) + deltas([-1 if e is None else e for e in epochs]) + deltas(ms)
    z = zlib.compress(packed, 1)
    return struct.pack("<BII", 1, len(values), len(z)) + z + array("d", values).tobytes()
