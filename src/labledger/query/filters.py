"""The filter language for runs: text → tokens → AST → normal form, which the store compiles
(the built-in store: to parameterised SQL, :mod:`labledger.store.filter_sql`).

>>> from labledger.query.filters import compile_filter
>>> sql, args = compile_filter('metrics.val_acc > 0.9 and params.model = "svc"')
>>> args
['val_acc', 'val_acc', 0.9, 'model', 'svc']

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
(:data:`~labledger.query.filter_syntax.MAX_DEPTH`); numbers lie within ±1.8e308; in
the built-in store a filter binds at most as many values as SQLite allows in one
statement (250,000 in common builds, less a margin; each comparison binds two or
three). Long ``or``/``and`` chains are compiled as balanced trees, so thousands
of terms work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labledger.query.filter_syntax import (
    Comparison,
    Field,
    FilterSyntaxError,
    Logical,
    Not,
    parse,
    parse_field,
)
from labledger.store import filter_sql
from labledger.store.backend import FilterTooLargeError

__all__ = [
    "Chain",
    "Comparison",
    "Field",
    "FilterSyntaxError",
    "Logical",
    "Not",
    "compile_field",
    "compile_filter",
    "compile_order_by",
    "normal_form",
    "parse",
    "parse_field",
    "parse_order_by",
    "resolve_field",
]

DirectionOf = Callable[[str], str]


def _default_direction(key: str) -> str:
    from labledger.query.aggregation import default_direction

    return default_direction(key)


def resolve_field(field: Field, direction_of: DirectionOf | None = None) -> Field:
    """``best(metrics.k)`` as ``min`` or ``max`` by the metric's direction; other fields as they are.

    >>> resolve_field(parse_field("best(metrics.val_loss)")).agg
    'min'
    """
    if field.kind == "metrics" and field.agg == "best":
        agg = "min" if (direction_of or _default_direction)(field.key) == "min" else "max"
        return dataclasses.replace(field, agg=agg)
    return field


# -- normal form --------------------------------------------------------------


@dataclass
class Chain:
    """A filter with ``not`` pushed down to the comparisons and nested same-op chains merged."""

    op: str  # AND / OR
    items: list[Chain | tuple[Comparison, bool]]  # a comparison and whether it is negated


_Item = Chain | tuple[Comparison, bool]


def normal_form(tree: Any, direction_of: DirectionOf | None = None) -> _Item:
    """The parsed filter as the store compiles it: ``not`` pushed down to the comparisons
    (a negated comparison is true when the comparison is not: a missing value counts as
    false), nested same-op chains merged, equalities on one field merged into ``in`` lists,
    ``best`` resolved with ``direction_of``.

    >>> tree = normal_form(parse("not (status = 'a' or status = 'b')"))
    >>> tree.op, [(c.op, c.value, negated) for c, negated in tree.items]
    ('AND', [('in', ('a', 'b'), True)])
    """
    return _normal(tree, False, direction_of)


def _normal(node: Any, negate: bool, direction_of: DirectionOf | None) -> _Item:
    if isinstance(node, Not):
        return _normal(node.item, not negate, direction_of)
    if isinstance(node, Logical):
        op = node.op.upper()
        if negate:  # De Morgan; each comparison's NULL counts as false
            op = "OR" if op == "AND" else "AND"
        items: list[_Item] = []
        for child in node.items:
            part = _normal(child, negate, direction_of)
            if isinstance(part, Chain) and part.op == op:
                items.extend(part.items)
            else:
                items.append(part)
        return Chain(op, _merge_lists(op, items))
    field = resolve_field(node.field, direction_of)
    return (node if field is node.field else Comparison(field, node.op, node.value), negate)


def _merge_lists(op: str, items: list[_Item]) -> list[_Item]:
    """``x = 1 or x = 2 or …`` → ``x in (1, 2, …)`` (and ``!=`` in an and-chain → ``not in``).

    The same truth value for every run (NULL included), one sub-select instead of
    thousands, and the key bound once.
    """
    out: list[_Item] = []
    lists: dict[tuple[str, str, str | None, bool], tuple[int, list[Any]]] = {}
    for item in items:
        if isinstance(item, Chain):
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


# -- compiling for the built-in store -------------------------------------------


def compile_field(field: Field, direction_of: DirectionOf | None = None) -> tuple[str, list[Any]]:
    """The SQL the built-in store reads one field's value per run with, and its parameters."""
    return filter_sql.field_sql(resolve_field(field, direction_of))


def compile_filter(text: str, direction_of: DirectionOf | None = None) -> tuple[str, list[Any]]:
    """The condition the built-in store runs for a filter (over ``runs r`` joined with
    ``experiments e``), and its parameters: parse, normal form, then the store's compiler.

    >>> compile_filter('status = "finished"')
    ('r.status = ?', ['finished'])
    """
    tree = parse(text)
    try:
        return filter_sql.condition_sql(normal_form(tree, direction_of))
    except FilterTooLargeError as e:
        raise FilterSyntaxError(text, e.column, e.problem) from None


def parse_order_by(
    order_by: str | list[str] | tuple[str, ...] | None, direction_of: DirectionOf | None = None
) -> tuple[tuple[Field, bool], ...]:
    """``"-metrics.val_acc, name"`` or ``["metrics.val_loss asc"]`` → ``(field, descending)`` pairs.

    >>> [(f.key, desc) for f, desc in parse_order_by("-metrics.val_acc, name")]
    [('val_acc', True), ('name', False)]
    """
    if not order_by:
        return ()
    items = order_by.split(",") if isinstance(order_by, str) else list(order_by)
    out = []
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
        out.append((resolve_field(parse_field(item), direction_of), descending))
    return tuple(out)


def compile_order_by(
    order_by: str | list[str] | tuple[str, ...] | None, direction_of: DirectionOf | None = None
) -> tuple[str, list[Any]]:
    """The built-in store's ``ORDER BY`` for an order-by (nulls last); ``""`` for none."""
    return filter_sql.order_by_sql(parse_order_by(order_by, direction_of))
