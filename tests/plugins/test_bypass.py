"""Readers skip building the plugin manager only while labledger's own plugins are all there is."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import labledger as ll
from labledger.hooks import bypass
from labledger.hooks import manager as plugins
from labledger.hooks.entry_points import entry_points


def test_labledgers_own_entry_points_are_known_and_serve_no_store():
    installed = {ep.value for ep in entry_points(bypass.ENTRY_POINT_GROUP)}
    assert installed == set(bypass.BUILTIN_ENTRY_POINTS)
    for value in installed:
        module = importlib.import_module(value)
        assert not hasattr(module, "labledger_open_store")
        assert not hasattr(module, "labledger_artifact_store")


def test_only_builtin_plugins_until_the_manager_is_built_or_a_plugin_is_disabled(monkeypatch):
    assert plugins.get_plugin_manager_if_built() is None
    assert bypass.only_builtin_plugins()
    monkeypatch.setenv("LABLEDGER_DISABLE_PLUGINS", "sklearn")
    assert not bypass.only_builtin_plugins()
    monkeypatch.delenv("LABLEDGER_DISABLE_PLUGINS")
    monkeypatch.setenv("LABLEDGER_TRACE_PLUGINS", "1")
    assert not bypass.only_builtin_plugins()
    monkeypatch.delenv("LABLEDGER_TRACE_PLUGINS")
    plugins.get_plugin_manager()
    assert not bypass.only_builtin_plugins()


def test_an_installed_third_party_plugin_turns_the_bypass_off(tmp_path, monkeypatch):
    site = tmp_path / "site"
    info = site / "ledger_extra-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ledger-extra\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[labledger]\nextra = ledger_extra_plugin\n")
    (site / "ledger_extra_plugin.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    assert not bypass.only_builtin_plugins()


def test_a_plugin_registered_at_run_time_serves_the_stores_readers_open(tmp_path, store_path):
    with ll.start_run("bypass", store=store_path) as run:
        run.log_metric("loss", 0.5, step=0)
    plugins.reset()
    served = []

    class Spy:
        @ll.hookimpl(tryfirst=True)
        def labledger_open_store(self, uri):
            served.append(uri)

    plugins.register(Spy(), name="spy")
    assert len(ll.runs("bypass", store=store_path)) == 1
    assert served == [str(store_path)]


def test_a_first_listing_and_history_read_do_not_import_pluggy(tmp_path: Path):
    store = tmp_path / "bypass-store"
    with ll.start_run("bypass", store=store) as run:
        run.log_metrics({"loss": 0.5, "acc": 0.9}, step=0)
    code = textwrap.dedent(
        f"""
        import sys
        import labledger as ll
        assert len(ll.runs("bypass", store={str(store)!r})) == 1
        assert ll.get_run({run.id!r}, store={str(store)!r}).metric("loss")["value"].tolist() == [0.5]
        assert "pluggy" not in sys.modules, "pluggy was imported"
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
