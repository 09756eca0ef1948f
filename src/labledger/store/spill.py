"""Spill files: metric batches a store refused, kept on disk until it takes them.

While a store refuses writes (disk full, read-only), a run keeps what it logs;
metric batches beyond what it holds in memory go to a spill file named
``<run id>-<batch seq>-<pid>.batch`` in the store's ``spool/`` folder (else in
the temporary folder's ``labledger-spool/``). The run writes them itself once
the store takes writes again, and removes them. A process that exited before
that leaves them behind: :func:`leftover_spills` finds them and
:func:`import_spill` writes one into the store — idempotently, as the batch
keeps its sequence number (``labledger fsck --repair`` does both).

A file holds, per metric key: the key's UTF-8 length (u32, little-endian), the
key, the chunk's length (u32) and the chunk in the store's series encoding.

The other records a process could not write before it exited (params, tags, notes, folds,
datasets, pipelines, lineage, artifact records, the run's end) are kept as the store writes
that record them (:func:`labledger.store.sink.store_call`), one per file named
``<run id>-t<place in the run's outbox>-<pid>.call``, in the server's wire encoding.

>>> path = write_spill([Path("/tmp/spool")], "0123abcd", 7, {"loss": Series([0], [None], [0.0], [1.5])})
>>> read_spill(path)["loss"].values
[1.5]
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.records import MetricBatch, Series

if TYPE_CHECKING:
    from labledger.store.backend import Backend

__all__ = [
    "import_spill",
    "leftover_spills",
    "read_spill",
    "spill_folders",
    "write_call_spill",
    "write_spill",
]

_U32 = struct.Struct("<I")
_NAME = re.compile(r"^(?P<run>.+)-(?P<t>t?)(?P<seq>\d+)-(?P<pid>\d+)\.(?P<kind>batch|call)$")


def spill_folders(store_folder: Path) -> list[Path]:
    """Where spill files go, first choice first: the store's ``spool/``, then the temporary folder."""
    return [store_folder / "spool", Path(tempfile.gettempdir()) / "labledger-spool"]


def _write(folders: list[Path], name: str, data: bytes) -> Path | None:
    for folder in folders:
        path = folder / name
        part = path.with_name(path.name + ".part")  # a file cut short never takes a spill file's name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(part, "wb") as f:
                f.write(data)
            os.replace(part, path)
        except OSError:
            part.unlink(missing_ok=True)
            continue
        return path
    return None


def write_spill(folders: list[Path], run_id: str, seq: int, series: dict[str, Series]) -> Path | None:
    """Write batch ``seq`` of run ``run_id`` to the first folder that takes it; ``None`` if none does."""
    from labledger.store.codec import encode_chunk

    parts = []
    for key, s in series.items():
        k = key.encode("utf-8")
        chunk = encode_chunk(s.steps, s.epochs, s.timestamps, s.values)
        parts += [_U32.pack(len(k)), k, _U32.pack(len(chunk)), chunk]
    return _write(folders, f"{run_id}-{seq}-{os.getpid()}.batch", b"".join(parts))


def write_call_spill(
    folders: list[Path], run_id: str, ticket: int, method: str, args: tuple[Any, ...]
) -> Path | None:
    """Keep the store write ``method(*args)`` of run ``run_id`` (its ``ticket``-th record) in a file."""
    from labledger.store.remote.wire import dumps_args

    return _write(folders, f"{run_id}-t{ticket}-{os.getpid()}.call", dumps_args([method, *args]))


def read_spill(path: Path) -> dict[str, Series]:
    """The series a spill file holds, by metric key.

    :raises ValueError: the file is cut short or damaged.
    """
    from labledger.store.codec import DamagedChunkError, decode_chunk_lists

    data = path.read_bytes()
    series: dict[str, Series] = {}
    pos = 0
    try:
        while pos < len(data):
            (n,) = _U32.unpack_from(data, pos)
            key = data[pos + 4 : pos + 4 + n].decode("utf-8")
            pos += 4 + n
            (n,) = _U32.unpack_from(data, pos)
            if pos + 4 + n > len(data):
                raise ValueError(f"spill file {path} is cut short")
            cols = decode_chunk_lists(data[pos + 4 : pos + 4 + n])
            pos += 4 + n
            series[key] = Series(cols["step"], cols["epoch"], cols["timestamp"], cols["value"])
    except (struct.error, UnicodeDecodeError, DamagedChunkError, KeyError) as e:
        raise ValueError(f"spill file {path} is damaged ({e})") from e
    return series


def leftover_spills(store_folder: Path, run_ids: set[str]) -> Iterator[tuple[Path, str, int]]:
    """``(path, run id, batch seq or record place)`` of the spill files of runs in ``run_ids``, in
    the order they go into the store: each run's metric batches and records, its end last.

    Files of other stores' runs (the temporary folder is shared) are skipped.
    """
    found = []
    for folder in spill_folders(store_folder):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            m = _NAME.match(entry.name)
            ours = m is not None and m["run"] in run_ids and bool(m["t"]) == (m["kind"] == "call")
            if m is not None and ours and entry.is_file(follow_symlinks=False):
                found.append((Path(entry.path), m["run"], int(m["seq"]), m["kind"]))
    found.sort(key=lambda f: (f[1], f[3] == "call", f[2], f[0].name))
    for path, run, seq, _kind in found:
        yield path, run, seq


def import_spill(store: Backend, path: Path, run_id: str, seq: int) -> int:
    """Write a spill file's batch or record into ``store`` and remove the file; returns the metric
    points written (0 for a record).

    Every store write is idempotent: what the store already holds is not stored twice. A run's
    end is written after its other records (:func:`leftover_spills` gives that order).

    :raises ValueError: the file is damaged (it is kept).
    :raises labledger.errors.RunFinishedError: the run has ended meanwhile (the file is kept).
    """
    if path.suffix == ".call":
        method, args = _read_call(path)
        getattr(store, method)(*args)
        path.unlink(missing_ok=True)
        return 0
    batch = MetricBatch(run_id, seq, read_spill(path))
    store.write_metrics(batch)
    path.unlink(missing_ok=True)
    return len(batch)


#: The store writes a record spill file may hold (see :func:`labledger.store.sink.store_call`).
_CALLS = frozenset(
    {
        "insert_params", "insert_folds", "set_tags", "add_note", "insert_artifact", "insert_dataset",
        "record_lineage", "insert_pipeline", "end_run",
    }
)  # fmt: skip


def _read_call(path: Path) -> tuple[str, list[Any]]:
    from labledger.store.remote.wire import WireFormatError, loads_args

    try:
        method, *args = loads_args(path.read_bytes())
    except (WireFormatError, ValueError, TypeError) as e:
        raise ValueError(f"spill file {path} is damaged ({e})") from e
    if method not in _CALLS:
        raise ValueError(f"spill file {path} holds no store write ({method!r})")
    return method, args
