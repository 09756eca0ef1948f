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
