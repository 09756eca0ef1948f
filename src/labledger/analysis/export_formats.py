"""The built-in export formats, CSV, JSON and Parquet: a plugin registered like any third-party one.

It answers ``labledger_export_formats`` ``trylast``, so a plugin offering one of
these names replaces the built-in writer. Light at import: pandas loads when a
file is written.

>>> from labledger.analysis.export_formats import labledger_export_formats
>>> sorted(labledger_export_formats())
['csv', 'json', 'parquet']
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.hooks.manager import hookimpl

if TYPE_CHECKING:
    import pandas as pd

    from labledger.analysis.export import ExportSelection, ExportWriter

__all__ = ["file_ready", "labledger_export_formats", "write_csv", "write_json", "write_parquet"]


def file_ready(df: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """CSV gets lists/dicts as JSON text; Parquet gets mixed-type columns as JSON text."""
    import pandas as pd

    df = df.copy()
    for col in df.columns:
        if df[col].dtype != object:
            continue
        values = [v for v in df[col] if v is not None and not (isinstance(v, float) and math.isnan(v))]
        kinds = {type(v) for v in values}
        is_fold_list = col.endswith(".values") and col.startswith("folds.")
        if fmt == "parquet" and is_fold_list:
            lists: list[Any] = [
                None if v is None else [math.nan if x is None else float(x) for x in v] for v in df[col]
            ]
            df[col] = pd.Series(lists, index=df.index, dtype=object)
        elif any(k in (list, dict) for k in kinds) or (fmt == "parquet" and len(kinds) > 1):
            df[col] = [None if v is None else json.dumps(v, default=str) for v in df[col]]
    return df


def write_csv(runs: ExportSelection, path: Path) -> None:
    """One row per run; lists and dicts as JSON text."""
    file_ready(runs.frame(), "csv").to_csv(path, index=False)


def write_parquet(runs: ExportSelection, path: Path) -> None:
    """One row per run; fold values as lists of floats (needs pyarrow)."""
    file_ready(runs.frame(), "parquet").to_parquet(path, index=False)


def write_json(runs: ExportSelection, path: Path) -> None:
    """One nested object per run (NaN and infinities as ``null``), with its datasets."""
    text = json.dumps(runs.records(), indent=2, ensure_ascii=False, allow_nan=False, default=str)
    path.write_text(text + "\n", encoding="utf-8")


@hookimpl(trylast=True)
def labledger_export_formats() -> dict[str, ExportWriter]:
    return {"csv": write_csv, "json": write_json, "parquet": write_parquet}
