"""The run hooks that get plain records: enriching a run before it starts, and the process's exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import FrozenInstanceError

import pytest

import labledger as ll
from labledger.errors import RunNotFoundError
from labledger.hooks import manager as plugins
from labledger.hooks.manager import PluginWarning
from labledger.records import RunInfo


def test_hook_labledger_run_starting(store_path):
    seen: list[tuple[RunInfo, bool]] = []
    order: list[str] = []

    class Cluster:
        @ll.hookimpl
        def labledger_run_starting(self, info):
            try:
                ll.get_run(info.id)
                written = True
            except RunNotFoundError:
                written = False
            seen.append((info, written))
            order.append("starting")
            return {
                "tags": {"cluster": "gpu-a", "team": "plugin"},
                "params": {"infra": {"gpus": 4}, "lr": 9.0},
            }

        @ll.hookimpl
        def labledger_run_started(self, run):
            order.append("started")

    class Later:  # called after Cluster (registered first): Cluster wins the keys both give
        @ll.hookimpl
        def labledger_run_starting(self, info):
            return {"tags": {"cluster": "cpu", "queue": "long"}}

    class Nothing:
        @ll.hookimpl
        def labledger_run_starting(self, info):
            return None

    plugins.register(Nothing(), name="nothing")
    plugins.register(Later(), name="later")
    plugins.register(Cluster(), name="cluster")
    with ll.start_run(
        "hooks",
        name="enriched",
        hypothesis="h",
        tags={"team": "vision"},
        params={"lr": 0.1, "opt": {"m": 0.9}},
    ) as run:
        pass
    ((info, written),) = seen
    assert isinstance(info, RunInfo) and not isinstance(info, ll.Run) and written is False
    assert (info.id, info.experiment, info.name, info.kind) == (run.id, "hooks", "enriched", "offline")
    assert (info.hypothesis, info.parent_id, info.origin) == ("h", None, None)
    assert info.store == store_path.resolve().as_uri()
    assert info.tags == {"team": "vision"} and info.params == {"lr": 0.1, "opt/m": 0.9}
    with pytest.raises(FrozenInstanceError):
        info.name = "other"  # type: ignore[misc]
    assert order == ["starting", "started"]
    view = ll.get_run(run.id)
    # what start_run was given wins; then the first plugin called
    assert view.tags == {"team": "vision", "cluster": "gpu-a", "queue": "long"}
    assert view.params == {"lr": 0.1, "opt/m": 0.9, "infra/gpus": 4}

    with ll.start_run("hooks", parent=run) as child:  # children are announced too, with their parent
        pass
    assert seen[-1][0].parent_id == run.id and seen[-1][0].id == child.id


def test_an_invalid_run_starting_answer_is_reported_and_ignored():
    class Bad:
        @ll.hookimpl
        def labledger_run_starting(self, info):
            return {"tags": {"ok": 3}}  # tag values are strings

    class Wrong:
        @ll.hookimpl
        def labledger_run_starting(self, info):
            return ["not", "a", "mapping"]

    class Good:
        @ll.hookimpl
        def labledger_run_starting(self, info):
            return {"params": {"seed": 1}}

    for plugin, name in ((Bad(), "bad-start"), (Wrong(), "wrong-start"), (Good(), "good-start")):
        plugins.register(plugin, name=name)
    with pytest.warns(PluginWarning) as caught, ll.start_run("hooks") as run:
        pass
    messages = " ".join(str(w.message) for w in caught)
    assert "'bad-start' raised in hook labledger_run_starting" in messages
    assert "'wrong-start' raised in hook labledger_run_starting" in messages
    view = ll.get_run(run.id)
    assert view.status == "finished" and view.params == {"seed": 1} and view.tags == {}


def test_run_starting_is_isolated_like_every_hook():
    class Raises:
        @ll.hookimpl
        def labledger_run_starting(self, info):
            raise RuntimeError("tag service down")

    plugins.register(Raises(), name="raises-start")
    with pytest.warns(PluginWarning, match="tag service down"), ll.start_run("hooks", tags={"a": "b"}) as run:
        pass
    assert ll.get_run(run.id).tags == {"a": "b"}


SHUTDOWN = """
import json, os, sys
import labledger as ll

class Closer:
    calls = 0

    @ll.hookimpl
    def labledger_shutdown(self):
        Closer.calls += 1
        rows = ll.open_store(create=False).query("SELECT name, status FROM runs") if START else []
        statuses = {name: status for name, status in rows}
        with open(os.environ["SHUTDOWN_FILE"], "a") as f:
            f.write(json.dumps({"calls": Closer.calls, "statuses": statuses}) + "\\n")

START = sys.argv[1:] == ["start"]
ll.plugins.register(Closer(), name="closer")
if START:
    ended = ll.start_run("exit", name="ended")
    ended.end()
    left_open = ll.start_run("exit", name="left-open")
    left_open.log_metric("loss", 0.5)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("start", [True, False], ids=["runs-left-open", "no-run"])
def test_hook_labledger_shutdown(tmp_path, start):
    out = tmp_path / "shutdown.jsonl"
    script = tmp_path / "exit_script.py"
    script.write_text(SHUTDOWN)
    done = subprocess.run(
        [sys.executable, str(script), *(["start"] if start else [])],
        env={**os.environ, "SHUTDOWN_FILE": str(out), "LABLEDGER_STORE": str(tmp_path / "store")},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["calls"] == 1  # once
    if start:  # after every run was ended and written
        assert lines[0]["statuses"] == {"ended": "finished", "left-open": "finished"}
