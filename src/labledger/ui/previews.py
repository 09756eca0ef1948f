"""What the run page shows of an artifact besides its download link.

Images (PNG, JPEG, GIF, SVG) are shown inline; CSV and Parquet tables as their first rows;
a stored uncommitted diff as its lines. Reading is bounded: a preview never loads a whole
large file.

>>> table_preview(Path("predictions.csv"))  # doctest: +SKIP
{'columns': ['id', 'y_true', 'y_pred'], 'rows': [[...], ...], 'note': None}
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

__all__ = ["INLINE_TYPES", "diff_lines", "preview_kind", "table_preview"]

#: Media types the dashboard shows inline (anything else is only downloaded).
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml", "image/webp")
PREVIEW_ROWS = 20
MAX_PREVIEW_BYTES = 256 * 1024
MAX_DIFF_BYTES = 512 * 1024


def preview_kind(name: str, media_type: str | None, is_dir: bool) -> str | None:
    """``"image"``, ``"table"``, ``"diff"`` or ``None`` (no preview)."""
    if is_dir:
        return None
    lower = name.lower()
    if media_type in INLINE_TYPES or lower.endswith((".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")):
        return "image"
    if lower.endswith((".csv", ".tsv", ".parquet", ".pq")):
        return "table"
    if lower.endswith((".diff", ".patch")):
        return "diff"
    return None


def _csv(path: Path, delimiter: str) -> dict[str, Any]:
    with path.open("rb") as f:
        head = f.read(MAX_PREVIEW_BYTES)
    text = head.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if len(head) == MAX_PREVIEW_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut
    reader = csv.reader(io.StringIO("\n".join(lines[: PREVIEW_ROWS + 1])), delimiter=delimiter)
    rows = list(reader)
    if not rows:
        return {"columns": [], "rows": [], "note": "empty file"}
    return {"columns": rows[0], "rows": rows[1:], "note": None}


def _parquet(path: Path) -> dict[str, Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return {"columns": [], "rows": [], "note": "install pyarrow to preview Parquet files"}
    pf = pq.ParquetFile(path)
    batch = next(pf.iter_batches(batch_size=PREVIEW_ROWS), None)
    columns = [str(n) for n in pf.schema_arrow.names]
    if batch is None:
        return {"columns": columns, "rows": [], "note": "no rows"}
    data = batch.to_pydict()
    rows = [[data[c][i] for c in batch.schema.names] for i in range(batch.num_rows)]
    return {"columns": columns, "rows": rows, "note": f"{pf.metadata.num_rows:,} rows in all"}


def table_preview(path: Path, name: str | None = None) -> dict[str, Any]:
    """The first rows of a CSV/TSV/Parquet file: ``columns``, ``rows`` and a ``note``.

    The format is told by ``name`` (the artifact's name; a stored blob's own path has no
    extension), else by ``path``. A file that cannot be read gives an empty preview whose
    ``note`` says why.
    """
    suffix = Path(name or path.name).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return _parquet(path)
        return _csv(path, "\t" if suffix == ".tsv" else ",")
    except Exception as e:  # a preview never breaks the page
        return {"columns": [], "rows": [], "note": f"cannot preview: {type(e).__name__}: {e}"}


def diff_lines(path: Path) -> list[tuple[str, str]]:
    """A diff's lines as ``(kind, text)``: kind is ``add``, ``del``, ``hunk``, ``file`` or ``""``."""
    with path.open("rb") as f:
        data = f.read(MAX_DIFF_BYTES)
    out = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line.startswith(("+++", "---", "diff ", "index ")):
            kind = "file"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        elif line.startswith("@@"):
            kind = "hunk"
        else:
            kind = ""
        out.append((kind, line))
    return out
