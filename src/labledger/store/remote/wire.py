"""The wire format of a labledger server's HTTP API, spoken by the server and its clients.

A store call travels as ``POST /api/v1/read/<method>`` (the reads of
:class:`~labledger.store.backend.Backend`; a ``read`` token may send them) or
``POST /api/v1/write/<method>`` (the writes), with the JSON body ``{"args": [...]}`` and the
answer ``{"result": ...}``. Values the JSON types cannot hold travel tagged: tuples, NaN and
infinities, bytes, and the records and filter nodes of :func:`record_types` (never any other
class). Metric batches travel as compressed binary (:func:`encode_batch`), stored chunks as
binary frames (:func:`encode_chunks`).

>>> from labledger.records import MetricBatch, Series
>>> batch = MetricBatch("r1", 3, {"loss": Series([0, 1], [None, 1], [1.0, 2.0], [0.5, 0.25])})
>>> decode_batch(encode_batch(batch)) == batch
True
>>> decode(encode((1, float("inf"), b"x")))
(1, inf, b'x')
"""

from __future__ import annotations

import base64
import json
import math
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import fields, is_dataclass
from typing import Any

from labledger.errors import LabledgerError

__all__ = [
    "API",
    "BATCH_TYPE",
    "CHUNKS_TYPE",
    "READ_METHODS",
    "WRITE_METHODS",
    "WireFormatError",
    "decode",
    "decode_batch",
    "decode_chunks",
    "dumps_args",
    "dumps_result",
    "encode",
    "encode_batch",
    "encode_chunks",
    "loads_args",
    "loads_result",
    "record_types",
]

#: The API's version, the ``v1`` of its paths.
API = 1
#: The media type of a compressed metric batch.
BATCH_TYPE = "application/x-labledger-batch"
#: The media type of stored metric chunks.
CHUNKS_TYPE = "application/x-labledger-chunks"

#: Backend writes, sent as ``POST /api/v1/write/<method>`` (``write_metrics``: a binary batch).
WRITE_METHODS = frozenset(
    {
        "ensure_experiment", "insert_run", "end_run", "heartbeat", "insert_params", "set_tags",
        "add_note", "write_metrics", "insert_folds", "insert_dataset", "record_lineage",
        "insert_pipeline", "insert_artifact", "set_setting",
    }
)  # fmt: skip
#: Backend reads, sent as ``POST /api/v1/read/<method>`` (``metric_chunks`` answers binary frames).
READ_METHODS = frozenset(
    {
        "run_row", "run_row_by_name", "run_rows_by_prefix", "child_rows", "select_runs",
        "field_values", "experiment_rows", "run_ids", "runs_version", "latest_reproduction",
        "params_of", "tags_of", "summaries_of", "fold_stats_of", "folds_of", "datasets_of",
        "tag_history_rows", "note_rows", "artifact_rows", "pipeline_rows", "artifact_sha",
        "artifact_by_content", "package_set", "setting", "settings", "metric_sizes",
        "metric_chunks", "keys_of",
    }
)  # fmt: skip

_MAGIC = b"LLB1"
_NO_EPOCH = -(2**63)
_LITTLE = sys.byteorder == "little"


class WireFormatError(LabledgerError, ValueError):
    """A request or answer that is not in the wire format (damaged, or from another program)."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"not a labledger API message: {problem}")


def _record_types() -> dict[str, type]:
    from labledger.query.filter_syntax import Comparison, Field, Logical, Not
    from labledger.query.filters import Chain
    from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord, Series
    from labledger.store.backend import RunSelection

    kinds: list[type] = [ArtifactRecord, DatasetRecord, PipelineRecord, MetricBatch, Series]
    kinds += [RunSelection, Field, Comparison, Logical, Not, Chain]
    return {kind.__name__: kind for kind in kinds}


_TYPES: dict[str, type] | None = None


def record_types() -> dict[str, type]:
    """The classes that may travel (by name): labledger's records and filter nodes, nothing else."""
    global _TYPES
    if _TYPES is None:
        _TYPES = _record_types()
    return _TYPES


def _names(value: Any) -> tuple[str, ...]:
    if is_dataclass(value):
        return tuple(f.name for f in fields(value))
    return tuple(value.__match_args__)


def encode(value: Any) -> Any:
    """``value`` as JSON-compatible data (tags for tuples, NaN/infinity, bytes and records).

    >>> encode((1, float("nan")))
    {'__t': 'tuple', 'v': [1, {'__f': 'nan'}]}
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"__f": "nan" if value != value else ("inf" if value > 0 else "-inf")}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"__t": "tuple", "v": [encode(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"__d": {k: encode(v) for k, v in value.items()}}
        raise WireFormatError(f"a dict with a key that is not a string: {next(iter(value))!r}")
    if isinstance(value, bytes | bytearray | memoryview):
        return {"__b": base64.b64encode(bytes(value)).decode("ascii")}
    kind = type(value).__name__
    if record_types().get(kind) is type(value):
        return {"__t": kind, "v": {name: encode(getattr(value, name)) for name in _names(value)}}
    raise WireFormatError(f"a value of type {kind} cannot travel")


def decode(data: Any) -> Any:
    """The value :func:`encode` made ``data`` from.

    :raises WireFormatError: ``data`` names an unknown type or is malformed.
    """
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    try:
        if "__d" in data:
            return {k: decode(v) for k, v in data["__d"].items()}
        if "__f" in data:
            return float(data["__f"])
        if "__b" in data:
            return base64.b64decode(data["__b"], validate=True)
        kind = data["__t"]
        if kind == "tuple":
            return tuple(decode(v) for v in data["v"])
        cls = record_types().get(kind)
        if cls is None:
            raise WireFormatError(f"unknown type {kind!r}")
        return cls(**{k: decode(v) for k, v in data["v"].items()})
    except WireFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise WireFormatError(f"malformed value ({type(e).__name__}: {e})") from e


def dumps_args(args: Iterable[Any]) -> bytes:
    """The body of a store call: ``{"args": [...]}``."""
    return json.dumps({"args": [encode(a) for a in args]}, separators=(",", ":")).encode()


def loads_args(body: bytes) -> list[Any]:
    """The arguments of a store call's body.

    :raises WireFormatError: the body is not such a call.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise WireFormatError(f"the body is not JSON ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("args"), list):
        raise WireFormatError('the body must be {"args": [...]}')
    return [decode(a) for a in data["args"]]


def dumps_result(result: Any) -> bytes:
    """The body of a store call's answer: ``{"result": ...}``."""
    return json.dumps({"result": encode(result)}, separators=(",", ":")).encode()


def loads_result(body: bytes) -> Any:
    """The result in an answer's body."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise WireFormatError(f"the answer is not JSON ({e})") from e
    if not isinstance(data, dict) or "result" not in data:
        raise WireFormatError('the answer must be {"result": ...}')
    return decode(data["result"])


# -- metric batches -------------------------------------------------------------


def _raw(a: array) -> bytes:
    if not _LITTLE:
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


def _column(typecode: str, payload: memoryview, start: int, n: int) -> tuple[array, int]:
    a = array(typecode)
    end = start + n * a.itemsize
    if end > len(payload):
        raise WireFormatError("a metric batch is cut short")
    a.frombytes(payload[start:end])
    if not _LITTLE:
        a.byteswap()
    return a, end


def encode_batch(batch: Any, level: int = 1) -> bytes:
    """A :class:`~labledger.records.MetricBatch` as compressed bytes, every value exact
    (steps and epochs as 64-bit integers, timestamps and values as 64-bit floats)."""
    keys: list[list[Any]] = []
    parts: list[bytes] = []
    for key, s in batch.series.items():
        n = min(len(s.values), len(s.steps), len(s.epochs), len(s.timestamps))
        keys.append([key, n])
        parts.append(_raw(array("q", s.steps[:n])))
        parts.append(_raw(array("q", [_NO_EPOCH if e is None else e for e in s.epochs[:n]])))
        parts.append(_raw(array("d", s.timestamps[:n])))
        parts.append(_raw(array("d", s.values[:n])))
    header = json.dumps({"run_id": batch.run_id, "seq": batch.seq, "keys": keys}).encode()
    return _MAGIC + zlib.compress(struct.pack("<I", len(header)) + header + b"".join(parts), level)


def decode_batch(body: bytes, max_size: int = 1 << 30) -> Any:
    """The :class:`~labledger.records.MetricBatch` :func:`encode_batch` made ``body`` from.

    :param max_size: the most bytes the batch may inflate to.
    :raises WireFormatError: ``body`` is not such a batch, or inflates past ``max_size``.
    """
    from labledger.records import MetricBatch, Series

    if not body.startswith(_MAGIC):
        raise WireFormatError("a metric batch must start with LLB1")
    try:
        inflater = zlib.decompressobj()
        payload = memoryview(inflater.decompress(body[len(_MAGIC) :], max_size))
        if inflater.unconsumed_tail:
            raise WireFormatError(f"a metric batch inflates past {max_size} bytes")
        (size,) = struct.unpack_from("<I", payload)
        header = json.loads(bytes(payload[4 : 4 + size]))
        at = 4 + size
        series: dict[str, Any] = {}
        for key, n in header["keys"]:
            if not isinstance(key, str) or not isinstance(n, int) or n < 0:
                raise WireFormatError("a metric batch's key list is malformed")
            steps, at = _column("q", payload, at, n)
            epochs, at = _column("q", payload, at, n)
            stamps, at = _column("d", payload, at, n)
            values, at = _column("d", payload, at, n)
            marks = [None if e == _NO_EPOCH else e for e in epochs]
            series[key] = Series(steps.tolist(), marks, stamps.tolist(), values.tolist())
        run_id, seq = header["run_id"], header["seq"]
    except WireFormatError:
        raise
    except (zlib.error, struct.error, KeyError, TypeError, ValueError) as e:
        raise WireFormatError(f"a metric batch is malformed ({type(e).__name__}: {e})") from e
    if not isinstance(run_id, str) or not isinstance(seq, int):
        raise WireFormatError("a metric batch's run id or sequence number is malformed")
    return MetricBatch(run_id, seq, series)


# -- stored chunks --------------------------------------------------------------


def encode_chunks(chunks: Iterable[tuple[str, int, bytes]]) -> Iterator[bytes]:
    """Frames of ``(key, points, chunk)``: key length (2 bytes), key, points (8), chunk length (4), chunk."""
    for key, points, chunk in chunks:
        name = key.encode()
        yield struct.pack("<H", len(name)) + name + struct.pack("<QI", points, len(chunk)) + bytes(chunk)


def decode_chunks(body: bytes) -> Iterator[tuple[str, int, bytes]]:
    """The ``(key, points, chunk)`` of frames :func:`encode_chunks` made.

    :raises WireFormatError: the frames are cut short.
    """
    view = memoryview(body)
    at = 0
    try:
        while at < len(view):
            (size,) = struct.unpack_from("<H", view, at)
            key = bytes(view[at + 2 : at + 2 + size]).decode()
            at += 2 + size
            points, length = struct.unpack_from("<QI", view, at)
            at += 12
            if at + length > len(view):
                raise WireFormatError("a metric chunk is cut short")
            yield key, points, bytes(view[at : at + length])
            at += length
    except (struct.error, UnicodeDecodeError) as e:
        raise WireFormatError(f"metric chunks are malformed ({e})") from e
