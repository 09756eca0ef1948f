"""The filter language compiled to SQLite: a filter in normal form becomes a parameterised condition.

The query layer parses the text and brings it into normal form
(:func:`labledger.query.filters.normal_form`: ``not`` pushed down to the
comparisons, ``best`` resolved); this module renders it over ``runs r`` joined
with ``experiments e``. Values are always bound as parameters, never pasted
into the SQL text. What SQLite cannot run (too many bound values, nested too
deeply) raises :class:`~labledger.store.backend.FilterTooLargeError` with the
filter column to point at.

>>> from labledger.query.filter_syntax import Comparison, Field
>>> condition_sql((Comparison(Field("params", "model"), "=", "svc"), False))[1]
['model', 'svc']
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labledger.store.backend import FilterTooLargeError

if TYPE_CHECKING:
    from labledger.query.filter_syntax import Comparison, Field

__all__ = ["ATTRIBUTE_SQL", "MAX_ALTERNATION", "condition_sql", "field_sql", "max_variables", "order_by_sql"]

#: The run attributes of the filter language as SQL expressions.
ATTRIBUTE_SQL: dict[str, str] = {
    "id": "r.id",
    "name": "r.name",
    "status": "r.status",
    "experiment": "e.name",
    "author": "r.author",
    "parent": "r.parent_id",
    "hypothesis": "r.hypothesis",
    "host": "r.host",
    "kind": "r.kind",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
    "duration": "(coalesce(r.end_time, CAST(strftime('%s', 'now') AS REAL)) - r.start_time)",
}

_JSON_VALUE = "CASE WHEN json_valid(p.value) THEN json_extract(p.value, '$') ELSE p.value END"

#: SQLite parses ``a OR b OR c`` as a left-deep tree and refuses trees deeper than
#: 1,000 levels: longer chains are cut into parenthesised groups of this many terms.
_GROUP = 64
#: Parenthesised levels of alternating and/or the compiled SQL may nest: SQLite's
#: parser stack (100 entries in common builds) holds about this many with the
#: statement around the filter.
MAX_ALTERNATION = 16
#: Expression-tree height a comparison takes itself (its sub-select), and the most
#: a whole filter may take (SQLite's limit is 1,000; the statement around it takes some).
_LEAF_HEIGHT = 10
_MAX_HEIGHT = 900
#: Variables kept free for what the caller adds around the filter (experiment, order, limit).
_VARIABLE_MARGIN = 1000


@functools.lru_cache(maxsize=1)
def max_variables() -> int:
    """How many values one filter may bind: SQLite's limit per statement, less a margin."""
    conn = sqlite3.connect(":memory:")
    try:
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        conn.close()
    return max(limit - _VARIABLE_MARGIN, limit // 2)


def field_sql(field: Field) -> tuple[str, list[Any]]:
    """SQL for one field's value per run (``r`` = runs, ``e`` = experiments), and its parameters.

    ``best`` must be resolved to ``min`` or ``max`` before (the query layer knows the directions).
    """
    if field.kind == "attribute":
        return ATTRIBUTE_SQL[field.key], []
    if field.kind == "params":
        return f"(SELECT {_JSON_VALUE} FROM params p WHERE p.run_id = r.id AND p.key = ?)", [field.key]
    if field.kind == "tags":
        return "(SELECT t.value FROM tags t WHERE t.run_id = r.id AND t.key = ?)", [field.key]
    if field.kind == "dataset":
        return (
            "(SELECT d.fingerprint FROM datasets d WHERE d.run_id = r.id AND d.role = ? "
            "ORDER BY d.created_at DESC LIMIT 1)",
            [field.key],
        )
    if field.kind == "pipeline":
        return "(SELECT pl.version FROM pipelines pl WHERE pl.run_id = r.id AND pl.name = ?)", [field.key]
    if field.kind == "metrics":
        agg = field.agg or "last"
        if agg not in ("last", "min", "max", "count"):
            raise ValueError(f"metric aggregation {agg!r} must be resolved before compiling")
        return f"(SELECT m.{agg} FROM metric_summary m WHERE m.run_id = r.id AND m.key = ?)", [field.key]
    if field.kind == "folds":
        if field.agg not in ("mean", "std", "min", "max", "n"):
            raise ValueError(f"unknown fold statistic {field.agg!r}")  # pragma: no cover - parser checks
        split, _, rest = field.key.partition("/")
        return (
            f"(SELECT f.{field.agg} FROM fold_stats f WHERE f.run_id = r.id AND "
            "((f.split = 'test' AND f.key = ?) OR (f.split = ? AND f.key = ?)) "
            "ORDER BY f.split = 'test' DESC LIMIT 1)",
            [field.key, split, rest],
        )
    raise ValueError(f"unknown field kind {field.kind!r}")  # pragma: no cover - the parser checks


def order_by_sql(order_by: Sequence[tuple[Field, bool]]) -> tuple[str, list[Any]]:
    """``ORDER BY`` SQL (nulls last) for ``(field, descending)`` pairs; ``""`` for none."""
    if not order_by:
        return "", []
    parts, args = [], []
    for field, descending in order_by:
        expr, field_args = field_sql(field)
        parts.append(f"{expr} {'DESC' if descending else 'ASC'} NULLS LAST")
        args.extend(field_args)
    return "ORDER BY " + ", ".join(parts), args


@dataclass
class _Sql:
    text: str
    args: list[Any]
    height: int  # expression-tree height estimate
    nest: int  # parenthesised and/or levels
    column: int  # the filter column of its most deeply nested comparison
    chain: bool = False


def condition_sql(where: Any) -> tuple[str, list[Any]]:
    """A filter in normal form as an SQL condition and its parameters.

    ``where`` is a ``(comparison, negated)`` pair or a chain with ``op`` (``AND``/``OR``)
    and ``items`` (pairs and chains). Long chains become balanced groups.

    :raises FilterTooLargeError: more values than SQLite binds, or nested too deeply.
    """
    out = _render(where, [max_variables()])
    return out.text, out.args


def _render(ir: Any, budget: list[int]) -> _Sql:
    if isinstance(ir, tuple):
        node, negate = ir
        sql, args = _comparison(node)
        budget[0] -= len(args)
        if budget[0] < 0:
            raise FilterTooLargeError(
                node.field.column,
                f"the filter binds more than {max_variables():,} values here, more than SQLite "
                "takes in one query; split it into several queries",
            )
        return _Sql(f"NOT coalesce({sql}, 0)" if negate else sql, args, _LEAF_HEIGHT, 0, node.field.column)
    # the deepest parts go last: in a left-deep chain the last term hangs nearest the root
    parts = sorted((_render(item, budget) for item in ir.items), key=lambda p: p.height)
    while len(parts) > _GROUP:  # the deepest part stays outside the groups: no extra nesting for it
        rest = parts[:-1]
        parts = [*(_flat(ir.op, rest[i : i + _GROUP]) for i in range(0, len(rest), _GROUP)), parts[-1]]
    out = _flat(ir.op, parts)
    if out.nest > MAX_ALTERNATION:
        raise FilterTooLargeError(
            out.column,
            f"'and' and 'or' alternate in more than {MAX_ALTERNATION} nested parentheses here; "
            "simplify the filter",
        )
    if out.height > _MAX_HEIGHT:
        raise FilterTooLargeError(out.column, "the filter nests too deeply for SQLite here; simplify it")
    return out


def _flat(op: str, parts: list[_Sql]) -> _Sql:
    texts: list[str] = []
    args: list[Any] = []
    height = nest = 0
    column = parts[0].column
    for i, part in enumerate(parts):
        texts.append(f"({part.text})" if part.chain else part.text)
        args.extend(part.args)
        below = len(parts) - max(i, 1)  # operators between this term and the root
        height = max(height, below + part.height)
        if part.nest + part.chain >= nest:
            nest, column = part.nest + part.chain, part.column
    return _Sql(f" {op} ".join(texts), args, height, nest, column, chain=True)


def _comparison(node: Comparison) -> tuple[str, list[Any]]:
    expr, args = field_sql(node.field)
    op, value = node.op, node.value
    if op == "isnull":
        return f"{expr} IS NULL", args
    if op == "notnull":
        return f"{expr} IS NOT NULL", args
    if op in ("like", "notlike"):
        return f"{expr} {'NOT ' if op == 'notlike' else ''}LIKE ?", [*args, value]
    if op in ("in", "notin"):
        marks = ", ".join("?" for _ in value)
        return f"{expr} {'NOT ' if op == 'notin' else ''}IN ({marks})", [*args, *value]
    if op in ("<", "<=", ">", ">="):
        # Ordering never crosses types: a text param is not "greater" than a number.
        kinds = "('integer', 'real')" if isinstance(value, int | float) else "('text')"
        return f"(typeof({expr}) IN {kinds} AND {expr} {op} ?)", [*args, *args, value]
    return f"{expr} {'=' if op == '=' else '!='} ?", [*args, value]
