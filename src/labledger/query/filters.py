"""The filter language for runs: text → tokens → AST → parameterised SQL.

>>> from labledger.query.filters import compile_filter
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

Limits: parentheses and ``not`` nest at most 100 levels
(:data:`~labledger.query.filter_syntax.MAX_DEPTH`); numbers lie within ±1.8e308; a
filter binds at most as many values as SQLite allows in one statement (250,000
in common builds, less a margin; each comparison binds two or three). Long
``or``/``and`` chains are compiled as balanced trees, so thousands of terms work.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labledger.query.filter_syntax import (
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
    from labledger.query.aggregation import default_direction

    return default_direction(key)


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


@dataclass
class _Chain:
    """A filter with ``not`` pushed down to the comparisons and nested same-op chains merged."""

    op: str  # AND / OR
    items: list[_Chain | tuple[Comparison, bool]]  # a comparison and whether it is negated


def _normal(node: Any, negate: bool) -> _Chain | tuple[Comparison, bool]:
    if isinstance(node, Not):
        return _normal(node.item, not negate)
    if isinstance(node, Logical):
        op = node.op.upper()
        if negate:  # De Morgan; each comparison's NULL counts as false, as NOT coalesce(x, 0) did
            op = "OR" if op == "AND" else "AND"
        items: list[_Chain | tuple[Comparison, bool]] = []
        for child in node.items:
            part = _normal(child, negate)
            if isinstance(part, _Chain) and part.op == op:
                items.extend(part.items)
            else:
                items.append(part)
        return _Chain(op, _merge_lists(op, items))
    return (node, negate)


_Item = _Chain | tuple[Comparison, bool]


def _merge_lists(op: str, items: list[_Item]) -> list[_Item]:
    """``x = 1 or x = 2 or …`` → ``x in (1, 2, …)`` (and ``!=`` in an and-chain → ``not in``).

    The same truth value for every run (NULL included), one sub-select instead of
    thousands, and the key bound once.
    """
    out: list[_Item] = []
    lists: dict[tuple[str, str, str | None, bool], tuple[int, list[Any]]] = {}
    for item in items:
        if isinstance(item, _Chain):
            out.append(item)
            continue
        node, negate = item
        kind = {"=": "in", "in": "in", "!=": "notin", "notin": "notin"}.get(node.op)
        # positive in an or-chain, or negated in an and-chain: the chain is a union of equalities
        unions = (op == "OR") != negate
        if kind is None or unions != (kind == "in"):
            out.append(item)
            continue
        values = node.value if node.op in ("in", "notin") else (node.value,)
        group = (node.field.kind, node.field.key, node.field.agg, negate)
        if group in lists:
            lists[group][1].extend(values)
        else:
            lists[group] = (len(out), list(values))
            out.append(item)
    for at, values in lists.values():
        node, negate = out[at]  # type: ignore[misc]
        if len(values) > 1:
            kind = "in" if node.op in ("=", "in") else "notin"
            out[at] = (Comparison(node.field, kind, tuple(values)), negate)
    return out


@dataclass
class _Sql:
    text: str
    args: list[Any]
    height: int  # expression-tree height estimate
    nest: int  # parenthesised and/or levels
    column: int  # the filter column of its most deeply nested comparison
    chain: bool = False


class _TooLarge(Exception):
    def __init__(self, column: int, problem: str) -> None:
        self.column = column
        self.problem = problem


def _render(
    ir: _Chain | tuple[Comparison, bool], direction_of: DirectionOf | None, budget: list[int]
) -> _Sql:
    if isinstance(ir, tuple):
        node, negate = ir
        sql, args = _comparison(node, direction_of)
        budget[0] -= len(args)
        if budget[0] < 0:
            raise _TooLarge(
                node.field.column,
                f"the filter binds more than {max_variables():,} values here, more than SQLite "
                "takes in one query; split it into several queries",
            )
        return _Sql(f"NOT coalesce({sql}, 0)" if negate else sql, args, _LEAF_HEIGHT, 0, node.field.column)
    # the deepest parts go last: in a left-deep chain the last term hangs nearest the root
    parts = sorted((_render(item, direction_of, budget) for item in ir.items), key=lambda p: p.height)
    while len(parts) > _GROUP:  # the deepest part stays outside the groups: no extra nesting for it
        rest = parts[:-1]
        parts = [*(_flat(ir.op, rest[i : i + _GROUP]) for i in range(0, len(rest), _GROUP)), parts[-1]]
    out = _flat(ir.op, parts)
    if out.nest > MAX_ALTERNATION:
        raise _TooLarge(
            out.column,
            f"'and' and 'or' alternate in more than {MAX_ALTERNATION} nested parentheses here; "
            "simplify the filter",
        )
    if out.height > _MAX_HEIGHT:
        raise _TooLarge(out.column, "the filter nests too deeply for SQLite here; simplify it")
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


def _compile(node: Any, direction_of: DirectionOf | None) -> tuple[str, list[Any]]:
    out = _render(_normal(node, False), direction_of, [max_variables()])
    return out.text, out.args


def _comparison(node: Comparison, direction_of: DirectionOf | None) -> tuple[str, list[Any]]:
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
    tree = parse(text)
    try:
        return _compile(tree, direction_of)
    except _TooLarge as e:
        raise FilterSyntaxError(text, e.column, e.problem) from None


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
