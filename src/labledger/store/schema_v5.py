"""Migration 5 of the SQLite store (see :mod:`labledger.store.schema`): every metric chunk
re-encoded in version 2 of :mod:`labledger.store.codec`. Released migrations never change."""

from __future__ import annotations

import sqlite3

__all__ = ["V5"]


def V5(conn: sqlite3.Connection, batch_bytes: int = 1 << 25, batch_rows: int = 2000) -> None:
    """v5: every metric chunk re-encoded in version 2 of :mod:`labledger.store.codec` (denser).

    Chunks are read in batches of at most ``batch_bytes`` (or one chunk) and
    ``batch_rows``, so memory stays bounded; a chunk that cannot be decoded is
    left as it is (``labledger fsck`` reports it).
    """
    from labledger.store.codec import VERSION, DamagedChunkError, upgrade_chunk

    sizes = conn.execute(
        "SELECT rowid, length(data) FROM metric_chunks WHERE substr(data, 1, 1) != ? ORDER BY rowid",
        (bytes([VERSION]),),
    ).fetchall()
    while sizes:
        size = end = 0
        while end < min(len(sizes), batch_rows) and size < batch_bytes:
            size += sizes[end][1]
            end += 1
        batch, sizes = sizes[:end], sizes[end:]
        marks = ", ".join("?" * len(batch))
        rows = conn.execute(
            f"SELECT rowid, data FROM metric_chunks WHERE rowid IN ({marks})", [r for r, _ in batch]
        )
        updates = []
        for rowid, data in rows:
            try:
                updates.append((upgrade_chunk(data), rowid))
            except DamagedChunkError:
                continue
        conn.executemany("UPDATE metric_chunks SET data = ? WHERE rowid = ?", updates)
