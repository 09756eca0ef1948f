"""The filter language's syntax: the syntax tree and the parser.

Tokens come from :mod:`labledger.query.filter_tokens`.

The grammar is documented in :mod:`labledger.query.filters`, which brings the tree
into the normal form the store compiles. Parse errors are :class:`FilterSyntaxError`
with the column where parsing stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from labledger.query.filter_tokens import FilterSyntaxError, Token, tokenize

__all__ = [
    "ATTRIBUTES",
    "MAX_DEPTH",
    "Comparison",
    "Field",
    "FilterSyntaxError",
    "Logical",
    "Not",
    "parse",
    "parse_field",
    "tokenize",
]

#: The run attributes a filter may name (the store knows how each is read).
ATTRIBUTES: tuple[str, ...] = (
    "id",
    "name",
    "status",
    "experiment",
    "author",
    "parent",
    "hypothesis",
    "host",
    "kind",
    "start_time",
    "end_time",
    "duration",
)
TIME_ATTRIBUTES = ("start_time", "end_time")
METRIC_FUNCS = ("last", "min", "max", "best", "count")
FOLD_STATS = ("mean", "std", "min", "max", "n")
PREFIXES = ("params", "metrics", "folds", "tags", "dataset", "pipeline")
#: Parentheses and ``not`` nest at most this deep in one filter.
MAX_DEPTH = 100


# -- AST ----------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A run attribute or keyed value: ``kind`` is attribute/params/metrics/folds/tags/dataset/pipeline."""

    kind: str
    key: str
    agg: str | None = None  # metrics: last/min/max/best/count; folds: mean/std/min/max/n
    column: int = 1


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str  # = != < <= > >= in notin like notlike isnull notnull
    value: Any = None


@dataclass(frozen=True)
class Logical:
    op: str  # and / or
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


def _split_key(text: str, expression: str, column: int) -> tuple[str, str | None]:
    """``params.a.b`` → ("params", "a.b"); ``params.`a b``` → ("params", "a b")."""
    prefix, dot, rest = text.partition(".")
    if not dot:
        return text, None
    if rest.startswith("`"):
        if not rest.endswith("`") or len(rest) < 2:
            raise FilterSyntaxError(expression, column, "unterminated name: add the closing `")
        rest = rest[1:-1]
    if not rest:
        raise FilterSyntaxError(expression, column + len(prefix) + 1, f"{prefix}. needs a key after the dot")
    return prefix, rest


def _make_field(name: str, expression: str, column: int, func: str | None = None) -> Field:
    prefix, key = _split_key(name, expression, column)
    low = prefix.lower()
    if key is None:
        if low in ATTRIBUTES:
            field = Field("attribute", low, None, column)
        elif low == "pipeline":
            field = Field("pipeline", "pipeline", None, column)
        else:
            raise FilterSyntaxError(
                expression,
                column,
                f"unknown field {name!r}; use params.<key>, metrics.<key>, folds.<key>, tags.<key>, "
                f"dataset.<role>, pipeline or one of {', '.join(ATTRIBUTES)}",
            )
    elif low in ("params", "tags", "dataset", "pipeline"):
        field = Field(low, key, None, column)
    elif low == "metrics":
        field = Field("metrics", key, "last", column)
    elif low == "folds":
        base, _, stat = key.rpartition(".")
        field = (
            Field("folds", base, stat, column)
            if base and stat in FOLD_STATS
            else Field("folds", key, "mean", column)
        )
    else:
        raise FilterSyntaxError(
            expression, column, f"unknown prefix {prefix!r}; known prefixes: {', '.join(PREFIXES)}"
        )
    if func is not None:
        if field.kind != "metrics":
            raise FilterSyntaxError(expression, column, f"{func}() applies to metrics.<key> only")
        field = Field("metrics", field.key, func, column)
    return field


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def error(self, problem: str, token: Token | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(self.text, (token or self.tok).column, problem)

    def take(self) -> Token:
        tok = self.tok
        self.pos += 1
        return tok

    def keyword(self, word: str) -> bool:
        if self.tok.kind == "keyword" and self.tok.value == word:
            self.pos += 1
            return True
        return False

    def expect(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            raise self.error(f"expected {what}, found {self._found()}")
        return self.take()

    def _found(self) -> str:
        return "the end of the filter" if self.tok.kind == "end" else repr(self.tok.text)

    def parse(self) -> Any:
        if self.tok.kind == "end":
            raise self.error("the filter is empty")
        node = self.or_expr()
        if self.tok.kind != "end":
            raise self.error(f"expected 'and', 'or' or the end of the filter, found {self._found()}")
        return node

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.keyword("or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Logical("or", tuple(items))

    def and_expr(self) -> Any:
        items = [self.not_expr()]
        while self.keyword("and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else Logical("and", tuple(items))

    def not_expr(self) -> Any:
        opens = self.tok.kind == "lparen" or (self.tok.kind == "keyword" and self.tok.value == "not")
        if not opens:
            return self.comparison()
        if self.depth >= MAX_DEPTH:
            raise self.error(
                f"parentheses and 'not' nest more than {MAX_DEPTH} levels deep here; simplify the filter"
            )
        self.depth += 1
        try:
            if self.keyword("not"):
                return Not(self.not_expr())
            self.take()
            node = self.or_expr()
            self.expect("rparen", "')'")
            return node
        finally:
            self.depth -= 1

    def field(self) -> Field:
        tok = self.tok
        if (
            tok.kind == "name"
            and tok.value.lower() in METRIC_FUNCS
            and self.tokens[self.pos + 1].kind == ("lparen")
        ):
            self.pos += 2
            inner = self.expect("name", "a metric name such as metrics.val_loss")
            self.expect("rparen", "')'")
            return _make_field(inner.value, self.text, inner.column, tok.value.lower())
        if tok.kind == "qname":
            raise self.error("backticks quote the key after a prefix, as in params.`my key`")
        if tok.kind != "name":
            raise self.error(f"expected a field such as metrics.val_acc or status, found {self._found()}")
        self.take()
        return _make_field(tok.value, self.text, tok.column)

    def value(self) -> Any:
        tok = self.tok
        if tok.kind in ("string", "number"):
            self.take()
            return tok.value
        if tok.kind == "keyword" and tok.value in ("true", "false"):
            self.take()
            return tok.value == "true"
        if tok.kind == "keyword" and tok.value == "null":
            raise self.error("compare with null using 'is null' or 'is not null'")
        raise self.error(f"expected a value (a number, 'text', true or false), found {self._found()}")

    def coerced_value(self, field: Field) -> Any:
        """A value; times may be given as ISO dates (local time when no zone is given)."""
        tok = self.tok
        value = self.value()
        if field.kind == "attribute" and field.key in TIME_ATTRIBUTES and isinstance(value, str):
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                raise self.error(
                    f"{field.key} needs a number or an ISO date such as '2026-11-26 08:00'", tok
                ) from None
        return value

    def comparison(self) -> Comparison:
        field = self.field()
        tok = self.tok
        if tok.kind == "op":
            self.take()
            return Comparison(field, tok.value, self.coerced_value(field))
        negate = self.keyword("not")
        if self.keyword("in"):
            self.expect("lparen", "'(' after in")
            values = [self.coerced_value(field)]
            while self.tok.kind == "comma":
                self.take()
                values.append(self.coerced_value(field))
            self.expect("rparen", "')' or ','")
            return Comparison(field, "notin" if negate else "in", tuple(values))
        if self.keyword("like"):
            if self.tok.kind != "string":
                raise self.error("like needs a quoted pattern such as 'svc%'")
            return Comparison(field, "notlike" if negate else "like", self.take().value)
        if negate:
            raise self.error(f"expected 'in' or 'like' after 'not', found {self._found()}")
        if self.keyword("is"):
            negate = self.keyword("not")
            if not self.keyword("null"):
                raise self.error(f"expected 'null', found {self._found()}")
            return Comparison(field, "notnull" if negate else "isnull")
        raise self.error(
            f"expected a comparison (=, !=, <, <=, >, >=, in, like, is null), found {self._found()}"
        )


def parse(text: str) -> Any:
    """Parse a filter into its AST (:class:`Comparison`, :class:`Logical`, :class:`Not`)."""
    if not isinstance(text, str):
        raise TypeError(f"a filter is a str, not {type(text).__name__}")
    return _Parser(text).parse()


def parse_field(text: str) -> Field:
    """Parse one field name, e.g. ``metrics.val_loss`` or ``best(metrics.val_loss)``."""
    parser = _Parser(text)
    field = parser.field()
    if parser.tok.kind != "end":
        raise parser.error(f"expected the end of the field name, found {parser._found()}")
    return field
