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

from labledger.query.listing import column_values, key_names, select_page
from labledger.query.runs import experiments
from labledger.store.backend import RunSelection
from labledger.ui.encoding import iso

if TYPE_CHECKING:
    from labledger.store.backend import Backend

__all__ = ["error_summary", "every_run", "experiments_list", "headlines", "runs_page"]


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


def every_run(st: Backend) -> list[dict[str, Any]]:
    """The brief rows of every run, children included (what the experiments page counts)."""
    return st.select_runs(RunSelection(include_children=True, brief=True))


def experiments_list(st: Backend, runs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every experiment: name, description, created_at, run counts by status, last activity.

    ``runs``: :func:`every_run`'s rows when the caller has them already.
    """
    counts: dict[str, dict[str, int]] = {}
    last: dict[str, float] = {}
    for r in every_run(st) if runs is None else runs:
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


_BOOKKEEPING = ("epoch", "step", "time", "seconds", "lr", "learning_rate", "index")
_HELD_OUT = ("val", "valid", "validation", "test", "eval")


def _headline_rank(key: str) -> int:
    """Held-out scores first, bookkeeping (epoch, timings, learning rate) last."""
    words = [w for w in key.lower().replace("-", "_").replace("/", "_").split("_") if w]
    if any(w in _BOOKKEEPING for w in words):
        return 0
    return 2 if any(w in _HELD_OUT for w in words) else 1


def headlines(st: Backend, runs: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Per experiment, its headline metric and the best run on it (a search's candidates count).

    The headline is the fold metric most of the experiment's runs have (else the logged
    metric most have; a held-out score before a training one, never epochs or timings when
    there is another); the best run is the one with the best fold mean (or last value) in
    the metric's direction. Returns ``{experiment: {"key", "kind", "value", "std", "n",
    "run_id", "run_name", "direction"}}``.
    """
    from labledger.query.aggregation import direction_resolver

    direction_of = direction_resolver(st)
    listed = every_run(st) if runs is None else runs
    ids = [r["id"] for r in listed]
    by_id: dict[str, dict[str, Any]] = {
        r["id"]: {"id": r["id"], "name": r["name"], "folds": {}, "metrics": {}} for r in listed
    }
    if ids:
        for run_id, key, split, n, mean, std in st.fold_stats_of(ids, brief=True):
            name = key if split == "test" else f"{split}/{key}"
            by_id[run_id]["folds"][name] = {"mean": mean, "std": std, "n": n}
        for run_id, key, last, *_ in st.summaries_of(ids, brief=True):
            by_id[run_id]["metrics"][key] = last
    by_experiment: dict[str, list[dict[str, Any]]] = {}
    for r in listed:
        by_experiment.setdefault(r["experiment"], []).append(by_id[r["id"]])
    out: dict[str, dict[str, Any]] = {}
    for name, rows in by_experiment.items():
        for kind in ("folds", "metrics"):
            counts: dict[str, int] = {}
            for r in rows:
                for key in r.get(kind, {}):
                    counts[key] = counts.get(key, 0) + 1
            if not counts:
                continue
            key = max(counts, key=lambda k: (counts[k], _headline_rank(k), -len(k)))
            direction = direction_of(key)
            best: tuple[float, dict[str, Any], float | None, int | None] | None = None
            for r in rows:
                found = r.get(kind, {}).get(key)
                value, std, n = (
                    (found.get("mean"), found.get("std"), found.get("n"))
                    if kind == "folds" and found
                    else (found, None, None)
                )
                if not isinstance(value, float | int) or value != value:
                    continue
                better = best is None or (value < best[0] if direction == "min" else value > best[0])
                if better:
                    best = (float(value), r, std, n)
            if best is not None:
                out[name] = {
                    "key": key,
                    "kind": kind,
                    "value": best[0],
                    "std": best[2],
                    "n": best[3],
                    "run_id": best[1]["id"],
                    "run_name": best[1]["name"],
                    "direction": direction,
                }
            break
    return out


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


def _available(keys: dict[str, list[str]]) -> list[str]:
    """Every ``params.*``, ``metrics.*``, ``folds.*`` and ``tags.*`` column of these keys, sorted."""
    return sorted(f"{kind}.{key}" for kind, names in keys.items() for key in names)


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
    rows, page = select_page(st, experiment, include_children, where, order_by, offset, limit)
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
        "available_columns": _available(key_names(st, [r["id"] for r in rows])),
    }
