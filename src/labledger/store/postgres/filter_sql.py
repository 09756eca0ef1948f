"""The filter language compiled to PostgreSQL, with the meaning the SQLite store gives it.

A filter in normal form (:func:`labledger.query.filters.normal_form`) becomes a parameterised
condition over ``runs r`` joined with ``experiments e``; values are always bound (``%s``).
SQLite compares values of several types in one column, PostgreSQL one type per expression, so
each field is read as a typed value: its type ``t`` (``'n'`` a number, ``'s'`` text, NULL),
its number ``n`` and its text ``s``. Params are JSON text read as SQLite's ``json_extract``
reads them: numbers and booleans are numbers, strings text, arrays and objects their compact
JSON text, JSON null NULL, and text that is no JSON (``NaN``) the text itself. Comparing
across types follows SQLite: ``=`` is false, ``!=`` true, ``<`` and the like false; a text
field compared with a number compares the number's text, a number field (a metric) compared
with numeric text compares the number (SQLite's column affinity). ``like`` folds ASCII case
only and knows no escape character, as SQLite's ``LIKE``.

>>> from labledger.query.filter_syntax import Comparison, Field
>>> condition_sql((Comparison(Field("params", "model"), "=", "svc"), False))[1]
['svc', 'model']
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from labledger.store.backend import FilterTooLargeError

if TYPE_CHECKING:
    from labledger.query.filter_syntax import Comparison, Field

__all__ = [
    "MAX_PARAMETERS",
    "Typed",
    "condition_sql",
    "order_by_sql",
    "real_text",
    "sqlite_text",
    "typed_field",
]

#: Values one filter may bind: PostgreSQL's 65,535 per query, less what the query adds around it.
MAX_PARAMETERS = 64_000
_WS = r"[ \t\n\r]*"
_NUMBER = rf"^{_WS}-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?{_WS}$"
_INTEGER = rf"^{_WS}-?(0|[1-9][0-9]*){_WS}$"
_STRING_BODY = r'"([^"\\\x01-\x1f]|\\(["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'
_STRING = rf"^{_WS}{_STRING_BODY}{_WS}$"
# arrays and objects: what is left without their strings and literals is structure and numbers
_COMPACT = rf"({_STRING_BODY})|[ \t\n\r]+"
_CONTAINER = r"^[ \t\n\r]*[[{][][{}:,0-9eE.+ \t\n\r-]*$"


def _lit(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


def _param_columns(v: str) -> str:
    """The typed value of the JSON text ``v`` as the columns t, n, s, lk (the text ``like`` reads)."""
    true, false, null = (_lit(f"^{_WS}{w}{_WS}$") for w in ("true", "false", "null"))
    number, integer, string = _lit(_NUMBER), _lit(_INTEGER), _lit(_STRING)
    bare = f"regexp_replace(regexp_replace({v}, {_lit(_STRING_BODY)}, '', 'g'), 'true|false|null', '', 'g')"
    compact = f"regexp_replace({v}, {_lit(_COMPACT)}, '\\1', 'g')"
    real = f"btrim({v}, E' \\t\\n\\r')::float8"
    return (
        f"CASE WHEN {v} ~ {number} OR {v} ~ {true} OR {v} ~ {false} THEN 'n' "
        f"WHEN {v} ~ {null} THEN NULL ELSE 's' END AS t, "
        f"CASE WHEN {v} ~ {number} THEN btrim({v}, E' \\t\\n\\r')::numeric WHEN {v} ~ {true} THEN 1 "
        f"WHEN {v} ~ {false} THEN 0 END AS n, "
        f"CASE WHEN {v} ~ {string} THEN {v}::json #>> '{{}}' "
        f"WHEN {v} ~ {number} OR {v} ~ {true} OR {v} ~ {false} OR {v} ~ {null} THEN NULL "
        f"WHEN {bare} ~ {_lit(_CONTAINER)} THEN {compact} ELSE {v} END AS s, "
        f"CASE WHEN {v} ~ {integer} THEN btrim({v}, E' \\t\\n\\r') "
        f"WHEN {v} ~ {number} THEN {real_text(real)} "
        f"WHEN {v} ~ {true} THEN '1' WHEN {v} ~ {false} THEN '0' END AS lk"
    )


def real_text(x: str) -> str:
    """A float8 as SQLite writes a real as text: 15 significant digits, always a point, an exponent
    below 1e-4 and from 1e15 (``1.0e+20``)."""
    digits = f"({x})::numeric"  # PostgreSQL keeps 15 significant digits of a float8 here
    sci = f"btrim(to_char({digits}, '9.99999999999999EEEE'))"
    mantissa = f"rtrim(split_part({sci}, 'e', 1), '0')"
    plain = f"trim_scale({digits})::text"
    return (
        f"CASE WHEN ({x}) = 'Infinity' THEN 'Inf' WHEN ({x}) = '-Infinity' THEN '-Inf' "
        f"WHEN ({x}) <> 0 AND split_part({sci}, 'e', 2)::int NOT BETWEEN -4 AND 14 "
        f"THEN {mantissa} || CASE WHEN right({mantissa}, 1) = '.' THEN '0' ELSE '' END "
        f"|| 'e' || split_part({sci}, 'e', 2) "
        f"WHEN strpos({plain}, '.') > 0 THEN {plain} ELSE {plain} || '.0' END"
    )


@dataclass(frozen=True)
class Typed:
    """A field as SQL: ``t``/``n``/``s``/``lk`` expressions inside ``wrap``, and how values bind."""

    t: str
    n: str
    s: str
    lk: str
    wrap: Callable[[str], str]
    args: list[Any]
    affinity: str | None = None  # 'text', 'real', 'integer': how SQLite converts a compared value


def _column(expr: str, number: bool, affinity: str | None) -> Typed:
    if number:
        return Typed(
            f"CASE WHEN {expr} IS NOT NULL THEN 'n' END",
            expr,
            "NULL::text",
            real_text(expr),
            lambda x: x,
            [],
            affinity,
        )
    return Typed(
        f"CASE WHEN {expr} IS NOT NULL THEN 's' END", "NULL::numeric", expr, expr, lambda x: x, [], affinity
    )


def _sub(select_from: str, args: list[Any], number: bool, affinity: str, column: str) -> Typed:
    def wrap(inner: str) -> str:
        return f"(SELECT {inner} {select_from})"

    base = _column(column, number, affinity)
    if affinity == "integer":  # counts: their text is the integer's
        base = Typed(base.t, base.n, base.s, f"({column})::text", wrap, args, affinity)
    return Typed(base.t, base.n, base.s, base.lk, wrap, args, affinity)


_TIME = "extract(epoch FROM {})::float8"
_ATTRIBUTES: dict[str, tuple[str, bool]] = {
    "id": ("r.id", False),
    "name": ("r.name", False),
    "status": ("r.status", False),
    "experiment": ("e.name", False),
    "author": ("r.author", False),
    "parent": ("r.parent_id", False),
    "hypothesis": ("r.hypothesis", False),
    "host": ("r.host", False),
    "kind": ("r.kind", False),
    "start_time": (_TIME.format("r.start_time"), True),
    "end_time": (_TIME.format("r.end_time"), True),
    "duration": (
        f"(coalesce({_TIME.format('r.end_time')}, floor(extract(epoch FROM now()))::float8) "
        f"- {_TIME.format('r.start_time')})",
        True,
    ),
}


def typed_field(field: Field) -> Typed:
    """A field as a typed value; ``best`` must be resolved to ``min`` or ``max`` before.

    >>> from labledger.query.filter_syntax import Field
    >>> typed_field(Field("tags", "stage")).args
    ['stage']
    """
    if field.kind == "attribute":
        expr, number = _ATTRIBUTES[field.key]
        affinity = None if field.key == "duration" else ("real" if number else "text")
        return _column(expr, number, affinity)
    if field.kind == "params":

        def wrap(inner: str) -> str:
            return (
                f"(SELECT {inner} FROM params p, LATERAL (SELECT {_param_columns('p.value')}) v "
                "WHERE p.run_id = r.id AND p.key = %s)"
            )

        return Typed("v.t", "v.n", "v.s", "coalesce(v.lk, v.s)", wrap, [field.key])
    if field.kind == "tags":
        return _sub("FROM tags t WHERE t.run_id = r.id AND t.key = %s", [field.key], False, "text", "t.value")
    if field.kind == "dataset":
        return _sub(
            "FROM (SELECT d.fingerprint FROM datasets d WHERE d.run_id = r.id AND d.role = %s "
            "ORDER BY d.created_at DESC LIMIT 1) d",
            [field.key],
            False,
            "text",
            "d.fingerprint",
        )
    if field.kind == "pipeline":
        return _sub(
            "FROM pipelines pl WHERE pl.run_id = r.id AND pl.name = %s",
            [field.key],
            False,
            "text",
            "pl.version",
        )
    if field.kind == "metrics":
        agg = field.agg or "last"
        if agg not in ("last", "min", "max", "count"):
            raise ValueError(f"metric aggregation {agg!r} must be resolved before compiling")
        column = "m.count" if agg == "count" else f"nullif(m.{agg}, 'NaN')"
        return _sub(
            "FROM metric_summary m WHERE m.run_id = r.id AND m.key = %s",
            [field.key],
            True,
            "integer" if agg == "count" else "real",
            column,
        )
    if field.kind == "folds":
        if field.agg not in ("mean", "std", "min", "max", "n"):
            raise ValueError(f"unknown fold statistic {field.agg!r}")  # pragma: no cover - parser checks
        split, _, rest = field.key.partition("/")
        column = "f.n" if field.agg == "n" else f"nullif(f.{field.agg}, 'NaN')"
        return _sub(
            "FROM (SELECT * FROM fold_stats f WHERE f.run_id = r.id AND "
            "((f.split = 'test' AND f.key = %s) OR (f.split = %s AND f.key = %s)) "
            "ORDER BY f.split = 'test' DESC LIMIT 1) f",
            [field.key, split, rest],
            True,
            "integer" if field.agg == "n" else "real",
            column,
        )
    raise ValueError(f"unknown field kind {field.kind!r}")  # pragma: no cover - the parser checks


def order_by_sql(order_by: Sequence[tuple[Field, bool]]) -> tuple[str, list[Any]]:
    """``ORDER BY`` terms (nulls last; numbers before text, as SQLite) and their parameters.

    >>> from labledger.query.filter_syntax import Field
    >>> order_by_sql([(Field("attribute", "name"), True)])[1]
    []
    """
    parts: list[str] = []
    args: list[Any] = []
    for field, descending in order_by:
        f = typed_field(field)
        way = "DESC" if descending else "ASC"
        for inner in (f"CASE {f.t} WHEN 'n' THEN 0 WHEN 's' THEN 1 END", f.n, f'({f.s}) COLLATE "C"'):
            parts.append(f"{f.wrap(inner)} {way} NULLS LAST")
            args.extend(f.args)
    return ", ".join(parts), args


def condition_sql(where: Any) -> tuple[str, list[Any]]:
    """A filter in normal form (``(comparison, negated)`` pairs, chains with ``op`` and ``items``)
    as a PostgreSQL condition and its parameters.

    :raises FilterTooLargeError: more values than PostgreSQL binds in one query.

    >>> from labledger.query.filter_syntax import Comparison, Field
    >>> condition_sql((Comparison(Field("attribute", "name"), "like", "B%"), True))[1]
    ['b%']
    """
    return _render(where, [MAX_PARAMETERS])


def _render(where: Any, budget: list[int]) -> tuple[str, list[Any]]:
    if isinstance(where, tuple):
        node, negate = where
        sql, args = _comparison(node)
        budget[0] -= len(args)
        if budget[0] < 0:
            raise FilterTooLargeError(
                node.field.column,
                f"the filter binds more than {MAX_PARAMETERS:,} values here, more than PostgreSQL "
                "takes in one query; split it into several queries",
            )
        return (f"NOT coalesce({sql}, false)" if negate else sql), args
    texts, args = [], []
    for item in where.items:
        text, item_args = _render(item, budget)
        texts.append(f"({text})")
        args.extend(item_args)
    return f" {where.op} ".join(texts), args


_NUMERIC_TEXT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_LOWER_SQL = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"


def sqlite_text(value: int | float) -> str:
    """A number as SQLite writes it as text."""
    if isinstance(value, int):
        return str(int(value))
    if value in (math.inf, -math.inf):
        return "Inf" if value > 0 else "-Inf"
    text = f"{value:.15g}"
    if "." not in text:
        mantissa, e, exponent = text.partition("e")
        text = f"{mantissa}.0{e}{exponent}"
    return text


def _affine(value: Any, affinity: str | None) -> Any:
    """A compared value after SQLite's column affinity (bools are integers in SQLite)."""
    if isinstance(value, bool):
        value = int(value)
    if affinity == "text" and isinstance(value, int | float):
        return sqlite_text(value)
    if affinity in ("real", "integer") and isinstance(value, str) and _NUMERIC_TEXT.fullmatch(value):
        number = float(value)
        return (
            int(number) if affinity == "integer" and number.is_integer() and abs(number) < 2**63 else number
        )
    return value


def _number(value: int | float) -> Any:
    return value if isinstance(value, float) else Decimal(int(value))


def _comparison(node: Comparison) -> tuple[str, list[Any]]:
    f = typed_field(node.field)
    op, value = node.op, node.value
    inner: str
    args: list[Any]
    if op == "isnull":
        return f"coalesce({f.wrap(f'{f.t} IS NULL')}, true)", list(f.args)
    if op == "notnull":
        return f"coalesce({f.wrap(f'{f.t} IS NOT NULL')}, false)", list(f.args)
    if op in ("like", "notlike"):
        pattern = value if isinstance(value, str) else sqlite_text(value)
        inner = f"{_LOWER_SQL.format(f.lk)} {'NOT ' if op == 'notlike' else ''}LIKE %s ESCAPE ''"
        return f.wrap(inner), [pattern.translate(_ASCII_LOWER), *f.args]
    if op in ("in", "notin"):
        values = [_affine(v, f.affinity) for v in value]
        numbers = [_number(v) for v in values if not isinstance(v, str)]
        texts = [v for v in values if isinstance(v, str)]
        terms, args = [], []
        if numbers:
            terms.append(f"coalesce({f.t} = 'n' AND {f.n} = ANY(%s::numeric[]), false)")
            args.append([Decimal(repr(v)) if isinstance(v, float) else v for v in numbers])
        if texts:
            terms.append(f"coalesce({f.t} = 's' AND {f.s} = ANY(%s::text[]), false)")
            args.append(texts)
        found = " OR ".join(terms)
        inner = f"CASE WHEN {f.t} IS NULL THEN NULL ELSE {'NOT ' if op == 'notin' else ''}({found}) END"
        return f.wrap(inner), [*args, *f.args]
    if op in ("<", "<=", ">", ">="):
        value = int(value) if isinstance(value, bool) else value
        if isinstance(value, str):
            inner = f"({f.t} = 's' AND ({f.s}) COLLATE \"C\" {op} %s)"
        else:
            inner = f"({f.t} = 'n' AND {f.n} {op} %s)"
            value = _number(value)
        return f.wrap(inner), [value, *f.args]
    value = _affine(value, f.affinity)
    kind, expr = ("s", f.s) if isinstance(value, str) else ("n", f.n)
    bound = value if isinstance(value, str) else _number(value)
    if op == "=":
        inner = f"({f.t} = '{kind}' AND {expr} = %s)"
    else:
        inner = f"CASE WHEN {f.t} IS NULL THEN NULL WHEN {f.t} = '{kind}' THEN {expr} <> %s ELSE true END"
    return f.wrap(inner), [bound, *f.args]
