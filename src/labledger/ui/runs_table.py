"""The runs page's table: a page of runs with the columns the user picked, children grouped.

Runs are listed through the query layer with the filter language; top-level runs are
paged and each one's child runs (a search's candidates) are fetched for that page only,
grouped by successive-halving iteration when the search recorded one. With ``flat`` the
filter applies to every run, children included, and no grouping is done.

>>> from labledger.store import open_store
>>> t = runs_table(open_store("/tmp/ledger", create=False), "digits", where="params.C > 1")  # doctest: +SKIP
>>> t["total"], [c["name"] for c in t["columns"]][:2]                                       # doctest: +SKIP
(3, ['params.C', 'folds.accuracy'])
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from labledger.query.filters import parse_field
from labledger.query.listing import column_values, key_names, select_page
from labledger.query.runs import run_rows
from labledger.ui.listing import error_summary

if TYPE_CHECKING:
    from labledger.store.backend import Backend

__all__ = ["COMPLETENESS", "available_columns", "default_columns", "hyperparameters_first", "runs_table"]

#: A column computed from each listed run's parts (not a field of the filter language).
COMPLETENESS = "completeness"
ATTRIBUTE_COLUMNS = ("author", "host", "kind", "hypothesis", COMPLETENESS)
MAX_DEFAULT = 4


def field_name(kind: str, key: str) -> str | None:
    """``kind.key`` as the filter language reads it: in backticks when the key needs them
    (``params.`my key```); ``None`` for a key no field name can hold (a backtick in it).

    >>> field_name("params", "C"), field_name("tags", "a b")
    ('params.C', 'tags.`a b`')
    """
    from labledger.query.filters import FilterSyntaxError

    plain = f"{kind}.{key}"
    try:
        if parse_field(plain).key == key:
            return plain
    except FilterSyntaxError:
        pass
    if "`" in key:
        return None
    return f"{kind}.`{key}`"


def hyperparameters_first(keys: Any, coverage: dict[str, int] | None = None) -> list[str]:
    """Param keys with the hyperparameters first (the param roles completeness uses: what the
    integrations and the project declare, then the built-in rules), the most common first
    within each role when ``coverage`` counts the runs having each key, then by name.

    >>> hyperparameters_first(["cv/n_splits", "C"], {})
    ['C', 'cv/n_splits']
    """
    from labledger.lineage.completeness import param_role, param_roles

    roles = param_roles()
    counts = coverage or {}
    return sorted(keys, key=lambda k: (param_role(k, roles) != "hyperparameter", -counts.get(k, 0), k))


def _fields(kind: str, keys: Any) -> list[str]:
    return [name for name in (field_name(kind, k) for k in keys) if name is not None]


def available_columns(keys: dict[str, list[str]]) -> list[str]:
    """Every column the user may pick given the runs' keys (:func:`labledger.query.listing.key_names`):
    params, metrics (last/min/max), folds (mean ± std), tags and a few attributes."""
    out = _fields("params", sorted(keys["params"]))
    for name in _fields("metrics", sorted(keys["metrics"])):
        out += [name, f"min({name})", f"max({name})"]
    out += _fields("folds", sorted(keys["folds"]))
    out += _fields("tags", sorted(keys["tags"]))
    return out + list(ATTRIBUTE_COLUMNS)


def default_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Params whose values differ between the runs (the hyperparameters first, see
    :func:`hyperparameters_first`), then fold metrics and logged metrics."""
    seen: dict[str, set[str]] = {}
    for r in rows:
        for k, v in r.get("params", {}).items():
            seen.setdefault(k, set()).add(json.dumps(v, sort_keys=True, default=str))
    varying = sorted(k for k, vals in seen.items() if len(vals) > 1 or len(rows) == 1)
    coverage = {k: sum(1 for r in rows if k in r.get("params", {})) for k in varying}
    chosen = hyperparameters_first(varying, coverage)
    folds = dict.fromkeys(k for r in rows for k in r.get("folds", {}))
    metrics = dict.fromkeys(k for r in rows for k in r.get("metrics", {}))
    return (
        _fields("params", chosen)[:MAX_DEFAULT]
        + _fields("folds", folds)[:MAX_DEFAULT]
        + _fields("metrics", metrics)[:MAX_DEFAULT]
    )


def _column(name: str) -> dict[str, Any]:
    if name == COMPLETENESS:
        return {"name": name, "label": name, "kind": "completeness"}
    field = parse_field(name)
    return {"name": name, "label": name, "kind": field.kind}


def _cells(st: Backend, rows: list[dict[str, Any]], columns: list[dict[str, Any]]) -> list[list[Any]]:
    """Per row, per column: a value, ``{"mean", "std", "n"}`` for a fold column, or a completeness."""
    fields = [c["name"] for c in columns if c["kind"] not in ("folds", "completeness")]
    values = column_values(st, rows, fields) if fields and rows else [{} for _ in rows]
    reports = _completeness(st, rows) if any(c["kind"] == "completeness" for c in columns) else {}
    out = []
    for row, found in zip(rows, values, strict=True):
        cells: list[Any] = []
        for c in columns:
            if c["kind"] == "folds":
                cells.append(row.get("folds", {}).get(parse_field(c["name"]).key))
            elif c["kind"] == "completeness":
                cells.append(reports.get(row["id"]))
            else:
                cells.append(found.get(c["name"]))
        out.append(cells)
    return out


def _completeness(st: Backend, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from labledger.query.run_view import RunView

    out = {}
    for r in rows:
        row = st.run_row(r["id"])
        if row is not None:
            report = RunView(st, row).completeness
            out[r["id"]] = {"score": report.score, "missing": report.missing}
    return out


def _row(r: dict[str, Any], cells: list[Any], now: float) -> dict[str, Any]:
    return {
        "id": r["id"],
        "name": r["name"],
        "status": r["status"],
        "parent_id": r["parent_id"],
        "start_time": r["start_time"],
        "duration": (r["end_time"] or now) - r["start_time"],
        "error": error_summary(r.get("error")) if r["status"] != "finished" else None,
        "halving": (r.get("params", {}).get("halving/iter"), r.get("params", {}).get("halving/n_resources")),
        "cells": cells,
    }


def _groups(children: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Children in order, grouped by successive-halving iteration when they have one."""
    groups: dict[Any, dict[str, Any]] = {}
    for c in children:
        it, resources = c["halving"]
        group = groups.setdefault(it, {"iteration": it, "n_resources": resources, "runs": []})
        group["runs"].append(c)
    return sorted(groups.values(), key=lambda g: (g["iteration"] is not None, str(g["iteration"])))


def runs_table(
    st: Backend,
    experiment: str,
    *,
    where: str | None = None,
    order_by: str | None = None,
    columns: list[str] | None = None,
    offset: int = 0,
    limit: int = 50,
    flat: bool = False,
) -> dict[str, Any]:
    """``total``, ``rows`` (each with ``children`` groups unless ``flat``), ``columns``,
    ``available`` and the ``status_counts`` of the listed runs.

    :raises FilterSyntaxError: ``where``, ``order_by`` or a column cannot be parsed.
    """
    listed, page = select_page(st, experiment, flat, where, order_by, offset, limit)
    children: list[dict[str, Any]] = []
    if not flat and page:
        quoted = ", ".join("'" + r["id"] + "'" for r in page)
        children = run_rows(experiment, st, include_children=True, where=f"parent in ({quoted})")
        children.sort(key=lambda r: (r["start_time"], r["name"]))
    chosen = columns if columns is not None else default_columns(page + children)
    cols = [_column(c) for c in chosen]
    cells = _cells(st, page + children, cols)
    now = time.time()
    rows = [_row(r, c, now) for r, c in zip(page + children, cells, strict=True)]
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for child in rows[len(page) :]:
        by_parent.setdefault(child["parent_id"], []).append(child)
    top = rows[: len(page)]
    for r in top:
        kids = by_parent.get(r["id"], [])
        r["children"] = _groups(kids) if kids else []
        r["n_children"] = len(kids)
    counts: dict[str, int] = {}
    for r in listed:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {
        "total": len(listed),
        "rows": top,
        "columns": cols,
        "available": available_columns(key_names(st, [r["id"] for r in listed + children])),
        "status_counts": counts,
    }
