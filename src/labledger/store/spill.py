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
from typing import TYPE_CHECKING

from labledger.records import MetricBatch, Series

if TYPE_CHECKING:
    from labledger.store.backend import Backend

__all__ = ["import_spill", "leftover_spills", "read_spill", "spill_folders", "write_spill"]

_U32 = struct.Struct("<I")
_NAME = re.compile(r"^(?P<run>.+)-(?P<seq>\d+)-(?P<pid>\d+)\.batch$")


def spill_folders(store_folder: Path) -> list[Path]:
    """Where spill files go, first choice first: the store's ``spool/``, then the temporary folder."""
    return [store_folder / "spool", Path(tempfile.gettempdir()) / "labledger-spool"]


def write_spill(folders: list[Path], run_id: str, seq: int, series: dict[str, Series]) -> Path | None:
    """Write batch ``seq`` of run ``run_id`` to the first folder that takes it; ``None`` if none does."""
    from labledger.store.codec import encode_chunk

    parts = []
    for key, s in series.items():
        k = key.encode("utf-8")
        chunk = encode_chunk(s.steps, s.epochs, s.timestamps, s.values)
        parts += [_U32.pack(len(k)), k, _U32.pack(len(chunk)), chunk]
    data = b"".join(parts)
    for folder in folders:
        path = folder / f"{run_id}-{seq}-{os.getpid()}.batch"
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
    """``(path, run id, batch seq)`` of the spill files of runs in ``run_ids``, in batch order.

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
            if m and m["run"] in run_ids and entry.is_file(follow_symlinks=False):
                found.append((Path(entry.path), m["run"], int(m["seq"])))
    yield from sorted(found, key=lambda f: (f[1], f[2], f[0].name))


def import_spill(store: Backend, path: Path, run_id: str, seq: int) -> int:
    """Write a spill file's batch into ``store`` and remove the file; returns its points.

    A batch the store already holds (under its run and sequence number) is not stored twice.

    :raises ValueError: the file is damaged (it is kept).
    :raises labledger.errors.RunFinishedError: the run has ended meanwhile (the file is kept).
    """
    batch = MetricBatch(run_id, seq, read_spill(path))
    store.write_metrics(batch)
    path.unlink(missing_ok=True)
    return len(batch)
