"""Exporting runs to CSV, JSON or Parquet: params, summary metrics, folds and tags.

>>> from labledger.analysis.export import export_runs
>>> export_runs("digits-svm", "runs.parquet")                       # doctest: +SKIP
>>> export_runs("digits-svm", "runs.json", where="status = 'finished'")  # doctest: +SKIP

CSV and Parquet hold one row per run (``params.<key>``, ``metrics.<key>``,
``metrics.<key>.min|max|count``, ``folds.<key>.mean|std|n|values``,
``tags.<key>``); JSON holds one nested object per run, with its datasets too.
Metric histories are not exported: read them with ``ll.get_run(id).metrics``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXPORT_FORMATS", "UnsupportedExportFormatError", "export_frame", "export_records", "export_runs"]

EXPORT_FORMATS = ("csv", "json", "parquet")
StoreArg = str | os.PathLike[str] | Store | None


class UnsupportedExportFormatError(LabledgerError, ValueError):
    """The export format is not csv, json or parquet."""

    def __init__(self, fmt: str) -> None:
        self.format = fmt
        super().__init__(
            f"cannot export as {fmt!r}: use one of {', '.join(EXPORT_FORMATS)} (or name the file so)"
        )


def _fold_values(store: Store, ids: list[str]) -> dict[str, dict[str, list[float | None]]]:
    """run id → fold name → values in fold order (None for a failed fold)."""
    out: dict[str, dict[str, list[float | None]]] = {}
    rows = store.read_conn.execute(
        "SELECT f.run_id, f.key, f.split, f.value FROM json_each(?) j JOIN folds f ON f.run_id = j.value "
        "ORDER BY f.run_id, f.key, f.split, f.fold",
        (json.dumps(ids),),
    ).fetchall()
    for run_id, key, split, value in rows:
        name = key if split == "test" else f"{split}/{key}"
        out.setdefault(run_id, {}).setdefault(name, []).append(value)
    return out


def export_frame(
    experiment: str | None = None,
    where: str | None = None,
    include_children: bool = True,
    store: StoreArg = None,
) -> pd.DataFrame:
    """The flat table written to CSV and Parquet (fold values as lists)."""
    import pandas as pd

    from labledger.query.runs import runs
    from labledger.store import open_store

    st = open_store(store, create=False)  # read only: never created
    df = runs(
        experiment,
        store=st,
        include_children=include_children,
        where=where,
        aggregate=["min", "max", "count"],
    )
    values = _fold_values(st, df["id"].tolist())
    names = sorted({name for per_run in values.values() for name in per_run})
    for name in names:
        column: list[Any] = [values.get(run_id, {}).get(name) for run_id in df["id"]]
        df[f"folds.{name}.values"] = pd.Series(column, index=df.index, dtype=object)
    fold_cols = sorted(c for c in df.columns if c.startswith("folds."))
    others = [c for c in df.columns if not c.startswith("folds.") and not c.startswith("tags.")]
    tags = [c for c in df.columns if c.startswith("tags.")]
    return df[others + fold_cols + tags]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def export_records(
    experiment: str | None = None,
    where: str | None = None,
    include_children: bool = True,
    store: StoreArg = None,
) -> list[dict[str, Any]]:
    """One nested, JSON-ready dict per run (NaN and infinities become ``null``)."""
    from datetime import UTC, datetime

    from labledger.query.runs import run_rows
    from labledger.store import open_store

    st = open_store(store, create=False)  # read only: never created
    rows = run_rows(experiment, st, include_children=include_children, where=where)
    ids = json.dumps([r["id"] for r in rows])
    summaries: dict[str, dict[str, Any]] = {}
    for run_id, key, count, last, lo, hi, step in st.read_conn.execute(
        "SELECT m.run_id, m.key, m.count, m.last, m.min, m.max, m.last_step FROM json_each(?) j "
        "JOIN metric_summary m ON m.run_id = j.value",
        (ids,),
    ):
        summaries.setdefault(run_id, {})[key] = {
            "last": last,
            "min": lo,
            "max": hi,
            "count": count,
            "last_step": step,
        }
    datasets: dict[str, list[dict[str, Any]]] = {}
    for run_id, name, role, fingerprint, summary in st.read_conn.execute(
        "SELECT d.run_id, d.name, d.role, d.fingerprint, d.summary FROM json_each(?) j "
        "JOIN datasets d ON d.run_id = j.value ORDER BY d.created_at",
        (ids,),
    ):
        datasets.setdefault(run_id, []).append(
            {"name": name, "role": role, "fingerprint": fingerprint, "summary": json.loads(summary)}
        )
    values = _fold_values(st, [r["id"] for r in rows])

    def iso(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()

    records = []
    for r in rows:
        folds = {
            name: {**stats, "values": values.get(r["id"], {}).get(name, [])}
            for name, stats in r.get("folds", {}).items()
        }
        records.append(
            _clean(
                {
                    "id": r["id"],
                    "experiment": r["experiment"],
                    "name": r["name"],
                    "status": r["status"],
                    "parent_id": r["parent_id"],
                    "start_time": iso(r["start_time"]),
                    "end_time": iso(r["end_time"]),
                    "duration": None if r["end_time"] is None else r["end_time"] - r["start_time"],
                    "author": r["author"],
                    "hypothesis": r["hypothesis"],
                    "error": r["error"],
                    "params": r["params"],
                    "metrics": summaries.get(r["id"], {}),
                    "folds": folds,
                    "tags": r["tags"],
                    "datasets": datasets.get(r["id"], []),
                }
            )
        )
    return records


def _flat_for_file(df: pd.DataFrame, fmt: str) -> pd.DataFrame:
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


def export_runs(
    experiment: str | None,
    output: str | os.PathLike[str],
    format: str | None = None,
    where: str | None = None,
    include_children: bool = True,
    store: StoreArg = None,
) -> Path:
    """Write the runs of ``experiment`` (all runs when None) to ``output``; returns the path.

    ``format`` is ``csv``, ``json`` or ``parquet``; by default the file name's suffix decides.

    >>> export_runs("digits-svm", "runs.csv", where="folds.accuracy > 0.9")  # doctest: +SKIP
    """
    out = Path(output)
    fmt = (format or out.suffix.lstrip(".")).lower()
    if fmt not in EXPORT_FORMATS:
        raise UnsupportedExportFormatError(fmt or str(output))
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        records = export_records(experiment, where, include_children, store)
        out.write_text(json.dumps(records, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n")
        return out
    df = export_frame(experiment, where, include_children, store)
    df = _flat_for_file(df, fmt)
    if fmt == "csv":
        df.to_csv(out, index=False)
    else:
        df.to_parquet(out, index=False)
    return out
