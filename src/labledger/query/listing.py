"""Listing runs fast: one store query for the selection, one per kind of record for their values.

The selection (experiment, children, filter, order, limit) is parsed and
checked here and run by the store (:meth:`labledger.store.backend.Backend.select_runs`);
the values of the selected runs are read per kind of record for all of them at once.
"""

from __future__ import annotations

import json
import time
from json.decoder import JSONDecoder
from typing import TYPE_CHECKING, Any

from labledger.query import damage as _damage
from labledger.query.bulk import paused_collector
from labledger.store.backend import FilterTooLargeError, RunSelection

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import pandas as pd

    from labledger.store.backend import Backend

__all__ = ["column_value", "column_values", "key_names", "select_frame", "select_page", "select_rows"]

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
    tree: Any = None
    order: tuple[Any, ...] = ()
    if where or order_by:  # the filter language loads only for a listing that uses it
        from labledger.query.aggregation import direction_resolver
        from labledger.query.filters import normal_form, parse, parse_order_by

        direction_of = direction_resolver(st)
        tree = normal_form(parse(where), direction_of) if where else None
        order = parse_order_by(order_by, direction_of)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, not {limit!r}")
    try:
        rows = st.select_runs(RunSelection(experiment, include_children, tree, order, limit, brief))
    except FilterTooLargeError as e:
        from labledger.query.filters import FilterSyntaxError

        raise FilterSyntaxError(where or "", e.column, e.problem) from None
    return rows, [r["id"] for r in rows]


#: What ``json.loads`` runs, without its per-call overhead: ``(value, end)`` of the JSON at an index.
_scan: Callable[[str, int], tuple[Any, int]] = JSONDecoder().scan_once  # type: ignore[attr-defined]
_MISSING = object()


class _ParamValues:
    """Decodes stored param values (JSON text) as ``json.loads`` does, faster: scalars are
    remembered (params repeat a lot across runs) and a value is scanned without the
    wrapper calls of ``json.loads``, which still reads whatever the scan does not take whole.

    A value that cannot be read becomes a :class:`labledger.query.damage.DamagedValue`
    and a warning names the run and the param.
    """

    def __init__(self) -> None:
        self.memo: dict[Any, Any] = {}

    def __call__(self, text: Any, run_id: str, key: str) -> Any:
        try:
            value = self.memo.get(text, _MISSING)
        except TypeError:  # not text at all
            return _damage.loads(text, run_id, f"params[{key!r}]")
        if value is _MISSING:
            value = self._decode(text, run_id, key)
        return value

    def _decode(self, text: Any, run_id: str, key: str) -> Any:
        try:
            value, end = _scan(text, 0)
        except (StopIteration, TypeError, ValueError):
            end = -1
        if end < 0 or end != len(text):  # not text, whitespace around, extra data, invalid: json.loads says
            try:
                value = json.loads(text)
            except (TypeError, ValueError):
                return _damage.loads(text, run_id, f"params[{key!r}]")
        if not isinstance(value, list | dict):
            self.memo[text] = value
        return value

    def columns(self, rows: Iterable[tuple[Any, ...]], index: dict[str, int], n: int) -> dict[str, list[Any]]:
        """``key -> one value per run`` (``None`` where a run has no such param) from
        ``(run_id, key, value)`` rows."""
        out: dict[str, list[Any]] = {}
        memo = self.memo
        remembered = memo.get
        for run_id, key, text in rows:
            try:
                value = remembered(text, _MISSING)
            except TypeError:  # not text at all
                value = _damage.loads(text, run_id, f"params[{key!r}]")
            if value is _MISSING:  # the common case inline: a whole value the scan takes
                try:
                    value, end = _scan(text, 0)
                except (StopIteration, TypeError, ValueError):
                    end = -1
                if end < 0 or end != len(text):
                    value = self._decode(text, run_id, key)
                elif not isinstance(value, list | dict):
                    memo[text] = value
            col = out.get(key)
            if col is None:
                col = out[key] = [None] * n
            col[index[run_id]] = value
        return out


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _fold_name(key: str, split: str) -> str:
    return key if split == "test" else f"{split}/{key}"


def _attach(st: Backend, rows: list[dict[str, Any]], ids: list[str]) -> None:
    """Fill each row's ``params``, ``metrics`` (last values), ``folds`` and ``tags``."""
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        r["params"], r["metrics"], r["tags"] = {}, {}, {}
    if not rows:
        return
    loads = _ParamValues()
    for run_id, key, value in st.params_of(ids):
        by_id[run_id]["params"][key] = loads(value, run_id, key)
    for run_id, key, last, _min, _max, _count in st.summaries_of(ids, brief=True):
        by_id[run_id]["metrics"][key] = float("nan") if last is None else last
    for run_id, key, split, n, mean, std in st.fold_stats_of(ids, brief=True):
        folds = by_id[run_id].setdefault("folds", {})
        folds[_fold_name(key, split)] = {"mean": _nan(mean), "std": _nan(std), "n": n}
    for run_id, key, value in st.tags_of(ids):
        by_id[run_id]["tags"][key] = value


@paused_collector()
def select_page(
    st: Backend,
    experiment: str | None,
    include_children: bool,
    where: str | None,
    order_by: OrderBy,
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every matching run's brief row (id, name, status, times...) in order, and the rows of
    ``[offset, offset + limit)`` as :func:`select_rows` gives them (with ``error``): a page
    reads the params, metrics, folds and tags of its own runs only."""
    listed, _ = _listing(st, experiment, include_children, None, where, order_by, brief=True)
    page = [dict(r) for r in listed[offset : offset + limit]]
    for r in page:
        full = st.run_row(r["id"]) if r["status"] != "finished" else None
        r["error"] = full.get("error") if full else None
    _attach(st, page, [r["id"] for r in page])
    return listed, page


def key_names(st: Backend, run_ids: list[str]) -> dict[str, list[str]]:
    """The ``params``, ``metrics``, ``folds`` (``split/key`` but for the test split) and ``tags``
    keys the runs have, each sorted."""
    keys_of = getattr(st, "keys_of", None)
    out: dict[str, set[str]] = {"params": set(), "metrics": set(), "folds": set(), "tags": set()}
    if keys_of is not None:
        for kind, key, split in keys_of(run_ids):
            out[kind].add(_fold_name(key, split) if kind == "folds" else key)
    else:  # a store without the distinct-keys read
        rows = [{"id": i} for i in run_ids]
        _attach(st, rows, run_ids)
        for r in rows:
            for kind in out:
                out[kind].update(r.get(kind, {}))
    return {kind: sorted(keys) for kind, keys in out.items()}


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
    _attach(st, rows, ids)
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


def _prefixed(prefix: str, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {f"{prefix}{key}": col for key, col in columns.items()}


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
    aggs = _aggregations(aggregate)
    n = len(rows)
    columns: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in _BASE_COLUMNS}
    now = time.time()
    ends = columns["end_time"]
    columns["duration"] = [
        (end or now) - start for start, end in zip(columns["start_time"], ends, strict=True)
    ]
    extra: dict[str, dict[str, list[Any]]] = {"params": {}, "metrics": {}, "folds": {}, "tags": {}}
    if n:
        index = {run_id: i for i, run_id in enumerate(ids)}
        extra["params"] = _prefixed("params.", _ParamValues().columns(st.params_of(ids), index, n))
        extra["metrics"] = _metric_columns(st, rows, ids, index, aggs)
        extra["folds"] = _fold_columns(st.fold_stats_of(ids, brief=True), index, n)
        extra["tags"] = _prefixed("tags.", _columns(st.tags_of(ids), index, n))
    for group in ("params", "metrics", "folds", "tags"):
        for name in sorted(extra[group]):
            columns[name] = extra[group][name]
    df = pd.DataFrame(columns)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col].astype("float64"), unit="s", utc=True)
    return df


def _columns(rows: Iterable[tuple[Any, Any, Any]], index: dict[str, int], n: int) -> dict[str, list[Any]]:
    """``key -> one value per run`` (``None`` where a run has none) from ``(run_id, key, value)`` rows."""
    out: dict[str, list[Any]] = {}
    for run_id, key, value in rows:
        col = out.get(key)
        if col is None:
            col = out[key] = [None] * n
        col[index[run_id]] = value
    return out


def _metric_columns(
    st: Backend, rows: list[dict[str, Any]], ids: list[str], index: dict[str, int], aggs: list[str]
) -> dict[str, list[Any]]:
    """``metrics.<key>`` (the last value) and ``metrics.<key>.<how>`` for each aggregation asked for."""
    n = len(ids)
    out: dict[str, list[Any]] = {}

    def put(name: str, i: int, value: Any) -> None:
        col = out.get(name)
        if col is None:
            col = out[name] = [None] * n
        col[i] = value

    summaries = st.summaries_of(ids, brief=True)
    nan = float("nan")
    summary_aggs = [a for a in aggs if a in ("min", "max", "count", "best")]
    if not summary_aggs:  # the common case, one column per key
        last_values: dict[str, list[Any]] = {}
        for run_id, key, last, *_ in summaries:
            col = last_values.get(key)
            if col is None:
                col = last_values[key] = [None] * n
            col[index[run_id]] = nan if last is None else last
        out.update(_prefixed("metrics.", last_values))
    else:
        direction_of = None
        if "best" in summary_aggs:
            from labledger.query.aggregation import direction_resolver

            direction_of = direction_resolver(st)
        for run_id, key, last, lo, hi, count in summaries:
            i = index[run_id]
            put(f"metrics.{key}", i, nan if last is None else last)
            for how in summary_aggs:
                if how == "best":
                    value = lo if direction_of(key) == "min" else hi  # type: ignore[misc]
                else:
                    value = {"min": lo, "max": hi, "count": count}[how]
                put(f"metrics.{key}.{how}", i, _nan(value) if how != "count" else value)
    for how in (a for a in aggs if a.startswith("mean_last_")):
        from labledger.query.aggregation import aggregate_metric
        from labledger.query.run_view import RunView

        for r in rows:
            row = st.run_row(r["id"])
            if row is None:  # removed since it was listed
                continue
            view = RunView(st, row)
            for key in view.summary:
                put(f"metrics.{key}.{how}", index[r["id"]], aggregate_metric(view, key, how))
    return out


def _fold_columns(rows: Iterable[tuple[Any, ...]], index: dict[str, int], n: int) -> dict[str, list[Any]]:
    """``folds.<name>.mean`` / ``.std`` / ``.n`` from ``(run_id, key, split, n, mean, std)`` rows."""
    out: dict[str, list[Any]] = {}
    for run_id, key, split, count, mean, std in rows:
        i = index[run_id]
        name = f"folds.{_fold_name(key, split)}"
        for part, value in ((".mean", _nan(mean)), (".std", _nan(std)), (".n", count)):
            col = out.get(name + part)
            if col is None:
                col = out[name + part] = [None] * n
            col[i] = value
    return out


def _aggregations(aggregate: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if not aggregate:
        return []
    from labledger.query.aggregation import parse_aggregation

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
