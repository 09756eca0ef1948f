"""The metric chunk codec: exact round trips in both versions, density, and damage reported as damage."""

from __future__ import annotations

import contextlib
import math
import random
import sqlite3
import struct
import subprocess
import sys
from array import array

import numpy as np
import pytest

import labledger as ll
from labledger.errors import StoreError
from labledger.query.histories import _Columns
from labledger.store.codec import (
    VERSION,
    DamagedChunkError,
    decode_chunk,
    decode_chunk_lists,
    encode_chunk,
    split_chunk,
    upgrade_chunk,
)
from labledger.store.fsck import fsck

from ..chunks_v1 import v1_chunk


def _float(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


SPECIALS = [
    math.nan,
    _float(0x7FF8_0000_0000_0123),  # a NaN with a payload
    _float(0xFFF0_0000_0000_0001),  # a negative signalling NaN
    math.inf,
    -math.inf,
    -0.0,
    0.0,
    5e-324,
    -5e-324,
    1.7976931348623157e308,
]


def _bits(values: list[float]) -> bytes:
    return array("d", values).tobytes()


def _check(
    blob: bytes, steps: list[int], epochs: list[int | None], ts: list[float], values: list[float]
) -> None:
    got = decode_chunk_lists(blob)
    assert got["step"] == steps
    assert got["epoch"] == epochs
    assert got["timestamp"] == [int(t * 1000.0) / 1000.0 for t in ts]
    assert _bits(got["value"]) == _bits(values)
    arrays = decode_chunk(blob)
    assert arrays["step"].tolist() == steps and arrays["value"].tobytes() == _bits(values)
    assert arrays["epoch"].tolist() == [-1 if e is None else e for e in epochs]


def _columns(
    rnd: random.Random, n: int, shape: int
) -> tuple[list[int], list[int | None], list[float], list[float]]:
    big = 1 << 62
    steps = [
        list(range(7, 7 + 3 * n, 3)),
        sorted(rnd.randrange(-big, big) for _ in range(n)),
        [rnd.choice((-big, big, 0, rnd.randrange(-big, big))) for _ in range(n)],  # deltas wrap around
    ][shape % 3]
    epochs: list[int | None] = [
        [None] * n,
        [4] * n,
        [i // 100 for i in range(n)],
        [None if rnd.random() < 0.3 else rnd.randrange(1 << 40) for _ in range(n)],
    ][shape % 4]
    base = [1.7e9, 1_073_741_824.0, 2_147_483_647.5, 1.0995e9, 12.5, 0.0, -3.0][shape % 7]
    ts = [base + i * 0.001 + rnd.random() * 1e-4 for i in range(n)]
    values = [rnd.choice(SPECIALS) if rnd.random() < 0.2 else rnd.gauss(0, 1e6) for _ in range(n)]
    return steps, epochs, ts, values


@pytest.mark.parametrize("n", [0, 1, 2, 3, 1000, 4095, 4096, 4097, 20_000])
def test_every_column_round_trips_exactly_at_every_size(n):
    rnd = random.Random(n)
    for shape in range(12):
        steps, epochs, ts, values = _columns(rnd, n, shape)
        blob = encode_chunk(steps, epochs, ts, values)
        assert blob[0] == VERSION and split_chunk(blob).points == n
        _check(blob, steps, epochs, ts, values)


def test_values_keep_every_bit_and_float32_curves_are_dense():
    values = [float(np.float32(2.0 / (1 + i * 0.001) + 0.01 * math.sin(i))) for i in range(100_000)]
    steps, ts = list(range(100_000)), [1.7e9 + i * 0.01 for i in range(100_000)]
    blob = encode_chunk(steps, [i // 1000 for i in range(100_000)], ts, values)
    _check(blob, steps, [i // 1000 for i in range(100_000)], ts, values)
    assert len(blob) / len(values) < 3.5  # raw float64 alone were 8 bytes a point
    small = [
        encode_chunk(steps[i : i + 1000], [None] * 1000, ts[i : i + 1000], values[i : i + 1000])
        for i in range(0, 100_000, 1000)
    ]
    assert sum(map(len, small)) / len(values) < 4.0
    constant = encode_chunk(steps, [None] * 100_000, ts, [0.001] * 100_000)
    assert len(constant) / 100_000 < 0.05
    specials = SPECIALS * 500
    _check(
        encode_chunk(steps[: len(specials)], [None] * len(specials), ts[: len(specials)], specials),
        steps[: len(specials)],
        [None] * len(specials),
        ts[: len(specials)],
        specials,
    )


def test_milliseconds_are_what_float_arithmetic_truncates_them_to():
    rnd = random.Random(7)
    ts = []
    for _ in range(20_000):  # next to millisecond boundaries, where rounding decides
        t = 1.7e9 + rnd.randrange(10**9) / 1000.0
        ts += [t, math.nextafter(t, 0.0), math.nextafter(t, math.inf)]
    got = decode_chunk_lists(encode_chunk(list(range(len(ts))), [None] * len(ts), ts, [0.0] * len(ts)))
    assert got["timestamp"] == [int(t * 1000.0) / 1000.0 for t in ts]


def test_version_1_chunks_are_read_and_upgraded_point_for_point():
    rnd = random.Random(1)
    for n in (0, 1, 2, 900, 5000):
        steps, epochs, ts, values = _columns(rnd, n, 3)
        steps = sorted(rnd.randrange(-(1 << 40), 1 << 40) for _ in range(n))  # version 1 stores plain deltas
        old = v1_chunk(steps, epochs, ts, values)
        _check(old, steps, epochs, ts, values)
        new = upgrade_chunk(old)
        assert new[0] == VERSION and len(new) < len(old) + 64
        _check(new, steps, epochs, ts, values)
        assert upgrade_chunk(new) == new


def test_a_history_of_many_chunks_of_both_versions_decodes_as_each_chunk_alone():
    rnd = random.Random(3)
    blobs = []
    for i in range(60):
        n = rnd.choice((0, 1, 2, 5, 300, 2000, 5000))
        steps, epochs, ts, values = _columns(rnd, n, i)
        if i % 5 == 4:
            steps = list(range(n))
            blobs.append(v1_chunk(steps, epochs, ts, values))
        else:
            blobs.append(encode_chunk(steps, epochs, ts, values))
    total = sum(split_chunk(b).points for b in blobs)
    columns = _Columns(total)
    at = 0
    for blob in blobs:
        at += columns.fill(at, blob, None)
    got = columns.finish()
    for name in ("step", "epoch", "timestamp", "value"):
        want = np.concatenate([decode_chunk(b)[name] for b in blobs])
        assert got[name].tobytes() == want.tobytes(), name


def test_damage_is_reported_as_damage_never_as_another_error():
    rnd = random.Random(11)
    blobs = [encode_chunk(*_columns(rnd, n, shape)) for n, shape in ((1, 0), (40, 1), (3000, 2), (20_000, 3))]
    for blob in blobs:
        for cut in sorted({0, 1, 5, 13, 14, len(blob) // 2, len(blob) - 1}):
            with pytest.raises(DamagedChunkError):
                split_chunk(blob[:cut])
        for _ in range(200):
            damaged = bytearray(blob)
            damaged[rnd.randrange(len(blob))] ^= 1 << rnd.randrange(8)
            with contextlib.suppress(DamagedChunkError):  # a flipped bit of a raw value plane still decodes
                decode_chunk_lists(bytes(damaged))
    huge = bytearray(blobs[1])
    huge[1:5] = struct.pack("<I", 0xFFFF_FFFF)  # a count no chunk of this size can hold
    with pytest.raises(DamagedChunkError):
        split_chunk(bytes(huge))
    with pytest.raises(DamagedChunkError, match="unknown metric chunk version 9"):
        split_chunk(b"\x09" + blobs[0][1:])


@pytest.mark.sqlite_only
def test_fsck_and_readers_report_a_damaged_chunk_and_read_the_rest(run, store_path):
    for i in range(3000):
        run.log_metrics({"loss": 1 / (i + 1), "acc": i / 3000}, step=i)
        if i % 1000 == 999:
            run.flush()
    run.end()
    conn = sqlite3.connect(store_path / "labledger.db")
    rowid, data = conn.execute(
        "SELECT c.rowid, c.data FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id "
        "WHERE k.name = 'loss' ORDER BY c.seq LIMIT 1"
    ).fetchone()
    damaged = bytearray(data)
    damaged[20] ^= 0xFF  # inside the compressed integer planes
    conn.execute("UPDATE metric_chunks SET data = ? WHERE rowid = ?", (bytes(damaged), rowid))
    conn.execute(
        "UPDATE metric_chunks SET count = count + 1 WHERE rowid = (SELECT c.rowid FROM metric_chunks c "
        "JOIN metric_keys k ON k.id = c.key_id WHERE k.name = 'acc' ORDER BY c.seq LIMIT 1)"
    )
    conn.commit()
    conn.close()
    problems = [p for p in fsck(store_path).problems if p.kind == "damaged chunk"]
    assert len(problems) == 2 and any("row says" in p.detail for p in problems)
    view = ll.get_run(run.id)
    with pytest.raises(StoreError, match="history of 'loss'"):
        view.metric("loss")
    assert view.summary["loss"]["count"] == 3000


def test_encoding_imports_no_numpy():
    code = (
        "import sys; from labledger.store.codec import encode_chunk, decode_chunk_lists\n"
        "blob = encode_chunk([1, 2], [None, 0], [1.7e9, 1.7e9 + 1], [0.5, float('nan')])\n"
        "assert decode_chunk_lists(blob)['step'] == [1, 2]\n"
        "assert 'numpy' not in sys.modules, 'numpy imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
