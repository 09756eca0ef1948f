"""The server API's wire format: every value the Backend passes travels exactly, and nothing else does."""

from __future__ import annotations

import json
import math
import zlib

import pytest

from labledger.query.filter_syntax import parse
from labledger.query.filters import normal_form
from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord, Series
from labledger.store.backend import Backend, RunSelection
from labledger.store.remote import wire


def test_the_method_lists_cover_the_backend_exactly() -> None:
    methods = {name for name in vars(Backend) if not name.startswith("_") and callable(vars(Backend)[name])}
    lifecycle = {"create", "transaction", "in_transaction", "snapshot"}
    assert methods - lifecycle <= wire.WRITE_METHODS | wire.READ_METHODS
    assert not wire.WRITE_METHODS & wire.READ_METHODS


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        1.5,
        "naïve ✓",
        [1, [2, (3, 4)]],
        (1, "a", None),
        {"a": {"b": [1.0, (2,)]}, "__t": "not a tag"},
        b"\x00\xff",
        ArtifactRecord("m", "model", "a" * 64, 3, "x/y", {"k": [1]}, "/p", 1.25, [("a/b", "b" * 64, 2)]),
        ArtifactRecord("m", "file", "a" * 64, 3, "x/y", {}, "/p", 1.25, None),
        DatasetRecord("train", "train", "f" * 16, {"rows": 3}, 2.0),
        PipelineRecord("prep", "1", {"steps": ["a"]}, None, 3.0),
        RunSelection(experiment="e", include_children=False, limit=5, brief=True),
    ],
)
def test_values_travel_exactly(value: object) -> None:
    assert wire.loads_args(wire.dumps_args([value])) == [value]
    assert wire.loads_result(wire.dumps_result(value)) == value


def test_non_finite_floats_travel_as_tags() -> None:
    got = wire.loads_result(wire.dumps_result([math.inf, -math.inf, math.nan]))
    assert got[:2] == [math.inf, -math.inf] and math.isnan(got[2])
    assert b"NaN" not in wire.dumps_result(math.nan)  # strict JSON for any server or proxy


def test_a_normal_form_filter_travels() -> None:
    where = normal_form(parse("params.lr > 0.01 and not (status = 'failed' or metrics.`val loss` < 0.5)"))
    selection = RunSelection(experiment="x", where=where, order_by=((where.items[0][0].field, True),))
    assert wire.loads_args(wire.dumps_args([selection])) == [selection]


def test_only_known_classes_are_built() -> None:
    body = json.dumps({"args": [{"__t": "Popen", "v": {"args": "rm -rf /"}}]}).encode()
    with pytest.raises(wire.WireFormatError, match="unknown type 'Popen'"):
        wire.loads_args(body)
    with pytest.raises(wire.WireFormatError, match="cannot travel"):
        wire.dumps_args([object()])


MALFORMED = [b"", b"not json", b"[1]", b'{"args": 3}', b'{"args": [{"__t": "Field", "v": 3}]}']


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_calls_are_refused_clearly(body: bytes) -> None:
    with pytest.raises(wire.WireFormatError):
        wire.loads_args(body)


def _batch(n: int = 1000) -> MetricBatch:
    return MetricBatch(
        "run-1",
        7,
        {
            "loss": Series(list(range(n)), [i // 100 for i in range(n)], [1.7e9 + i / 3 for i in range(n)],
                           [1 / (i + 1) for i in range(n)]),
            "lr": Series([0, 2**62], [None, None], [0.1, 0.2], [-0.0, 1e-308]),
        },
    )  # fmt: skip


def test_a_batch_travels_exactly_and_compressed() -> None:
    batch = _batch()
    body = wire.encode_batch(batch)
    assert wire.decode_batch(body) == batch
    assert len(body) < 32 * 1002


def test_a_batch_keeps_nan_and_drops_a_half_logged_point() -> None:
    batch = MetricBatch("r", 0, {"x": Series([1, 2], [None, None], [1.0, 2.0], [math.nan])})
    got = wire.decode_batch(wire.encode_batch(batch)).series["x"]
    assert got.steps == [1] and math.isnan(got.values[0])


def test_a_batch_bomb_is_refused_before_it_inflates() -> None:
    bomb = b"LLB1" + zlib.compress(b"\x00" * (20 << 20))
    with pytest.raises(wire.WireFormatError, match="inflates past"):
        wire.decode_batch(bomb, max_size=1 << 20)


@pytest.mark.parametrize("cut", [4, 10, 40, -3])
def test_a_damaged_batch_is_refused(cut: int) -> None:
    body = wire.encode_batch(_batch(10))
    payload = zlib.decompress(body[4:])
    with pytest.raises(wire.WireFormatError):
        wire.decode_batch(b"LLB1" + zlib.compress(payload[:cut]))
    with pytest.raises(wire.WireFormatError):
        wire.decode_batch(b"XXXX" + body[4:])


def test_chunk_frames_round_trip_and_refuse_truncation() -> None:
    chunks = [("loss", 3, b"abc"), ("vål", 0, b""), ("k" * 300, 2**40, bytes(range(256)))]
    body = b"".join(wire.encode_chunks(chunks))
    assert list(wire.decode_chunks(body)) == chunks
    with pytest.raises(wire.WireFormatError):
        list(wire.decode_chunks(body[:-1]))
