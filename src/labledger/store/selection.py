"""Selecting runs: a :class:`~labledger.store.backend.RunSelection` as one SQL query.

Mixed into :class:`labledger.store.sqlite.Store`. The filter and the order are
compiled by :mod:`labledger.store.filter_sql`; the ties of any order go to the
newest run, and so does the order when none is given.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labledger.store.filter_sql import condition_sql, field_sql, order_by_sql
from labledger.store.reads import RUN_SELECT

if TYPE_CHECKING:
    from labledger.query.filter_syntax import Field
    from labledger.store.backend import RunSelection

__all__ = ["SelectionMixin"]

# A listing needs only these columns; source, environment and lineage JSON stay in the store.
_BRIEF_SELECT = (
    "SELECT r.id, e.name AS experiment, r.name, r.status, r.parent_id, r.start_time, r.end_time, "
    "r.author, r.hypothesis FROM runs r JOIN experiments e ON e.id = r.experiment_id"
)


class SelectionMixin:
    """:meth:`select_runs` and :meth:`field_values` of :class:`labledger.store.backend.Backend`."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:  # provided by Store
        raise NotImplementedError

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:  # provided by Store
        raise NotImplementedError

    def select_runs(self, selection: RunSelection) -> list[dict[str, Any]]:
        conds: list[str] = []
        args: list[Any] = []
        if selection.experiment is not None:
            conds.append("e.name = ?")
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
        sql += f" {order_sql}, r.id DESC" if order_sql else " ORDER BY r.id DESC"
        args.extend(order_args)
        if selection.limit is not None:
            sql += " LIMIT ?"
            args.append(selection.limit)
        return [dict(r) for r in self.query(sql, args)]

    def field_values(self, run_ids: Sequence[str], field: Field) -> dict[str, Any]:
        expr, args = field_sql(field)
        sql = (
            f"SELECT r.id, {expr} FROM json_each(?) j JOIN runs r ON r.id = j.value "
            "JOIN experiments e ON e.id = r.experiment_id"
        )
        return dict(self._fetch(sql, [*args, json.dumps(list(run_ids))]))
