"""Listing runs fast: one store query for the selection, one per kind of record for their values.

The selection (experiment, children, filter, order, limit) is parsed and
checked here and run by the store (:meth:`labledger.store.backend.Backend.select_runs`);
the values of the selected runs are read per kind of record for all of them at once.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from labledger.query import damage as _damage
from labledger.query.bulk import paused_collector
from labledger.query.run_view import RunView, _nan
from labledger.store.backend import FilterTooLargeError, RunSelection

if TYPE_CHECKING:
    import pandas as pd

    from labledger.store.backend import Backend

__all__ = ["column_value", "column_values", "select_frame", "select_rows"]

OrderBy = str | list[str] | tuple[str, ...] | None


def _listing(
    st: Backend,
    experiment: str | None,
    include_children: bool,
    limit: int | None,
    where: str | None,
    order_by: OrderBy,
    brief: bool = False,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The runs matching the selection, in order, and their ids."""
    from labledger.query.filters import FilterSyntaxError, normal_form, parse, parse_order_by

    direction_of = None
    if where or order_by:
        from labledger.query.aggregation import direction_resolver

        direction_of = direction_resolver(st)
    tree = normal_form(parse(where), direction_of) if where else None
    order = parse_order_by(order_by, direction_of)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, not {limit!r}")
    try:
        rows = st.select_runs(RunSelection(experiment, include_children, tree, order, limit, brief))
    except FilterTooLargeError as e:
        raise FilterSyntaxError(where or "", e.column, e.problem) from None
    return rows, [r["id"] for r in rows]


class _JsonValues:
    """json.loads with a memo for scalar values (params repeat a lot across runs).

    A value that cannot be read becomes a :class:`labledger.query.damage.DamagedValue`
    and a warning names the run and the param.
    """

    def __init__(self) -> None:
        self.memo: dict[str, Any] = {}

    def __call__(self, text: str, run_id: str, key: str) -> Any:
        try:
            return self.memo[text]
        except KeyError:
            pass
        except TypeError:  # not text at all
            return _damage.loads(text, run_id, f"params[{key!r}]")
        try:
            value = json.loads(text)
        except ValueError:
            return _damage.loads(text, run_id, f"params[{key!r}]")
        if not isinstance(value, list | dict):
            self.memo[text] = value
        return value


def _fold_name(key: str, split: str) -> str:
    return key if split == "test" else f"{split}/{key}"


@paused_collector()
def select_rows(
    st: Backend,
    experiment: str | None,
    include_children: bool,
    limit: int | None,
    where: str | None,
    order_by: OrderBy,
) -> list[dict[str, Any]]:
    """What :func:`labledger.query.runs.run_rows` returns (built with the collector paused)."""
    rows, ids = _listing(st, experiment, include_children, limit, where, order_by)
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["params"], r["metrics"], r["tags"] = {}, {}, {}
    if not rows:
        return rows
    loads = _JsonValues()
    for run_id, key, value in st.params_of(ids):
        by_id[run_id]["params"][key] = loads(value, run_id, key)
    for run_id, key, last, _min, _max, _count in st.summaries_of(ids, brief=True):
        by_id[run_id]["metrics"][key] = float("nan") if last is None else last
    for run_id, key, split, n, mean, std in st.fold_stats_of(ids, brief=True):
        folds = by_id[run_id].setdefault("folds", {})
        folds[_fold_name(key, split)] = {"mean": _nan(mean), "std": _nan(std), "n": n}
    for run_id, key, value in st.tags_of(ids):
        by_id[run_id]["tags"][key] = value
    return rows


_BASE_COLUMNS = (
    "id",
    "experiment",
    "name",
    "status",
    "parent_id",
    "start_time",
    "end_time",
    "duration",
    "author",
    "hypothesis",
)


@paused_collector()
def select_frame(
    st: Backend,
    experiment: str | None,
    include_children: bool,
    limit: int | None,
    where: str | None,
    order_by: OrderBy,
    aggregate: str | list[str] | tuple[str, ...] | None,
) -> pd.DataFrame:
    """What :func:`labledger.query.runs.runs` returns (built with the collector paused)."""
    import pandas as pd

    rows, ids = _listing(st, experiment, include_children, limit, where, order_by, brief=True)
    n = len(rows)
    index = {r["id"]: i for i, r in enumerate(rows)}
    columns: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in _BASE_COLUMNS}
    now = time.time()
    columns["duration"] = [(r["end_time"] or now) - r["start_time"] for r in rows]
    extra: dict[str, dict[str, list[Any]]] = {"params": {}, "metrics": {}, "folds": {}, "tags": {}}

    def put(group: str, name: str, i: int, value: Any) -> None:
        col = extra[group].get(name)
        if col is None:
            col = extra[group][name] = [None] * n
        col[i] = value

    aggs = _aggregations(aggregate)
    if n:
        loads = _JsonValues()
        for run_id, key, value in st.params_of(ids):
            put("params", f"params.{key}", index[run_id], loads(value, run_id, key))
        summary_aggs = [a for a in aggs if a in ("min", "max", "count", "best")]
        direction_of = None
        if "best" in aggs:
            from labledger.query.aggregation import direction_resolver

            direction_of = direction_resolver(st)
        for run_id, key, last, lo, hi, count in st.summaries_of(ids, brief=True):
            i = index[run_id]
            put("metrics", f"metrics.{key}", i, float("nan") if last is None else last)
            for how in summary_aggs:
                if how == "best":
                    value = lo if direction_of(key) == "min" else hi  # type: ignore[misc]
                else:
                    value = {"min": lo, "max": hi, "count": count}[how]
                put("metrics", f"metrics.{key}.{how}", i, _nan(value) if how != "count" else value)
        for how in (a for a in aggs if a.startswith("mean_last_")):
            from labledger.query.aggregation import aggregate_metric

            for r in rows:
                row = st.run_row(r["id"])
                if row is None:  # removed since it was listed
                    continue
                view = RunView(st, row)
                for key in view.summary:
                    put("metrics", f"metrics.{key}.{how}", index[r["id"]], aggregate_metric(view, key, how))
        for run_id, key, split, count, mean, std in st.fold_stats_of(ids, brief=True):
            i = index[run_id]
            name = _fold_name(key, split)
            put("folds", f"folds.{name}.mean", i, _nan(mean))
            put("folds", f"folds.{name}.std", i, _nan(std))
            put("folds", f"folds.{name}.n", i, count)
        for run_id, key, value in st.tags_of(ids):
            put("tags", f"tags.{key}", index[run_id], value)
    for group in ("params", "metrics", "folds", "tags"):
        for name in sorted(extra[group]):
            columns[name] = extra[group][name]
    df = pd.DataFrame(columns)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col].astype("float64"), unit="s", utc=True)
    return df


def _aggregations(aggregate: str | list[str] | tuple[str, ...] | None) -> list[str]:
    from labledger.query.aggregation import parse_aggregation

    if not aggregate:
        return []
    items = [aggregate] if isinstance(aggregate, str) else list(aggregate)
    for how in items:
        parse_aggregation(how)
    return [h for h in dict.fromkeys(items) if h != "last"]


def column_values(st: Backend, rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """For each row of :func:`select_rows`, the value of every field in ``names`` (for ``--columns``).

    Values the rows already hold are read from them; the store reads the others
    (``dataset.<role>``, ``pipeline``, ``best(metrics.k)``, ...) as a filter would.
    """
    from labledger.query.aggregation import direction_resolver
    from labledger.query.filters import parse_field, resolve_field

    fields = {name: parse_field(name) for name in names}
    out: list[dict[str, Any]] = [{} for _ in rows]
    ids = [r["id"] for r in rows]
    index = {r["id"]: i for i, r in enumerate(rows)}
    direction_of = None
    for name, field in fields.items():
        in_rows = field.kind in ("attribute", "params", "tags", "folds") or (
            field.kind == "metrics" and field.agg == "last"
        )
        if in_rows:
            for i, r in enumerate(rows):
                out[i][name] = column_value(r, name)
            continue
        direction_of = direction_of or direction_resolver(st)
        for run_id, value in st.field_values(ids, resolve_field(field, direction_of)).items():
            out[index[run_id]][name] = value
    return out


def column_value(row: dict[str, Any], name: str) -> Any:
    """The value of field ``name`` in a row from :func:`labledger.query.runs.run_rows` (for listings)."""
    from labledger.query.filters import parse_field

    field = parse_field(name)
    if field.kind == "attribute":
        key = {"parent": "parent_id", "experiment": "experiment"}.get(field.key, field.key)
        if field.key == "duration":
            return (row.get("end_time") or time.time()) - row["start_time"]
        return row.get(key)
    if field.kind in ("params", "tags"):
        return row.get(field.kind, {}).get(field.key)
    if field.kind == "metrics":
        return row.get("metrics", {}).get(field.key)
    if field.kind == "folds":
        return row.get("folds", {}).get(field.key, {}).get(field.agg or "mean")
    return None
