"""The layout holds: no import cycles at import time, no private names across subpackages,
modules of at most 400 lines. Read from the sources with ``ast`` (nothing is imported)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"labledger": ROOT / "src" / "labledger", "labledger.integrations": ROOT / "integrations"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if package == "labledger" and name.startswith("labledger.integrations"):
                continue
            found[name] = path
    return found


MODULES = _modules()


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, module: str, top_level_only: bool) -> Iterator[tuple[str, list[str], int]]:
    """``(imported module, names, line)`` of the module's imports (not those under TYPE_CHECKING)."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]

    def visit(nodes: list[ast.stmt]) -> Iterator[tuple[str, list[str], int]]:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking(node):
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name, [], node.lineno
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                yield base, [a.name for a in node.names], node.lineno
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and top_level_only:
                continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt | ast.excepthandler):
                    yield from visit([n for n in inner if isinstance(n, ast.stmt)])
                    for handler in inner:
                        if isinstance(handler, ast.ExceptHandler):
                            yield from visit(handler.body)

    yield from visit(tree.body)


def _targets(base: str, names: list[str]) -> list[str]:
    """The labledger modules an import statement loads (``from pkg import module`` included)."""
    submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
    # ``from package import module`` needs the package only being initialised, not finished
    attributes = len(submodules) < len(names) or not names
    return ([base] if base in MODULES and attributes else []) + submodules


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        edges = graph.setdefault(module, set())
        for base, names, _ in _imports(tree, module, top_level_only):
            for target in _targets(base, names):
                # (importing a.b.c only needs a and a.b being initialised: not an edge to them)
                if target != module:
                    edges.add(target)
        edges.discard(module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


@pytest.mark.parametrize("when", ["at import time", "at any time (imports inside functions too)"])
def test_no_runtime_import_cycle(when: str) -> None:
    """Only imports under ``if TYPE_CHECKING:`` may close a circle."""
    graph = _graph(top_level_only=when == "at import time")
    assert _cycles(graph) == []


def _subpackage(module: str) -> str:
    parts = module.split(".")
    if module.startswith("labledger.integrations"):
        return "labledger.integrations"
    path = MODULES[module]
    return ".".join(parts[:2]) if len(parts) > 2 or path.name == "__init__.py" else "labledger"


def test_no_private_name_is_imported_across_subpackages() -> None:
    crossing = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        for base, names, line in _imports(tree, module, top_level_only=False):
            if not base.startswith("labledger"):
                continue
            source = base if base in MODULES else None
            if source is None or _subpackage(source) == _subpackage(module):
                continue
            private = [n for n in names if n.startswith("_") and f"{base}.{n}" not in MODULES]
            private += [base] if any(p.startswith("_") for p in base.split(".")[1:]) and not private else []
            if private and _subpackage(source) != _subpackage(module):
                crossing.append(f"{path.relative_to(ROOT)}:{line} imports {', '.join(private)} from {base}")
    assert crossing == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_is_at_most_400_lines(module: str) -> None:
    lines = MODULES[module].read_text().count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines"


#: SQL keywords (case-sensitive, whole words) that only the store's modules may hold in strings.
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE TABLE|PRAGMA)\b")
SQL_MODULES = ("sqlite3", "sqlite_utils")
#: Modules above the store still speaking SQL, each waiting for the Backend method named here.
#: Remove an entry once its module goes through the store interface (the test says when).
SQL_PENDING: dict[str, str] = {}


def _in_store(module: str) -> bool:
    return module == "labledger.store" or module.startswith("labledger.store.")


def _sql_uses(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for each SQL string, ``read_conn`` access and sqlite import in ``source``
    (imports under ``TYPE_CHECKING`` included)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            word = SQL_WORDS.search(node.value)
            if word:
                found.append((node.lineno, f"has SQL ({word.group(0)}) in a string"))
        elif isinstance(node, ast.Attribute) and node.attr == "read_conn":
            found.append((node.lineno, "reads the store's SQLite connection"))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [(node.lineno, f"imports {n}") for n in names if n.split(".")[0] in SQL_MODULES]
    return sorted(found)


def test_nothing_above_the_store_speaks_sql() -> None:
    speaking = {}
    for module, path in MODULES.items():
        uses = [] if _in_store(module) else _sql_uses(path.read_text())
        if uses:
            speaking[module] = [f"{path.relative_to(ROOT)}:{line} {what}" for line, what in uses]
    unexpected = [use for module, uses in speaking.items() if module not in SQL_PENDING for use in uses]
    assert unexpected == [], "go through labledger.store.backend.Backend instead:\n" + "\n".join(unexpected)
    done = sorted(set(SQL_PENDING) - set(speaking))
    assert done == [], f"no SQL left in {done}: remove them from SQL_PENDING"


def test_the_sql_check_sees_sql() -> None:
    source = (
        "import sqlite3\n"
        "from sqlite_utils import Database\n"
        "Q = f'SELECT {x} FROM runs'\n"
        "c.read_conn\n"
        "if TYPE_CHECKING:\n"
        "    import sqlite3.dbapi2\n"
        "'''UPDATED rows: selected, Pragmatic, CREATE TABLES'''\n"
    )
    assert [line for line, _ in _sql_uses(source)] == [1, 2, 3, 4, 6]
