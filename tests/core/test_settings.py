"""Every LABLEDGER_* setting is read in one module, when used, and a bad value is one clear
error at start_run and in the CLI — never a dead writer thread or a silent default."""

from __future__ import annotations

import importlib
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import labledger as ll
from labledger import errors
from labledger.cli.app import main

ROOT = Path(__file__).resolve().parents[2]


def _settings():
    return importlib.import_module("labledger.settings")


BAD_VALUES = [
    ("LABLEDGER_FLUSH_INTERVAL", "inf"),
    ("LABLEDGER_FLUSH_INTERVAL", "nan"),
    ("LABLEDGER_FLUSH_INTERVAL", "0"),
    ("LABLEDGER_FLUSH_INTERVAL", "1e309"),
    ("LABLEDGER_FLUSH_INTERVAL", "fast"),
    ("LABLEDGER_HEARTBEAT_TIMEOUT", "-5"),
    ("LABLEDGER_HEARTBEAT_TIMEOUT", "inf"),
    ("LABLEDGER_COMPLETENESS", "strictest"),
    ("LABLEDGER_CAPTURE_CODE", "maybe"),
    ("LABLEDGER_CAPTURE_TTL", "-1"),
    ("LABLEDGER_DIFF_CAP", "1MB"),
    ("LABLEDGER_DIFF_CAP", "9" * 5000),
    ("LABLEDGER_EXPERIMENT_PATTERN", "([a-z"),
    ("LABLEDGER_EXPERIMENT", "Has Spaces"),
    ("LABLEDGER_REPRODUCTION_OF", "https://user:pw@host/run"),
    ("LABLEDGER_TRACE_PLUGINS", "loud"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES, ids=[f"{n[10:]}={v[:12]}" for n, v in BAD_VALUES])
def test_a_bad_value_stops_start_run_with_one_clear_error(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(errors.LabledgerError) as info:
        ll.start_run("settings")
    error = info.value
    assert type(error).__name__ == "SettingsError"
    assert isinstance(error, ValueError)
    assert (error.name, error.value) == (name, value)
    assert name in str(error) and value[:40] in str(error) and error.allowed in str(error)
    assert ll.active_run() is None


def test_an_infinite_flush_interval_used_to_kill_the_writer(monkeypatch):
    monkeypatch.setenv("LABLEDGER_FLUSH_INTERVAL", "inf")
    with pytest.raises(errors.LabledgerError, match=r"LABLEDGER_FLUSH_INTERVAL='inf'.*0\.01 to 3600"):
        ll.start_run("settings")


@pytest.mark.timeout(30)
def test_a_value_changed_to_nonsense_mid_run_leaves_the_writer_alive(monkeypatch):
    monkeypatch.setenv("LABLEDGER_FLUSH_INTERVAL", "0.05")
    run = ll.start_run("settings")
    monkeypatch.setenv("LABLEDGER_FLUSH_INTERVAL", "inf")  # read at use time by the writer
    time.sleep(0.2)
    for step in range(10):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    deadline = time.monotonic() + 10  # the writer falls back to the default (1 s)
    while time.monotonic() < deadline:
        if ll.get_run(run.id).summary.get("loss", {}).get("count") == 10:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the background writer stopped delivering")
    run.end()


def test_settings_are_read_when_used(monkeypatch):
    settings = _settings()
    monkeypatch.setenv("LABLEDGER_FLUSH_INTERVAL", "0.25")
    assert settings.flush_interval() == 0.25
    monkeypatch.setenv("LABLEDGER_FLUSH_INTERVAL", "  ")
    assert settings.flush_interval() == 1.0  # empty counts as unset
    monkeypatch.setenv("LABLEDGER_CAPTURE_CODE", "Off")
    assert settings.capture_code() is False
    monkeypatch.setenv("LABLEDGER_DISABLE_PLUGINS", " a, ,b ")
    assert settings.disabled_plugins() == ["a", "b"]
    monkeypatch.setenv("LABLEDGER_EXPERIMENT_PATTERN", r"^[A-Z]+$")
    monkeypatch.setenv("LABLEDGER_EXPERIMENT", "UPPER")
    settings.check()
    with ll.start_run() as run:
        assert run.experiment == "UPPER"


def test_the_cli_reports_a_bad_setting_without_a_traceback(monkeypatch):
    monkeypatch.setenv("LABLEDGER_HEARTBEAT_TIMEOUT", "soon")
    result = CliRunner().invoke(main, ["runs"])
    assert result.exit_code == 1
    assert "LABLEDGER_HEARTBEAT_TIMEOUT='soon'" in result.output and "seconds" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_every_setting_the_code_reads_is_defined_once_and_documented():
    settings = _settings()
    used = set()
    for path in [
        *ROOT.joinpath("src", "labledger").rglob("*.py"),
        *ROOT.joinpath("integrations").rglob("*.py"),
    ]:
        text = path.read_text()
        used |= set(re.findall(r"LABLEDGER_[A-Z_]+[A-Z]", text))
        if path.name != "settings.py":
            reads = re.findall(r"(?:environ\.get|getenv|environ\[)\(?\s*[\"']LABLEDGER_", text)
            assert not reads, (
                f"{path.relative_to(ROOT)} reads a LABLEDGER_ variable itself: use labledger.settings"
            )
    assert used <= set(settings.SETTINGS), used - set(settings.SETTINGS)
    table = ROOT.joinpath("docs", "settings.md").read_text()
    for setting in settings.SETTINGS.values():
        assert f"`{setting.name}`" in table, f"{setting.name} is missing from docs/settings.md"
        assert setting.doc and setting.allowed
    assert "docs/settings.md" in ROOT.joinpath("README.md").read_text()
