"""The filter language for runs: text → tokens → AST → parameterised SQL.

>>> from labledger.filters import compile_filter
>>> sql, args = compile_filter('metrics.val_acc > 0.9 and params.model = "svc"')
>>> args
['val_acc', 0.9, 'model', 'svc']

Grammar (keywords are case-insensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := field op value                   op: = != <> < <= > >=
                | field ["not"] "in" "(" value ("," value)* ")"
                | field ["not"] "like" string
                | field "is" ["not"] "null"
    field      := name | func "(" name ")"          func: last min max best count
    value      := 'text' | "text" | number | true | false

Names: ``params.<key>``, ``metrics.<key>`` (last value; ``min(metrics.k)``,
``max(…)``, ``best(…)``, ``count(…)`` aggregate the history summary),
``folds.<key>`` / ``folds.<key>.mean|std|min|max|n`` (test split; another split
as ``folds.<split>/<key>``), ``tags.<key>``, ``dataset.<role>`` (fingerprint,
e.g. ``dataset.train``), ``pipeline`` / ``pipeline.<name>`` (version), and the
attributes ``id``, ``name``, ``status``, ``experiment``, ``author``, ``parent``,
``hypothesis``, ``host``, ``start_time``, ``end_time``, ``duration``. A key with
unusual characters is written in backticks: ``params.`learning rate```.

Values are always bound as SQL parameters, never pasted into the SQL text.
A run without the key never matches a comparison (SQL ``NULL`` semantics);
test for absence with ``is null``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labledger.filter_syntax import (
    ATTRIBUTES,
    Comparison,
    Field,
    FilterSyntaxError,
    Logical,
    Not,
    parse,
    parse_field,
)

__all__ = [
    "Comparison",
    "Field",
    "FilterSyntaxError",
    "Logical",
    "Not",
    "compile_field",
    "compile_filter",
    "compile_order_by",
    "parse",
    "parse_field",
]

# -- SQL ----------------------------------------------------------------------

DirectionOf = Callable[[str], str]

_JSON_VALUE = "CASE WHEN json_valid(p.value) THEN json_extract(p.value, '$') ELSE p.value END"


def compile_field(field: Field, direction_of: DirectionOf | None = None) -> tuple[str, list[Any]]:
    """SQL for one field's value per run (``r`` = runs, ``e`` = experiments), and its parameters."""
    if field.kind == "attribute":
        return ATTRIBUTES[field.key], []
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
        if agg == "best":
            agg = "min" if (direction_of or _default_direction)(field.key) == "min" else "max"
        return f"(SELECT m.{agg} FROM metric_summary m WHERE m.run_id = r.id AND m.key = ?)", [field.key]
    if field.kind == "folds":
        split, _, rest = field.key.partition("/")
        return (
            f"(SELECT f.{field.agg} FROM fold_stats f WHERE f.run_id = r.id AND "
            "((f.split = 'test' AND f.key = ?) OR (f.split = ? AND f.key = ?)) "
            "ORDER BY f.split = 'test' DESC LIMIT 1)",
            [field.key, split, rest],
        )
    raise ValueError(f"unknown field kind {field.kind!r}")  # pragma: no cover - the parser checks


def _default_direction(key: str) -> str:
    from labledger.aggregation import default_direction

    return default_direction(key)


def _compile(node: Any, direction_of: DirectionOf | None) -> tuple[str, list[Any]]:
    if isinstance(node, Logical):
        parts = [_compile(item, direction_of) for item in node.items]
        sql = f" {node.op.upper()} ".join(f"({p})" for p, _ in parts)
        return sql, [a for _, args in parts for a in args]
    if isinstance(node, Not):
        sql, args = _compile(node.item, direction_of)
        return f"NOT coalesce(({sql}), 0)", args
    expr, args = compile_field(node.field, direction_of)
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


def compile_filter(text: str, direction_of: DirectionOf | None = None) -> tuple[str, list[Any]]:
    """Compile a filter into an SQL condition over ``runs r`` joined with ``experiments e``.

    >>> compile_filter('status = "finished"')
    ('r.status = ?', ['finished'])
    """
    return _compile(parse(text), direction_of)


def compile_order_by(
    order_by: str | list[str] | tuple[str, ...] | None, direction_of: DirectionOf | None = None
) -> tuple[str, list[Any]]:
    """``"-metrics.val_acc, name"`` or ``["metrics.val_loss asc"]`` → ``ORDER BY`` SQL (nulls last)."""
    if not order_by:
        return "", []
    items = order_by.split(",") if isinstance(order_by, str) else list(order_by)
    parts, args = [], []
    for raw in items:
        item = raw.strip()
        descending = False
        if item.startswith("-"):
            descending, item = True, item[1:].strip()
        elif item.startswith("+"):
            item = item[1:].strip()
        words = item.rsplit(None, 1)
        if len(words) == 2 and words[1].lower() in ("asc", "desc"):
            item, descending = words[0], words[1].lower() == "desc"
        if not item:
            raise FilterSyntaxError(str(raw), 1, "empty order-by item; example: -metrics.val_acc")
        expr, field_args = compile_field(parse_field(item), direction_of)
        parts.append(f"{expr} {'DESC' if descending else 'ASC'} NULLS LAST")
        args.extend(field_args)
    return "ORDER BY " + ", ".join(parts), args
