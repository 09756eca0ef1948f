"""A griffe extension for the docs build: labledger's docstrings are reST-flavoured
(Sphinx fields, doctest examples, ``::`` literal blocks, ``:func:`x``` roles); mkdocstrings
renders docstring text as Markdown. Before a docstring is parsed, this rewrites the parts
Markdown would misread, and nothing else:

- a doctest block (``>>>`` lines, their ``...`` continuations and output) becomes a
  fenced ``pycon`` block, with ``# doctest: +SKIP``-style flags removed (Markdown would
  read ``>>>`` as nested block quotes and ``x["a"]["b"]`` as a reference link);
- a paragraph ending in ``::`` before an indented literal block ends in ``:``;
- an inline role such as ``:func:`labledger.start_run``` becomes ```labledger.start_run```.

Loaded by mkdocstrings from mkdocs.yml (``extensions:``); the source files are not changed.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|exc|obj|const):`~?([^`]+)`")
_FLAGS = re.compile(r"\s*#\s*doctest:\s*[+-]\w+(?:\s*,\s*[+-]\w+)*\s*$")


def _fence_doctests(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if not stripped.startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(stripped)]
        if out and out[-1].strip():
            out.append("")
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(_FLAGS.sub("", lines[i]))
            i += 1
        out.append(f"{indent}```")
    return out


def _literal_blocks(lines: list[str]) -> list[str]:
    out = list(lines)
    for i, line in enumerate(out):
        if not line.rstrip().endswith("::"):
            continue
        following = next((x for x in out[i + 1 :] if x.strip()), "")
        indent = len(line) - len(line.lstrip())
        if len(following) - len(following.lstrip()) > indent:
            out[i] = line.rstrip()[:-1]
    return out


def markdown_of(text: str) -> str:
    """The docstring ``text`` with reST-only constructs rewritten for Markdown."""
    lines = _literal_blocks(_fence_doctests(text.split("\n")))
    return "\n".join(_ROLE.sub(r"`\1`", line) for line in lines)


class SphinxToMarkdown(griffe.Extension):
    """Rewrite every docstring once, when its object is created."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_of(obj.docstring.value)
