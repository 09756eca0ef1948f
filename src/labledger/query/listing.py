"""Listing runs fast: one SQL query for the selection, one per table for their values.

The selection (experiment, children, filter, order, limit) is compiled by
:mod:`labledger.query.filters`; the values of the selected runs are read by joining
their ids (a JSON list) against each table's primary key.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from labledger.query import damage as _damage
from labledger.query.run_view import _RUN_SELECT, RunView, _nan
from labledger.store import Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["column_value", "column_values", "select_frame", "select_rows"]

OrderBy = str | list[str] | tuple[str, ...] | None


def _listing(
    st: Store,
    experiment: str | None,
    include_children: bool,
    limit: int | None,
    where: str | None,
    order_by: OrderBy,
    select: str = _RUN_SELECT,
) -> tuple[list[dict[str, Any]], str]:
    """The runs matching the selection, in order, and a JSON list of their ids for sub-queries."""
    from labledger.query.filters import compile_filter, compile_order_by

    direction_of = None
    if where or order_by:
        from labledger.query.aggregation import direction_resolver

        direction_of = direction_resolver(st)
    conds: list[str] = []
    args: list[Any] = []
    if experiment is not None:
        conds.append("e.name = ?")
        args.append(experiment)
    if not include_children:
        conds.append("r.parent_id IS NULL")
    if where:
        where_sql, where_args = compile_filter(where, direction_of)
        conds.append(f"({where_sql})")
        args.extend(where_args)
    sql = select + (" WHERE " + " AND ".join(conds) if conds else "")
    order_sql, order_args = compile_order_by(order_by, direction_of)
    sql += f" {order_sql}, r.id DESC" if order_sql else " ORDER BY r.id DESC"
    args.extend(order_args)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative int or None, not {limit!r}")
        sql += " LIMIT ?"
        args.append(limit)
    rows = [dict(r) for r in st.query(sql, args)]
    return rows, json.dumps([r["id"] for r in rows])


# The DataFrame needs only these columns; source, environment and lineage JSON stay in the store.
_FRAME_SELECT = (
    "SELECT r.id, e.name AS experiment, r.name, r.status, r.parent_id, r.start_time, r.end_time, "
    "r.author, r.hypothesis FROM runs r JOIN experiments e ON e.id = r.experiment_id"
)


def _sub_rows(st: Store, ids_json: str, sql: str) -> list[Any]:
    """Rows of a per-run table for the listed runs (``j.value`` is the run id)."""
    return st.read_conn.execute(
        sql.format(ids="SELECT value AS run_id FROM json_each(?)"), (ids_json,)
    ).fetchall()


_PARAMS_SQL = "SELECT p.run_id, p.key, p.value FROM ({ids}) j JOIN params p ON p.run_id = j.run_id"
_METRICS_SQL = (
    "SELECT m.run_id, m.key, m.last, m.min, m.max, m.count FROM ({ids}) j "
    "JOIN metric_summary m ON m.run_id = j.run_id"
)
_FOLDS_SQL = (
    "SELECT f.run_id, f.key, f.split, f.n, f.mean, f.std FROM ({ids}) j "
    "JOIN fold_stats f ON f.run_id = j.run_id"
)
_TAGS_SQL = "SELECT t.run_id, t.key, t.value FROM ({ids}) j JOIN tags t ON t.run_id = j.run_id"


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


def select_rows(
    st: Store,
    experiment: str | None,
    include_children: bool,
    limit: int | None,
    where: str | None,
    order_by: OrderBy,
) -> list[dict[str, Any]]:
    """What :func:`labledger.query.runs.run_rows` returns."""
    rows, ids_json = _listing(st, experiment, include_children, limit, where, order_by)
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["params"], r["metrics"], r["tags"] = {}, {}, {}
    if not rows:
        return rows
    loads = _JsonValues()
    for run_id, key, value in _sub_rows(st, ids_json, _PARAMS_SQL):
        by_id[run_id]["params"][key] = loads(value, run_id, key)
    for run_id, key, last, _min, _max, _count in _sub_rows(st, ids_json, _METRICS_SQL):
        by_id[run_id]["metrics"][key] = float("nan") if last is None else last
    for run_id, key, split, n, mean, std in _sub_rows(st, ids_json, _FOLDS_SQL):
        folds = by_id[run_id].setdefault("folds", {})
        folds[_fold_name(key, split)] = {"mean": _nan(mean), "std": _nan(std), "n": n}
    for run_id, key, value in _sub_rows(st, ids_json, _TAGS_SQL):
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


def select_frame(
    st: Store,
    experiment: str | None,
    include_children: bool,
    limit: int | None,
    where: str | None,
    order_by: OrderBy,
    aggregate: str | list[str] | tuple[str, ...] | None,
) -> pd.DataFrame:
    """What :func:`labledger.query.runs.runs` returns."""
    import pandas as pd

    rows, ids_json = _listing(st, experiment, include_children, limit, where, order_by, _FRAME_SELECT)
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
        for run_id, key, value in _sub_rows(st, ids_json, _PARAMS_SQL):
            put("params", f"params.{key}", index[run_id], loads(value, run_id, key))
        summary_aggs = [a for a in aggs if a in ("min", "max", "count", "best")]
        direction_of = None
        if "best" in aggs:
            from labledger.query.aggregation import direction_resolver

            direction_of = direction_resolver(st)
        for run_id, key, last, lo, hi, count in _sub_rows(st, ids_json, _METRICS_SQL):
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
                view = RunView(st, st.query(_RUN_SELECT + " WHERE r.id = ?", (r["id"],))[0])
                for key in view.summary:
                    put("metrics", f"metrics.{key}.{how}", index[r["id"]], aggregate_metric(view, key, how))
        for run_id, key, split, count, mean, std in _sub_rows(st, ids_json, _FOLDS_SQL):
            i = index[run_id]
            name = _fold_name(key, split)
            put("folds", f"folds.{name}.mean", i, _nan(mean))
            put("folds", f"folds.{name}.std", i, _nan(std))
            put("folds", f"folds.{name}.n", i, count)
        for run_id, key, value in _sub_rows(st, ids_json, _TAGS_SQL):
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


def column_values(st: Store, rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """For each row of :func:`select_rows`, the value of every field in ``names`` (for ``--columns``).

    Values the rows already hold are read from them; the others (``dataset.<role>``,
    ``pipeline``, ``best(metrics.k)``, ...) are computed in SQL with the filter compiler.
    """
    from labledger.query.aggregation import direction_resolver
    from labledger.query.filters import compile_field, parse_field

    fields = {name: parse_field(name) for name in names}
    out: list[dict[str, Any]] = [{} for _ in rows]
    ids_json = json.dumps([r["id"] for r in rows])
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
        expr, args = compile_field(field, direction_of)
        sql = (
            f"SELECT r.id, {expr} FROM json_each(?) j JOIN runs r ON r.id = j.value "
            "JOIN experiments e ON e.id = r.experiment_id"
        )
        for run_id, value in st.read_conn.execute(sql, [*args, ids_json]).fetchall():
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
