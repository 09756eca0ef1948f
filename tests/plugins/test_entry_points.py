"""A third-party plugin installed through a real entry point sees its hooks called."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

PLUGIN = '''
"""A tiny third-party labledger plugin: records the events it sees in a JSON-lines file."""
import json
import os

import labledger as ll


def _write(event, **data):
    with open(os.environ["ECHO_SINK_FILE"], "a") as f:
        f.write(json.dumps({"event": event, **data}) + "\\n")


@ll.hookimpl
def labledger_run_started(run):
    _write("run_started", run=run.id)


@ll.hookimpl
def labledger_params_logged(run, params):
    _write("params_logged", params=params)


@ll.hookimpl
def labledger_metrics_logged(run, batch):
    _write("metrics_logged", points=len(batch))


@ll.hookimpl
def labledger_run_ended(run, status, error):
    _write("run_ended", status=status)


@ll.hookimpl
def labledger_collect_environment():
    return {"echo": True}
'''

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "labledger-echo-sink"
version = "1.0"

[project.entry-points.labledger]
echo = "labledger_echo_sink"

[tool.setuptools]
py-modules = ["labledger_echo_sink"]
"""

USER_SCRIPT = """
import labledger as ll
with ll.start_run("entry-points") as run:
    run.log_params({"lr": 0.1})
    for i in range(10):
        run.log_metric("loss", 1.0 / (i + 1))
print(run.id)
print(sorted(p["name"] for p in ll.plugins.list_plugins()))
"""


def test_plugin_from_an_installed_distribution_is_loaded_and_called(tmp_path, store_path):
    src = tmp_path / "labledger-echo-sink"
    src.mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "labledger_echo_sink.py").write_text(PLUGIN)
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(site),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert any(p.name.startswith("labledger_echo_sink-1.0.dist-info") for p in site.iterdir())
    events_file = tmp_path / "events.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "ECHO_SINK_FILE": str(events_file),
        "LABLEDGER_STORE": str(store_path),
    }
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent(USER_SCRIPT))
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    run_id, plugin_names = out.stdout.splitlines()
    assert "echo" in plugin_names
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_ended"
    assert {"event": "params_logged", "params": {"lr": 0.1}} in events
    assert sum(e["points"] for e in events if e["event"] == "metrics_logged") == 10
    assert events[-1]["status"] == "finished"

    import labledger as ll

    view = ll.get_run(run_id, store=store_path)
    assert view.environment["echo"] == {"echo": True}
    assert view.summary["loss"]["count"] == 10
