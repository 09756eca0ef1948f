"""The listing endpoints' data: experiments with their run counts, and a page of runs.

Both read through the query layer (:mod:`labledger.query.runs`) and return plain
JSON-ready dicts; :mod:`labledger.ui.app` turns them into responses.

>>> from labledger.store import open_store
>>> runs_page(open_store("/tmp/ledger", create=False), "digits", where="params.C > 1")  # doctest: +SKIP
{'total': 3, 'offset': 0, 'limit': 50, 'rows': [...], 'available_columns': [...]}
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from labledger.query.listing import column_values
from labledger.query.runs import experiments, run_rows
from labledger.store.backend import RunSelection
from labledger.ui.encoding import iso

if TYPE_CHECKING:
    from labledger.store.backend import Backend

__all__ = ["error_summary", "experiments_list", "runs_page"]


def error_summary(error: str | None) -> str | None:
    """The line that says what went wrong: a traceback's exception line (the first line after its
    frames), else the error's first line.

    >>> error_summary("Traceback (most recent call last):\\n  File ...\\nValueError: bad C\\nmore")
    'ValueError: bad C'
    """
    if not error or not error.strip():
        return None
    lines = error.strip().splitlines()
    if lines[0].startswith("Traceback"):
        framed = [i for i, line in enumerate(lines) if line.startswith((" ", "\t"))]
        after = lines[framed[-1] + 1 :] if framed else lines[1:]
        return next((line for line in after if line.strip()), lines[-1]).strip()
    return lines[0].strip()


def experiments_list(st: Backend) -> list[dict[str, Any]]:
    """Every experiment: name, description, created_at, run counts by status, last activity."""
    counts: dict[str, dict[str, int]] = {}
    last: dict[str, float] = {}
    for r in st.select_runs(RunSelection(include_children=True, brief=True)):
        by_status = counts.setdefault(r["experiment"], {})
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
        seen = max(r["start_time"] or 0.0, r["end_time"] or 0.0)
        last[r["experiment"]] = max(last.get(r["experiment"], 0.0), seen)
    return [
        {
            "name": e["name"],
            "description": e["description"],
            "created_at": iso(e["created_at"]),
            "runs": e["runs"],
            "runs_by_status": counts.get(e["name"], {}),
            "last_activity": iso(last.get(e["name"]) or e["last_run"]),
        }
        for e in experiments(st)
    ]


def _run_row(r: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "id": r["id"],
        "experiment": r["experiment"],
        "name": r["name"],
        "status": r["status"],
        "parent_id": r["parent_id"],
        "start_time": iso(r["start_time"]),
        "end_time": iso(r["end_time"]),
        "duration": (r["end_time"] or now) - r["start_time"],
        "author": r.get("author"),
        "hypothesis": r.get("hypothesis"),
        "error": error_summary(r.get("error")) if r["status"] != "finished" else None,
    }


def _available(rows: list[dict[str, Any]]) -> list[str]:
    """Every ``params.*``, ``metrics.*``, ``folds.*`` and ``tags.*`` column the rows have, sorted."""
    names: set[str] = set()
    for r in rows:
        for kind in ("params", "metrics", "folds", "tags"):
            names.update(f"{kind}.{key}" for key in r.get(kind, {}))
    return sorted(names)


def runs_page(
    st: Backend,
    experiment: str | None = None,
    *,
    where: str | None = None,
    order_by: str | None = None,
    limit: int = 50,
    offset: int = 0,
    columns: list[str] | None = None,
    include_children: bool = True,
) -> dict[str, Any]:
    """One page of the runs matching a filter, in order, with the total count.

    Each row holds the run's attributes, its ``error`` line (runs that did not finish) and
    either its ``params``, ``metrics`` (last values), ``folds`` (mean/std/n) and ``tags``, or,
    when ``columns`` names fields of the filter language, their ``values`` only.

    :raises FilterSyntaxError: ``where``, ``order_by`` or a column cannot be parsed.
    """
    rows = run_rows(experiment, st, include_children=include_children, where=where, order_by=order_by)
    page = rows[offset : offset + limit]
    now = time.time()
    out = [_run_row(r, now) for r in page]
    if columns:
        for row, values in zip(out, column_values(st, page, columns), strict=True):
            row["values"] = values
    else:
        for row, r in zip(out, page, strict=True):
            for kind in ("params", "metrics", "folds", "tags"):
                row[kind] = r.get(kind, {})
    return {
        "total": len(rows),
        "offset": offset,
        "limit": limit,
        "rows": out,
        "available_columns": _available(rows),
    }
