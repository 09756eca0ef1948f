"""Selecting runs from PostgreSQL: a :class:`~labledger.store.backend.RunSelection` as one query.

The rows and their order are those of the SQLite store (:mod:`labledger.store.selection`): the
filter and the order are compiled by :mod:`labledger.store.postgres.filter_sql`, ties go to the
newest run, and so does the order when none is given.

>>> from labledger.store.backend import RunSelection
>>> from labledger.store.postgres import connect
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     [r["name"] for r in select_runs(conn, RunSelection("digits", limit=2, brief=True))]
['svc-3', 'svc-2']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labledger.store.postgres.filter_sql import condition_sql, order_by_sql, typed_field
from labledger.store.postgres.reads_base import dicts, epoch, fetch
from labledger.store.postgres.reads_runs import RUN_SELECT

if TYPE_CHECKING:
    import psycopg

    from labledger.query.filter_syntax import Field
    from labledger.store.backend import RunSelection

__all__ = ["field_values", "select_runs"]

# A listing needs only these columns; source, environment and lineage JSON stay in the store.
_BRIEF_SELECT = (
    "SELECT r.id, e.name AS experiment, r.name, r.status, r.parent_id, "
    f"{epoch('r.start_time', 'start_time')}, {epoch('r.end_time', 'end_time')}, r.author, r.hypothesis "
    "FROM runs r JOIN experiments e ON e.id = r.experiment_id"
)
_NEWEST = 'r.id COLLATE "C" DESC'


def select_runs(conn: psycopg.Connection[Any], selection: RunSelection) -> list[dict[str, Any]]:
    """The rows of the selected runs (brief rows when asked), in order, as the SQLite store gives them.

    >>> select_runs(conn, RunSelection(include_children=False, limit=1))[0]["status"]  # doctest: +SKIP
    'finished'
    """
    conds: list[str] = []
    args: list[Any] = []
    if selection.experiment is not None:
        conds.append("e.name = %s")
        args.append(selection.experiment)
    if not selection.include_children:
        conds.append("r.parent_id IS NULL")
    if selection.where is not None:
        where_sql, where_args = condition_sql(selection.where)
        conds.append(f"({where_sql})")
        args.extend(where_args)
    sql = (_BRIEF_SELECT if selection.brief else RUN_SELECT) + (
        " WHERE " + " AND ".join(conds) if conds else ""
    )
    order_sql, order_args = order_by_sql(selection.order_by)
    sql += f" ORDER BY {order_sql}, {_NEWEST}" if order_sql else f" ORDER BY {_NEWEST}"
    args.extend(order_args)
    if selection.limit is not None:
        sql += " LIMIT %s"
        args.append(selection.limit)
    return dicts(conn, sql, args)


def field_values(conn: psycopg.Connection[Any], run_ids: Sequence[str], field: Field) -> dict[str, Any]:
    """One field's value per run id (unknown runs left out), as the SQLite store reads it.

    >>> field_values(conn, ["0123abcd"], Field("params", "lr"))  # doctest: +SKIP
    {'0123abcd': 0.1}
    """
    f = typed_field(field)
    if field.kind == "params":
        expr = "(SELECT p.value FROM params p WHERE p.run_id = r.id AND p.key = %s)"
    else:
        expr = f.wrap(f"CASE {f.t} WHEN 'n' THEN {f.n} ELSE NULL END") if f.n != "NULL::numeric" else ""
        expr = expr or f.wrap(f.s)
    sql = (
        f"SELECT r.id, {expr} FROM runs r JOIN experiments e ON e.id = r.experiment_id "
        "WHERE r.id = ANY(%s::text[])"
    )
    rows = fetch(conn, sql, [*f.args, list(run_ids)])
    if field.kind == "params":
        return {run_id: None if text is None else sqlite_json(text) for run_id, text in rows}
    return dict(rows)


def sqlite_json(text: str) -> Any:
    """A stored param (JSON text) as SQLite's ``json_extract`` reads it: booleans are 1 and 0,
    arrays and objects their compact JSON text, text that is no JSON (``NaN``) the text itself.

    >>> [sqlite_json(t) for t in ("true", "[1, 2]", "NaN", '"a"')]
    [1, '[1,2]', 'NaN', 'a']
    """

    def refuse(word: str) -> Any:
        raise ValueError(word)

    try:
        value = json.loads(text, parse_constant=refuse)
    except ValueError:
        return text
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return float(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value
