"""Exporting runs to a file: CSV, JSON, Parquet, or a format a plugin adds.

>>> from labledger.analysis.export import export_runs
>>> export_runs("digits-svm", "runs.parquet")                       # doctest: +SKIP
>>> export_runs("digits-svm", "runs.json", where="status = 'finished'")  # doctest: +SKIP

Formats come from the ``labledger_export_formats`` hook (the built-ins are the
plugin :mod:`labledger.analysis.export_formats`). CSV and Parquet hold one row
per run (``params.<key>``, ``metrics.<key>``, ``metrics.<key>.min|max|count``,
``folds.<key>.mean|std|n|values``, ``tags.<key>``); JSON holds one nested object
per run, with its datasets too. Metric histories are not exported: read them
with ``ll.get_run(id).metrics``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.hooks import manager as plugins
from labledger.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EXPORT_FORMATS",
    "ExportSelection",
    "ExportWriter",
    "UnsupportedExportFormatError",
    "export_formats",
    "export_frame",
    "export_records",
    "export_runs",
]

#: The formats built in (the plugin :mod:`labledger.analysis.export_formats`).
EXPORT_FORMATS = ("csv", "json", "parquet")
StoreArg = str | os.PathLike[str] | Store | None
_FORMAT_NAME = re.compile(r"[a-z0-9][a-z0-9_.+-]{0,31}")


class UnsupportedExportFormatError(LabledgerError, ValueError):
    """No built-in format nor plugin writes the export format asked for."""

    def __init__(self, fmt: str, available: tuple[str, ...] = EXPORT_FORMATS) -> None:
        self.format = fmt
        self.available = available
        super().__init__(
            f"cannot export as {fmt!r}: use one of {', '.join(available)} (or name the file so), "
            "or install a plugin that adds the format (labledger_export_formats)"
        )


@dataclass
class ExportSelection:
    """The runs an export writes, in the two shapes writers take; each is read once, when first asked for.

    >>> def write_tsv(runs: ExportSelection, path: Path) -> None:
    ...     runs.frame().to_csv(path, sep="\t", index=False)
    """

    experiment: str | None = None
    where: str | None = None
    include_children: bool = True
    store: StoreArg = None
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def frame(self) -> pd.DataFrame:
        """One flat row per run (see :func:`export_frame`); a copy a writer may change."""
        if "frame" not in self._cache:
            self._cache["frame"] = export_frame(
                self.experiment, self.where, self.include_children, self.store
            )
        frame: pd.DataFrame = self._cache["frame"].copy()
        return frame

    def records(self) -> list[dict[str, Any]]:
        """One nested, JSON-ready dict per run (see :func:`export_records`)."""
        if "records" not in self._cache:
            self._cache["records"] = export_records(
                self.experiment, self.where, self.include_children, self.store
            )
        records: list[dict[str, Any]] = self._cache["records"]
        return records


#: What a format's writer is: ``write(runs, path)`` writes the selected runs to ``path``.
ExportWriter = Callable[[ExportSelection, Path], None]


def export_formats() -> dict[str, ExportWriter]:
    """Every format a plugin offers (built-ins included), by name; for a name several plugins
    offer, the first called wins. Invalid offers are reported as a plugin warning and left out.

    >>> sorted(export_formats())  # doctest: +SKIP
    ['csv', 'json', 'parquet', 'tsv']
    """
    formats: dict[str, ExportWriter] = {}
    hook = "labledger_export_formats"
    for plugin, offered in plugins.call_each(hook).items():
        if not isinstance(offered, dict):
            plugins.report_error(
                plugin, hook, TypeError(f"returned {offered!r}; return a dict name -> writer")
            )
            continue
        for name, writer in offered.items():
            if not (isinstance(name, str) and _FORMAT_NAME.fullmatch(name)) or not callable(writer):
                problem = ValueError(f"offered {name!r}: {writer!r}; give a lower-case name and a callable")
                plugins.report_error(plugin, hook, problem)
                continue
            formats.setdefault(name, writer)
    return formats


def _fold_values(store: Store, ids: list[str]) -> dict[str, dict[str, list[float | None]]]:
    """run id → fold name → values in fold order (None for a failed fold)."""
    out: dict[str, dict[str, list[float | None]]] = {}
    for run_id, key, split, _, value in store.folds_of(ids):
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
    ids = [r["id"] for r in rows]
    summaries: dict[str, dict[str, Any]] = {}
    for run_id, key, last, lo, hi, count, _nans, step, _time in st.summaries_of(ids):
        summaries.setdefault(run_id, {})[key] = {
            "last": last,
            "min": lo,
            "max": hi,
            "count": count,
            "last_step": step,
        }
    datasets: dict[str, list[dict[str, Any]]] = {}
    for run_id, name, role, fingerprint, summary, _created in st.datasets_of(ids):
        datasets.setdefault(run_id, []).append(
            {"name": name, "role": role, "fingerprint": fingerprint, "summary": json.loads(summary)}
        )
    values = _fold_values(st, ids)

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


def export_runs(
    experiment: str | None,
    output: str | os.PathLike[str],
    format: str | None = None,
    where: str | None = None,
    include_children: bool = True,
    store: StoreArg = None,
) -> Path:
    """Write the runs of ``experiment`` (all runs when None) to ``output``; returns the path.

    ``format`` is ``csv``, ``json``, ``parquet`` or a format a plugin offers; by default
    the file name's suffix decides.

    >>> export_runs("digits-svm", "runs.csv", where="folds.accuracy > 0.9")  # doctest: +SKIP
    """
    out = Path(output)
    fmt = (format or out.suffix.lstrip(".")).lower()
    formats = export_formats()
    if fmt not in formats:
        raise UnsupportedExportFormatError(fmt or str(output), tuple(sorted(formats)))
    out.parent.mkdir(parents=True, exist_ok=True)
    formats[fmt](ExportSelection(experiment, where, include_children, store), out)
    return out
