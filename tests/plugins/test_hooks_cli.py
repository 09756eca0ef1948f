"""Hooks seen from the command line: export formats, commands added late, ``labledger plugins``,
and pluggy's tracing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pandas as pd
import pytest
from click.testing import CliRunner

import labledger as ll
from labledger.analysis.export import (
    EXPORT_FORMATS,
    UnsupportedExportFormatError,
    export_formats,
    export_runs,
)
from labledger.cli import app as cli_module
from labledger.errors import PluginRegistrationError
from labledger.hooks import manager as plugins
from labledger.hooks.manager import PluginWarning


class Tsv:
    @ll.hookimpl
    def labledger_export_formats(self):
        def write(runs, path):
            runs.frame().to_csv(path, sep="\t", index=False)

        return {"tsv": write}


@pytest.fixture
def two_runs(store_path):
    for c in (1.0, 10.0):
        with ll.start_run("export-hooks", tags={"team": "vision"}) as run:
            run.log_params({"C": c})
            run.log_metric("acc", c / 20)
    return store_path


def test_hook_labledger_export_formats(two_runs, tmp_path):
    assert set(EXPORT_FORMATS) == set(export_formats())  # the built-ins come from a plugin too
    with pytest.raises(UnsupportedExportFormatError, match="csv, json, parquet"):
        export_runs("export-hooks", tmp_path / "runs.tsv")
    plugins.register(Tsv(), name="tsv-format")
    assert sorted(export_formats()) == ["csv", "json", "parquet", "tsv"]

    path = export_runs("export-hooks", tmp_path / "runs.tsv")  # the suffix picks the plugin's format
    table = pd.read_csv(path, sep="\t")
    assert sorted(table["params.C"]) == [1.0, 10.0] and set(table["tags.team"]) == {"vision"}

    result = CliRunner().invoke(
        cli_module.main, ["export", "export-hooks", "--format", "tsv", "-o", str(tmp_path / "cli.out")]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "cli.out", sep="\t")) == 2
    result = CliRunner().invoke(cli_module.main, ["export", "--format", "xlsx", "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "csv, json, parquet, tsv" in result.output


def test_a_plugin_may_replace_a_builtin_format_and_bad_offers_are_reported(two_runs, tmp_path):
    class PlainJson:
        @ll.hookimpl
        def labledger_export_formats(self):
            return {"json": lambda runs, path: path.write_text(json.dumps([r["id"] for r in runs.records()]))}

    class Bad:
        @ll.hookimpl
        def labledger_export_formats(self):
            return {"Not A Name": print, "xml": "not callable"}

    plugins.register(PlainJson(), name="plain-json")
    plugins.register(Bad(), name="bad-formats")
    with pytest.warns(PluginWarning, match="bad-formats"):
        formats = export_formats()
    assert sorted(formats) == ["csv", "json", "parquet"]
    ids = json.loads(export_runs("export-hooks", tmp_path / "ids.json").read_text())
    assert len(ids) == 2 and all(isinstance(i, str) for i in ids)


def hello_plugin(word: str):
    class Hello:
        @ll.hookimpl
        def labledger_register_commands(self, cli):
            @cli.command(name=f"hello-{word}")
            def hello():
                click.echo(f"hello {word}")

    return Hello()


def test_commands_of_a_plugin_registered_after_the_cli_was_built_are_added():
    cli_module._register_plugin_commands()  # the CLI is built for this plugin manager
    try:
        plugins.register(hello_plugin("late"), name="late-commands")
        result = CliRunner().invoke(cli_module.main, ["hello-late"])
        assert result.exit_code == 0 and result.output == "hello late\n"
        cli_module._register_plugin_commands()  # asking again changes nothing
        assert "hello-late" in cli_module.main.commands
    finally:
        cli_module.main.commands.pop("hello-late", None)


def test_a_plugin_raising_while_commands_are_added_is_isolated():
    class Broken:
        @ll.hookimpl
        def labledger_register_commands(self, cli):
            raise RuntimeError("no commands today")

    plugins.register(Broken(), name="broken-commands")
    plugins.register(hello_plugin("early"), name="early-commands")
    try:
        with pytest.warns(PluginWarning, match="broken-commands.*no commands today"):
            cli_module._register_plugin_commands()
        assert "hello-early" in cli_module.main.commands  # the others still added theirs
        # registered later, a raising plugin is refused, and left unregistered
        with pytest.raises(PluginRegistrationError, match=r"'late-broken'.*labledger_register_commands"):
            plugins.register(Broken(), name="late-broken")
        assert "late-broken" not in {p["name"] for p in plugins.list_plugins()}
    finally:
        cli_module.main.commands.pop("hello-early", None)


def test_the_plugins_command_lists_what_is_loaded_and_where_it_came_from():
    class InCode:
        @ll.hookimpl
        def labledger_run_ended(self, run, status, error):
            pass

    plugins.register(InCode(), name="in-code")
    cli_module._register_plugin_commands()
    result = CliRunner().invoke(cli_module.main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.output)}
    sink = listed["labledger.store.sink"]
    assert sink["source"] == "built-in" and sink["distribution"] is None
    assert {"labledger_open_store", "labledger_artifact_store", "labledger_metrics_logged"} <= set(
        sink["hooks"]
    )
    assert listed["labledger.analysis.export_formats"]["hooks"] == ["labledger_export_formats"]
    assert listed["labledger.cli.commands.plugins"]["source"] == "built-in"
    assert listed["in-code"] == {
        "name": "in-code",
        "source": "registered in code",
        "distribution": None,
        "version": None,
        "hooks": ["labledger_run_ended"],
    }
    sklearn = listed["sklearn"]  # the integrations come through the labledger distribution's entry points
    assert sklearn["source"] == "entry point" and sklearn["distribution"] == "labledger"
    assert sklearn["version"] == ll.__version__

    table = CliRunner().invoke(cli_module.main, ["plugins"]).output
    assert "labledger.store.sink" in table and "built-in" in table and "registered in code" in table
    assert "open_store" in table and f"labledger {ll.__version__}" in table


def test_tracing_writes_through_pluggys_tag_tracer(monkeypatch):
    monkeypatch.setenv("LABLEDGER_TRACE_PLUGINS", "1")
    pm = plugins.get_plugin_manager(fresh=True)
    lines: list[str] = []
    pm.trace.root.setwriter(lines.append)  # pluggy's tracer: whoever sets its writer reads the trace
    with ll.start_run("traced") as run:
        run.log_param("a", 1)
    text = "".join(lines)
    opened = next(line for line in lines if "labledger_open_store -> " in line)  # a call pluggy makes itself
    assert "labledger.store.sink [hook]" in opened
    assert "labledger_params_logged -> labledger.store.sink [hook]" in text  # one isolated plugin call
    assert "finish labledger_run_ended --> [] [hook]" in text


@pytest.mark.timeout(120)
def test_tracing_prints_hook_calls_to_stderr(tmp_path):
    code = "import labledger as ll\nwith ll.start_run('traced') as run:\n    run.log_param('a', 1)\n"
    env = {**os.environ, "LABLEDGER_TRACE_PLUGINS": "1", "LABLEDGER_STORE": str(tmp_path / "s")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "labledger_params_logged -> labledger.store.sink [hook]" in done.stderr
    assert "    params: {'a': 1}" in done.stderr
    env["LABLEDGER_TRACE_PLUGINS"] = "0"
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and "[hook]" not in quiet.stderr
