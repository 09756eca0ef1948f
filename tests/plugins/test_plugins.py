"""The hook system: every hook is called with what its docstring promises; plugins are isolated."""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import pytest

import labledger as ll
from labledger.hooks import manager as plugins
from labledger.hooks import specs as hookspecs
from labledger.hooks.manager import PluginWarning
from labledger.records import Fingerprint

README = Path(__file__).resolve().parents[2] / "README.md"
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("labledger_"))


class Recorder:
    """A plugin that records every event it sees."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def _rec(self, name, **kw):
        self.calls.append((name, kw))

    @ll.hookimpl
    def labledger_run_started(self, run):
        self._rec("run_started", run=run)

    @ll.hookimpl
    def labledger_run_ended(self, run, status, error):
        self._rec("run_ended", run=run, status=status, error=error)

    @ll.hookimpl
    def labledger_params_logged(self, run, params):
        self._rec("params_logged", params=dict(params))

    @ll.hookimpl
    def labledger_metrics_logged(self, run, batch):
        self._rec("metrics_logged", points=list(batch.points()), seq=batch.seq)

    @ll.hookimpl
    def labledger_folds_logged(self, run, key, split, values, stats):
        self._rec("folds_logged", key=key, split=split, values=values, stats=stats)

    @ll.hookimpl
    def labledger_tags_set(self, run, tags):
        self._rec("tags_set", tags=dict(tags))

    @ll.hookimpl
    def labledger_note_added(self, run, text, timestamp):
        self._rec("note_added", text=text)

    @ll.hookimpl
    def labledger_artifact_logged(self, run, artifact):
        self._rec("artifact_logged", artifact=artifact)

    @ll.hookimpl
    def labledger_dataset_logged(self, run, dataset):
        self._rec("dataset_logged", dataset=dataset)

    def named(self, name):
        return [kw for n, kw in self.calls if n == name]


@pytest.fixture
def recorder():
    rec = Recorder()
    plugins.register(rec, name="recorder")
    return rec


def test_every_hook_has_a_test():
    """Each hook has a ``test_hook_<name>`` here or in a ``test_hooks_*.py`` beside this file."""
    sources = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    tested = set(re.findall(r"^def test_hook_(labledger_\w+)\(", sources, re.M))
    assert set(HOOKS) <= tested, set(HOOKS) - tested


def test_every_hook_is_documented_with_when_it_fires_and_what_it_returns():
    for name in HOOKS:
        spec = getattr(hookspecs, name)
        doc = inspect.getdoc(spec) or ""
        assert len(doc.splitlines()) >= 3 and ":returns:" in doc, (
            f"{name}: say when it fires and what it returns"
        )
        if spec.labledger_spec["firstresult"]:
            assert "first plugin" in doc, f"{name}: say that the first plugin answering wins"
        if spec.labledger_spec["historic"]:
            assert "historic" in doc, f"{name}: say that plugins registered later are called too"


def test_the_hooks_reference_is_generated_from_the_specs_or_lists_every_signature():
    reference = README.parent / "docs" / "hooks-reference.md"
    if reference.is_file() and "::: labledger.hooks.specs" in reference.read_text():
        return  # every hook, its signature and its docstring are rendered from labledger.hooks.specs
    text = README.read_text()
    for name in HOOKS:
        args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"{name}({args})" in text, f"README lacks {name}({args})"


def test_hook_labledger_run_started(recorder):
    run = ll.start_run("hooks", name="first")
    (call,) = recorder.named("run_started")
    assert call["run"] is run and run.name == "first"
    assert recorder.calls[0][0] == "run_started"


def test_hook_labledger_run_ended(recorder):
    with pytest.raises(ZeroDivisionError), ll.start_run("hooks") as run:
        run.log_metric("m", 1.0)
        1 / 0  # noqa: B018
    (call,) = recorder.named("run_ended")
    assert call["status"] == "failed" and "ZeroDivisionError" in call["error"]
    # every buffered point was delivered before the end
    names = [n for n, _ in recorder.calls]
    assert names.index("metrics_logged") < names.index("run_ended")


def test_hook_labledger_params_logged(recorder, run):
    run.log_params({"a": 1, "nested": {"b": 2}})
    run.log_params({"a": 1, "c": 3})
    assert recorder.named("params_logged") == [{"params": {"a": 1, "nested/b": 2}}, {"params": {"c": 3}}]


def test_hook_labledger_metrics_logged(recorder, run):
    run.log_metrics({"a": 1.0, "b": math.inf}, step=3, epoch=1)
    run.log_metric("a", 2.0)
    run.flush()
    run.log_metric("a", 3.0)
    run.end()
    batches = recorder.named("metrics_logged")
    assert [b["seq"] for b in batches] == [0, 1]
    points = [p[:3] + p[4:] for b in batches for p in b["points"]]
    assert points == [("a", 3, 1, 1.0), ("a", 4, None, 2.0), ("b", 3, 1, math.inf), ("a", 5, None, 3.0)]


def test_hook_labledger_folds_logged(recorder, run):
    run.log_folds("acc", [0.5, 0.7], split="test")
    (call,) = recorder.named("folds_logged")
    assert call["key"] == "acc" and call["values"] == [0.5, 0.7]
    assert call["stats"]["mean"] == pytest.approx(0.6)


def test_hook_labledger_tags_set(recorder, run):
    run.set_tags({"team": "vision"})
    assert recorder.named("tags_set") == [{"tags": {"team": "vision"}}]


def test_hook_labledger_note_added(recorder, run):
    run.note("looks good")
    assert recorder.named("note_added") == [{"text": "looks good"}]


def test_hook_labledger_artifact_logged(recorder, run, tmp_path):
    f = tmp_path / "plot.png"
    f.write_bytes(b"\x89PNG fake")
    run.log_artifact(f, kind="plot")
    (call,) = recorder.named("artifact_logged")
    art = call["artifact"]
    assert art.name == "plot.png" and art.kind == "plot" and art.media_type == "image/png"
    assert Path(art.local_path).read_bytes() == b"\x89PNG fake"


def test_hook_labledger_dataset_logged(recorder, run):
    run.log_dataset("digits", fingerprint="ff00", role="test", rows=3)
    (call,) = recorder.named("dataset_logged")
    assert call["dataset"].fingerprint == "ff00" and call["dataset"].summary == {"rows": 3}


def test_hook_labledger_fingerprint_dataset(run):
    class BytesFingerprinter:
        @ll.hookimpl
        def labledger_fingerprint_dataset(self, data):
            if isinstance(data, bytes):
                import hashlib

                return Fingerprint(hashlib.sha256(data).hexdigest(), {"bytes": len(data)})
            return None

    class Declines:
        @ll.hookimpl
        def labledger_fingerprint_dataset(self, data):
            return None

    plugins.register(BytesFingerprinter(), name="bytes-fp")
    plugins.register(Declines(), name="declines")
    fp = run.log_dataset("raw", data=b"abc")
    assert fp == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    run.end()
    (ds,) = ll.get_run(run.id).datasets
    assert ds["fingerprint"] == fp and ds["summary"] == {"bytes": 3}


def test_hook_labledger_collect_environment():
    class Gpu:
        @ll.hookimpl
        def labledger_collect_environment(self):
            return {"accelerator": "none"}

    plugins.register(Gpu(), name="gpu-info")
    with ll.start_run("hooks") as run:
        pass
    env = ll.get_run(run.id).environment
    assert env["gpu-info"] == {"accelerator": "none"} and env["python"]


def test_hook_labledger_lineage_recorded(recorder, monkeypatch):
    seen = []

    class Lineage:
        @ll.hookimpl
        def labledger_lineage_recorded(self, run, lineage, packages):
            seen.append((run.id, dict(lineage), packages))

    plugins.register(Lineage(), name="lineage-watch")
    with ll.start_run("hooks", seed=7) as run:
        ll.seed_everything(8)
    run.flush()  # waits for the background start-up capture
    # (a capture of an earlier test's run may still report: only this run's count)
    seen = [(s, p) for run_id, s, p in seen if run_id == run.id]
    sections = [s for s, _ in seen]
    assert sections[0]["seeds"]["seed"] == 7
    assert any(s.get("seeds", {}).get("seed") == 8 for s in sections)
    with_packages = [(s, p) for s, p in seen if p is not None]
    assert len(with_packages) == 1 and "pytest" in with_packages[0][1]
    assert with_packages[0][0]["packages_sha256"]
    assert ll.get_run(run.id).lineage["seeds"]["seed"] == 8


def test_hook_labledger_pipeline_logged(recorder, run):
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    got = []

    class Pipes:
        @ll.hookimpl
        def labledger_pipeline_logged(self, run, pipeline):
            got.append(pipeline)

    plugins.register(Pipes(), name="pipes")
    version = run.log_pipeline(make_pipeline(StandardScaler()))
    (record,) = got
    assert record.version == version and record.name == "pipeline"
    assert record.structure["class"] == "sklearn.pipeline.Pipeline"


@pytest.mark.timeout(60)
def test_hook_labledger_param_roles(run, tmp_path):
    from labledger.lineage.completeness import param_role, param_roles

    params = {"lgb/num_leaves": 31, "lgb/lr": 0.1, "lgb/num_threads": 2}
    run.log_params(params)
    before = run.completeness()
    # built-in rules: "lr" reads as configuration, "num_threads" as a hyperparameter
    assert before.parts["hyperparameters"] == (True, "2 params")
    assert before.parts["training configuration"] == (True, "lgb/lr")

    class Lgb:
        @ll.hookimpl
        def labledger_param_roles(self):
            return {"lgb/": "hyperparameter", "lgb/num_threads": "configuration"}

    class Other:  # a shorter prefix of another plugin loses to Lgb's longer ones
        @ll.hookimpl
        def labledger_param_roles(self):
            return {"l": "configuration", "unrelated/": "hyperparameter"}

    class Silent:
        @ll.hookimpl
        def labledger_param_roles(self):
            return None

    plugins.register(Other(), name="other-roles")
    plugins.register(Lgb(), name="lgb-roles")
    plugins.register(Silent(), name="silent-roles")
    assert {"lgb/": "hyperparameter", "l": "configuration"}.items() <= param_roles().items()
    after = run.completeness()
    assert after.parts["hyperparameters"] == (True, "2 params")
    assert after.parts["training configuration"] == (True, "lgb/num_threads")
    assert [param_role(k) for k in params] == ["hyperparameter", "hyperparameter", "configuration"]
    assert param_role("log_every") == "configuration"  # only "l" matches
    run.end()
    view = ll.get_run(run.id).completeness  # what `labledger audit` and `show` report
    assert view.parts["training configuration"] == (True, "lgb/num_threads")

    # the project's pyproject.toml wins over every plugin
    (tmp_path / "pyproject.toml").write_text(
        '[tool.labledger.param_roles]\n"lgb/num_threads" = "hyperparameter"\n'
    )
    assert param_role("lgb/num_threads") == "hyperparameter"
    assert ll.get_run(run.id).completeness.parts["training configuration"][0] is False


@pytest.mark.timeout(60)
def test_invalid_param_roles_are_reported_and_ignored(run, tmp_path, capsys):
    from labledger.lineage.completeness import param_role

    class Bad:
        @ll.hookimpl
        def labledger_param_roles(self):
            return {"lgb/": "hyper"}

    class Good:
        @ll.hookimpl
        def labledger_param_roles(self):
            return {"lgb/lr": "hyperparameter"}

    plugins.register(Bad(), name="bad-roles")
    plugins.register(Good(), name="good-roles")
    with pytest.warns(PluginWarning, match=r"bad-roles.*'lgb/' as 'hyper'; choose 'hyperparameter' or"):
        assert param_role("lgb/lr") == "hyperparameter"
        assert param_role("lgb/max_iter") == "configuration"  # built-in rule: Bad's answer is ignored
    (tmp_path / "pyproject.toml").write_text('[tool.labledger]\nparam_roles = ["optimizer/"]\n')
    from labledger.lineage.completeness import CompletenessWarning

    with pytest.warns(CompletenessWarning, match=r"declares param roles as a list; give a mapping"):
        assert param_role("lgb/lr") == "hyperparameter"


def test_hook_labledger_register_commands():
    import click
    from click.testing import CliRunner

    class Hello:
        @ll.hookimpl
        def labledger_register_commands(self, cli):
            @cli.command()
            def hello():
                """Say hello."""
                click.echo("hello from a plugin")

    plugins.register(Hello(), name="hello-cmd")
    from labledger.cli import app as cli_module

    cli_module._register_plugin_commands()
    try:
        result = CliRunner().invoke(cli_module.main, ["hello"])
        assert result.exit_code == 0 and result.output == "hello from a plugin\n"
    finally:
        cli_module.main.commands.pop("hello", None)


def test_a_raising_plugin_loses_nothing_and_is_reported_once(run, tmp_path):
    class Broken:
        @ll.hookimpl
        def labledger_metrics_logged(self, run, batch):
            raise RuntimeError("sink is down")

        @ll.hookimpl
        def labledger_params_logged(self, run, params):
            raise RuntimeError("params sink is down")

    recorder = Recorder()
    plugins.register(Broken(), name="broken-sink")
    plugins.register(recorder, name="after-broken")
    with pytest.warns(PluginWarning, match="broken-sink.*labledger_params_logged"):
        run.log_params({"a": 1})
    with pytest.warns(PluginWarning) as caught:
        for i in range(3):
            run.log_metric("m", float(i))
            run.flush()
    assert len(caught) == 1 and "'broken-sink'" in str(caught[0].message)
    assert "labledger_metrics_logged" in str(caught[0].message)
    run.end()
    view = ll.get_run(run.id)
    assert view.status == "finished" and view.params == {"a": 1}
    assert view.metric("m")["value"].tolist() == [0.0, 1.0, 2.0]
    assert len(recorder.named("metrics_logged")) == 3  # the other plugins still ran
    assert {e.plugin for e in run.plugin_errors} == {"broken-sink"}


def test_plugins_can_be_disabled_by_name(monkeypatch, recorder):
    monkeypatch.setenv("LABLEDGER_DISABLE_PLUGINS", "recorder")
    plugins.get_plugin_manager(fresh=True)
    with pytest.raises(ValueError, match="blocked"):
        plugins.register(Recorder(), name="recorder")
    names = [p["name"] for p in plugins.list_plugins()]
    assert "labledger.store.sink" in names and "recorder" not in names


def test_trace_prints_every_hook_call(monkeypatch, capsys):
    monkeypatch.setenv("LABLEDGER_TRACE_PLUGINS", "1")
    with ll.start_run("hooks") as run:
        run.log_param("a", 1)
    err = capsys.readouterr().err
    assert "labledger_params_logged -> labledger.store.sink" in err
    assert "labledger_run_ended -> labledger.store.sink" in err


def test_the_store_is_a_builtin_plugin_registered_like_any_other():
    listed = {p["name"]: p["hooks"] for p in plugins.list_plugins()}
    assert "labledger_metrics_logged" in listed["labledger.store.sink"]
    assert re.match(r"labledger\.", plugins.DEFAULT_PLUGINS[0])


def test_unregister_stops_calls(run):
    rec = Recorder()
    plugins.register(rec, name="temp")
    run.note("one")
    plugins.unregister(name="temp")
    run.note("two")
    assert rec.named("note_added") == [{"text": "one"}]
