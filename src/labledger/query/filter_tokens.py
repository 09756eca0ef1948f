"""The filter language's tokens, and the error every part of it raises.

:mod:`labledger.query.filter_syntax` builds the syntax tree from these tokens;
:mod:`labledger.query.filters` compiles it to SQL and documents the grammar.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from labledger.errors import LabledgerError

__all__ = ["FilterSyntaxError", "Token", "tokenize"]

KEYWORDS = {"and", "or", "not", "in", "like", "is", "null", "true", "false"}
OPS = ("<=", ">=", "!=", "<>", "=", "<", ">")

#: A longer filter is shown as this many characters around the error.
_SHOWN = 100


class FilterSyntaxError(LabledgerError, ValueError):
    """A filter or order-by expression cannot be parsed; ``column`` (1-based) says where."""

    def __init__(self, expression: str, column: int, problem: str) -> None:
        self.expression = expression
        self.column = column
        self.problem = problem
        start = (
            0
            if len(expression) <= _SHOWN
            else max(0, min(column - 1 - _SHOWN // 2, len(expression) - _SHOWN))
        )
        window = expression[start : start + _SHOWN]
        shown = "".join(ch if ch.isprintable() else "?" for ch in window)  # keeps the caret aligned
        pointer = " " * (column - 1 - start) + "^"
        if start > 0:
            shown, pointer = "…" + shown, " " + pointer
        if start + _SHOWN < len(expression):
            shown += "…"
        super().__init__(
            f"cannot parse filter at column {column}: {problem}\n  {shown}\n  {pointer}\n"
            'Example: metrics.val_acc > 0.9 and params.model = "svc" and status = "finished"'
        )


# -- tokens -------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # name, string, number, op, lparen, rparen, comma, keyword, end
    text: str
    value: Any
    column: int  # 1-based


_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_./-"


def tokenize(text: str) -> list[Token]:
    """Split a filter into tokens; unknown characters are a :class:`FilterSyntaxError`."""
    for at, ch in enumerate(text):
        if not ch.isprintable() and ch not in " \t\r\n":
            raise FilterSyntaxError(text, at + 1, f"unexpected character U+{ord(ch):04X}")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        col = i + 1
        if ch in " \t\r\n":
            i += 1
        elif ch in "'\"`":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    what = "name" if ch == "`" else "string"
                    raise FilterSyntaxError(text, col, f"unterminated {what}: add the closing {ch}")
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:  # doubled quote = a literal quote
                        buf.append(ch)
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            tokens.append(Token("qname" if ch == "`" else "string", text[i : j + 1], "".join(buf), col))
            i = j + 1
        elif ch in "(),":
            tokens.append(Token({"(": "lparen", ")": "rparen", ",": "comma"}[ch], ch, ch, col))
            i += 1
        elif ch in "<>=!":
            op = next((o for o in OPS if text.startswith(o, i)), None)
            if op is None:
                raise FilterSyntaxError(text, col, f"unexpected {ch!r}; comparisons are {', '.join(OPS)}")
            tokens.append(Token("op", op, "!=" if op == "<>" else op, col))
            i += len(op)
        elif (m := _NUMBER.match(text, i)) and (ch.isdigit() or ch in "+-."):
            end = m.end()
            if end < n and (text[end].isalpha() or text[end] == "_"):
                raise FilterSyntaxError(text, col, f"malformed number {text[i : end + 1]!r}")
            literal = m.group()
            tokens.append(Token("number", literal, _number(literal, text, col), col))
            i = end
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (_is_name_char(text[j]) or (text[j] == "`" and text[j - 1] == ".")):
                if text[j] == "`":  # a backticked key after a prefix: params.`a b`
                    close = text.find("`", j + 1)
                    if close < 0:
                        raise FilterSyntaxError(text, j + 1, "unterminated name: add the closing `")
                    j = close + 1
                    break
                j += 1
            word = text[i:j]
            if word.lower() in KEYWORDS:
                tokens.append(Token("keyword", word, word.lower(), col))
            else:
                tokens.append(Token("name", word, word, col))
            i = j
        else:
            shown = ch if ch.isprintable() else f"U+{ord(ch):04X}"
            raise FilterSyntaxError(text, col, f"unexpected character {shown!r}")
    tokens.append(Token("end", "", None, n + 1))
    return tokens


def _number(literal: str, text: str, column: int) -> int | float:
    """An int within SQLite's 64 bits, else a finite float; anything larger is an error."""
    try:
        if any(c in literal for c in ".eE"):
            value: int | float = float(literal)
        elif len(literal.lstrip("+-0")) > 20:  # beyond 64 bits: read it as a float
            value = float(literal)
        else:
            value = int(literal)
            if not -(2**63) <= value < 2**63:
                value = float(value)  # beyond SQLite's integers
    except (ValueError, OverflowError):
        value = math.inf
    if isinstance(value, float) and not math.isfinite(value):
        shown = literal if len(literal) <= 24 else f"{literal[:20]}… ({len(literal):,} characters)"
        raise FilterSyntaxError(text, column, f"the number {shown} is out of range (at most ±1.8e308)")
    return value
