"""``import labledger`` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "pandas",
    "numpy",
    "sqlite_utils",
    "torch",
    "lightning",
    "pytorch_lightning",
    "keras",
    "tensorflow",
    "xgboost",
    "sklearn",
    "scipy",
    "matplotlib",
]


def test_import_labledger_loads_no_pandas_and_no_framework():
    code = (
        "import sys, json, labledger, labledger.integrations; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_starting_a_run_loads_no_pandas_and_the_integration_plugins_no_framework(tmp_path):
    code = (
        "import sys, json, labledger as ll\n"
        f"with ll.start_run('light', store={str(tmp_path / 's')!r}) as run:\n"
        "    run.log_params({'a': 1}); run.log_metric('m', 1.0)\n"
        "names = [p['name'] for p in ll.plugins.list_plugins()]\n"
        f"print(json.dumps([names, [m for m in {HEAVY!r} if m in sys.modules]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, heavy = json.loads(out.stdout)
    assert {"sklearn", "xgboost", "lightning", "keras"} <= set(names)
    assert heavy == []


#: What ``import labledger`` loads besides the package itself: nothing; every public name loads on first use.
NOT_AT_IMPORT = [
    "pluggy",
    "sqlite3",
    "importlib.metadata",
    "inspect",
    "dataclasses",
    "subprocess",
    "platform",
]


def test_import_labledger_loads_none_of_its_parts():
    code = (
        "import sys, json, labledger; "
        "print(json.dumps([sorted(m for m in sys.modules if m.startswith('labledger.')), "
        f"[m for m in {NOT_AT_IMPORT!r} if m in sys.modules]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [[], []]


def test_a_listing_loads_no_plugin_distribution_metadata_and_no_lineage(tmp_path):
    code = (
        "import sys, json, labledger as ll\n"
        f"ll.runs(store={str(tmp_path / 's')!r})\n"
        "print(json.dumps([m for m in ('importlib.metadata', 'labledger.lineage.reproduce', "
        "'labledger.analysis.compare', 'labledger.query.filters', 'labledger.tracking.start') "
        "if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_every_public_name_is_there_and_is_the_object_its_module_defines():
    import importlib

    import labledger as ll

    assert set(ll.__all__) <= set(dir(ll))
    for name in ll.__all__:
        value = getattr(ll, name)
        if name in ll._LAZY:
            assert value is getattr(importlib.import_module(ll._LAZY[name]), name), name
    namespace: dict[str, object] = {}
    exec("from labledger import *", namespace)
    assert {n for n in namespace if not n.startswith("__")} | {"__version__"} == set(ll.__all__)
    assert ll.plugins.hookimpl is ll.hookimpl and ll.errors.LabledgerError.__module__ == "labledger.errors"
    try:
        ll.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("a missing name must raise AttributeError")
