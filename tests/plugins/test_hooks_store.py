"""The store hooks: who serves a store's location, who keeps its artifact bytes, and what happens
when the built-in SQLite store is disabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import labledger as ll
from labledger.errors import StorePluginDisabledError, StoreURIError
from labledger.hooks import manager as plugins
from labledger.store import Store, open_store, sink
from labledger.store.blobs import BlobStore


class MemScheme:
    """Serves ``mem://<name>`` with a store of its own (a stand-in for a database backend)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stores: dict[str, Store] = {}
        self.asked: list[str] = []

    @ll.hookimpl
    def labledger_open_store(self, uri):
        self.asked.append(uri)
        if not uri.startswith("mem://"):
            return None
        name = uri.removeprefix("mem://")
        if name not in self.stores:
            self.stores[name] = Store(self.root / name)
        return self.stores[name]


def test_hook_labledger_open_store(tmp_path):
    mem = MemScheme(tmp_path / "mem")
    plugins.register(mem, name="mem-scheme")
    with ll.start_run("hooks", store="mem://alpha") as run:
        run.log_params({"lr": 0.1})
        run.log_metric("loss", 0.5)
    assert run.store is open_store("mem://alpha") is mem.stores["alpha"]
    view = ll.get_run(run.id, store="mem://alpha")
    assert view.status == "finished" and view.params == {"lr": 0.1}  # the built-in sink wrote through it
    assert (tmp_path / "mem" / "alpha" / "labledger.db").is_file()
    # folders still go to the built-in plugin (asked after: it is trylast)
    folder_store = open_store(tmp_path / "folder")
    assert isinstance(folder_store, Store) and folder_store.path == (tmp_path / "folder").resolve()
    assert str(tmp_path / "folder") in mem.asked
    assert open_store((tmp_path / "folder").as_uri()) is folder_store  # file: URIs too


def test_a_plugin_may_serve_folders_before_the_builtin(tmp_path):
    redirected = Store(tmp_path / "redirected")

    class Redirect:
        @ll.hookimpl
        def labledger_open_store(self, uri):
            return redirected if uri.endswith("team-ledger") else None

    plugins.register(Redirect(), name="redirect")
    with ll.start_run("hooks", store=tmp_path / "team-ledger") as run:
        pass
    assert run.store is redirected
    assert not (tmp_path / "team-ledger").exists()
    assert ll.get_run(run.id, store=redirected).status == "finished"


def test_a_uri_no_plugin_serves_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(StoreURIError) as caught:
        ll.start_run("hooks", store="mysql://db.example.com/ledger")
    err = caught.value
    assert err.uri == "mysql://db.example.com/ledger" and err.scheme == "mysql"
    message = str(err)
    assert "mysql://db.example.com/ledger" in message and "'mysql'" in message
    assert "labledger_open_store" in message and "folder path" in message

    from labledger.cli.app import main

    result = CliRunner().invoke(main, ["runs", "--store", "s3://bucket/ledger"])
    assert result.exit_code == 1
    assert "no installed plugin serves 's3' store URIs" in result.output


def test_hook_labledger_artifact_store(tmp_path, store_path):
    elsewhere = tmp_path / "elsewhere"
    asked: list[str] = []

    class KeepElsewhere:
        @ll.hookimpl
        def labledger_artifact_store(self, uri):
            asked.append(uri)
            return BlobStore(elsewhere) if uri == store_path.resolve().as_uri() else None

    plugins.register(KeepElsewhere(), name="keep-elsewhere")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with ll.start_run("hooks") as run:
        art = run.log_artifact(model, kind="model")
    assert asked == [store_path.resolve().as_uri()]  # asked once, when the store was opened
    assert Path(art.local_path).is_relative_to(elsewhere) and Path(art.local_path).read_bytes() == b"weights"
    assert not (store_path / "artifacts").exists() or not any((store_path / "artifacts").rglob("*"))
    # without the plugin, the built-in keeps them under the store folder
    other = open_store(tmp_path / "other")
    assert other.blobs.root == (tmp_path / "other" / "artifacts").resolve()


def test_the_builtin_store_may_be_disabled_when_another_plugin_serves_the_store(monkeypatch, tmp_path):
    monkeypatch.setenv("LABLEDGER_DISABLE_PLUGINS", "labledger.store.sink")
    plugins.get_plugin_manager(fresh=True)
    with pytest.raises(StorePluginDisabledError):
        open_store(tmp_path / "nobody")

    replacement_store = Store(tmp_path / "replacement")

    @ll.hookimpl
    def labledger_open_store(uri):
        return replacement_store

    # a complete replacement: serves the store and writes the events (here with the built-in writers)
    events = {name: getattr(sink, name) for name in dir(sink) if name.endswith(("_logged", "_set", "_added"))}
    replacement = SimpleNamespace(
        labledger_open_store=labledger_open_store, labledger_run_ended=sink.labledger_run_ended, **events
    )
    plugins.register(replacement, name="replacement-store")
    with ll.start_run("hooks") as run:
        run.log_params({"a": 1})
    assert run.store is replacement_store
    view = ll.get_run(run.id, store=replacement_store)
    assert view.status == "finished" and view.params == {"a": 1}


DISABLED = """
import json, sys
import labledger as ll
from labledger.errors import StorePluginDisabledError

open("model.bin", "wb").write(b"weights")
try:
    with ll.start_run("blocked") as run:
        run.log_artifact("model.bin", kind="model")
except StorePluginDisabledError as e:
    print(json.dumps({"error": type(e).__name__, "plugin": e.plugin, "message": str(e)}))
    sys.exit(3)
print("recorded")
"""


@pytest.mark.timeout(120)
def test_disabling_the_builtin_store_is_refused_and_leaves_the_store_as_it_was(
    run_script, store_path, tmp_path
):
    with ll.start_run("before") as before:
        before.log_artifact(__file__, kind="code")
    runs_before = sorted(r for r in ll.runs(store=store_path)["id"])
    blobs_before = sorted(p for p in (store_path / "artifacts").rglob("*") if p.is_file())

    env = {"LABLEDGER_DISABLE_PLUGINS": "labledger.store.sink"}
    done = run_script(DISABLED, env=env)
    assert done.returncode == 3, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["error"] == "StorePluginDisabledError" and report["plugin"] == "labledger.store.sink"
    assert "cannot be disabled on its own" in report["message"]
    assert "LABLEDGER_DISABLE_PLUGINS" in report["message"] and "labledger_open_store" in report["message"]

    cli = subprocess.run(
        [sys.executable, "-m", "labledger.cli", "runs", "--store", str(store_path)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode != 0
    assert "Error: the built-in store plugin 'labledger.store.sink' is disabled" in cli.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "labledger.cli", "plugins", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr  # what is loaded can still be listed
    assert "labledger.store.sink" not in {p["name"] for p in json.loads(listed.stdout)}

    # nothing was written: no new run (none left running or crashed), no new artifact file
    view = ll.runs(store=store_path)
    assert sorted(view["id"]) == runs_before and set(view["status"]) == {"finished"}
    assert sorted(p for p in (store_path / "artifacts").rglob("*") if p.is_file()) == blobs_before
    assert not (tmp_path / "store-elsewhere").exists()
    from labledger.store.fsck import fsck

    assert fsck(store_path).ok
