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


def test_starting_a_run_and_logging_loads_no_pandas(tmp_path):
    code = (
        "import sys, json, labledger as ll\n"
        f"with ll.start_run('light', store={str(tmp_path / 's')!r}) as run:\n"
        "    run.log_params({'a': 1}); run.log_metric('m', 1.0)\n"
        "print(json.dumps([m for m in ('pandas', 'numpy') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
