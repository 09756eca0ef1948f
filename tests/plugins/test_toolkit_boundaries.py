"""The built-in integrations are built on the public toolkit: they use ``labledger.integrations.base``
and public ``labledger`` names only (plus their own private modules), and no helper of the toolkit
exists twice. Read from the sources with ``ast``; nothing is imported but in a subprocess."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INTEGRATIONS = ROOT / "integrations"
#: The toolkit: ``base`` and the private modules it re-exports.
TOOLKIT = {
    "__init__",
    "base",
    "_binding",
    "_capture",
    "_environment",
    "_folds",
    "_predictions",
    "_safety",
    "_values",
}
FAMILIES = ("sklearn", "xgboost", "keras", "lightning")
#: What an integration may import from labledger itself.
PUBLIC = {
    "labledger",
    "labledger.errors",
    "labledger.plugins",
    "labledger.settings",
    "labledger.integrations.base",
}
#: The toolkit's helpers: defined once, in the toolkit.
TOOLKIT_HELPERS = {"plain", "qualified_name", "qualname", "numbers", "scalars", "status_of", "final_status"}
TOOLKIT_HELPERS |= {"report", "guard", "_guard", "_guarded", "_report", "start_args"}


def _family(stem: str) -> str:
    return next(f for f in FAMILIES if stem.strip("_").startswith(f))


def _integration_modules() -> list[Path]:
    return sorted(p for p in INTEGRATIONS.glob("*.py") if p.stem not in TOOLKIT)


def _labledger_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "labledger"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "labledger":
            found.append((node.lineno, node.module or "", [a.name for a in node.names]))
    return found


def test_every_integration_module_belongs_to_one_framework():
    assert {_family(p.stem) for p in _integration_modules()} == set(FAMILIES)


@pytest.mark.parametrize("path", _integration_modules(), ids=lambda p: p.name)
def test_an_integration_imports_the_toolkit_and_public_names_only(path: Path):
    own = f"_{_family(path.stem)}_"
    wrong = []
    for line, module, names in _labledger_imports(path):
        if module in PUBLIC and not any(n.startswith("_") for n in names):
            continue
        if module == "labledger.integrations" and all(n.startswith(own) for n in names):
            continue  # its own private modules
        if module.startswith(f"labledger.integrations.{own}"):
            continue
        wrong.append(f"{path.name}:{line} {module} {names}")
    assert wrong == []


@pytest.mark.parametrize("family", FAMILIES)
def test_each_integration_uses_the_toolkit(family: str):
    modules = [p for p in _integration_modules() if _family(p.stem) == family]
    users = [
        p.name for p in modules for _, m, _ in _labledger_imports(p) if m == "labledger.integrations.base"
    ]
    assert users, f"the {family} integration does not use labledger.integrations.base"


def test_the_toolkit_helpers_exist_once():
    defined = []
    for path in _integration_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in TOOLKIT_HELPERS:
                defined.append(f"{path.name}:{node.lineno} {node.name}")
    assert defined == []


def test_the_toolkit_imports_no_framework():
    code = (
        "import json, sys\nimport labledger.integrations.base\n"
        "heavy = ('numpy', 'torch', 'sklearn', 'xgboost', 'keras', 'lightning', 'pandas', 'scipy')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []
