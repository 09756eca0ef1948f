"""The store interface: the SQLite store implements :class:`Backend`, and a store offering only
the protocol serves recording, reading, listing, exporting and comparing."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import pytest

import labledger as ll
from labledger.analysis.export import export_records
from labledger.analysis.pairing import fold_values
from labledger.formatting import short_id
from labledger.hooks import manager as plugins
from labledger.query.filter_syntax import ATTRIBUTES, parse_field
from labledger.query.filters import FilterSyntaxError, normal_form, parse, parse_order_by
from labledger.query.listing import column_values
from labledger.query.runs import experiments, run_rows
from labledger.store import Store, filter_sql, open_store
from labledger.store.backend import Backend, FilterTooLargeError, RunSelection

MEMBERS = sorted(name for name in {*vars(Backend), *Backend.__annotations__} if not name.startswith("_"))


def test_the_sqlite_store_is_a_backend(store_path):
    store = open_store(store_path)
    assert isinstance(store, Backend)
    assert len(MEMBERS) > 40


@pytest.mark.parametrize("name", MEMBERS)
def test_every_protocol_method_exists_on_the_store_with_its_signature(name):
    assert hasattr(Store, name) or name in Backend.__annotations__, f"Store lacks {name}"
    declared = inspect.getattr_static(Backend, name, None)
    if not callable(declared) or isinstance(declared, property):
        return
    ours = inspect.signature(getattr(Store, name))
    theirs = inspect.signature(declared)
    assert list(ours.parameters.values()) == list(theirs.parameters.values()), name
    assert inspect.getdoc(declared), f"Backend.{name} has no docstring"


def test_the_filter_attributes_all_compile():
    assert set(ATTRIBUTES) == set(filter_sql.ATTRIBUTE_SQL)


class ProtocolOnly:
    """A store offering exactly the protocol (a stand-in for another backend): anything above the
    store that reaches past it fails here."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name not in MEMBERS:
            raise AttributeError(f"{name} is not part of the Backend protocol")
        return getattr(self._inner, name)


class ProxyScheme:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.stores: dict[str, ProtocolOnly] = {}

    @ll.hookimpl
    def labledger_open_store(self, uri):
        if not uri.startswith("proxy://"):
            return None
        name = uri.removeprefix("proxy://")
        if name not in self.stores:
            self.stores[name] = ProtocolOnly(Store(self.root / name))
        return self.stores[name]


@pytest.fixture
def proxy(tmp_path):
    plugins.register(ProxyScheme(tmp_path / "proxy"), name="proxy-scheme")
    return "proxy://ledger"


def _record(store: Any, tmp_path: Path) -> tuple[str, str]:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights")
    with ll.start_run("exp", store=store, name="parent", params={"lr": 0.1, "model": "svc"}) as parent:
        parent.log_metrics({"val_loss": 0.5, "acc": 0.8}, step=0)
        parent.log_metrics({"val_loss": 0.3, "acc": 0.9}, step=1)
        parent.set_tags({"team": "vision"})
        parent.set_tags({"team": "nlp"})
        parent.note("first try")
        parent.log_folds("accuracy", [0.9, 0.8, float("nan")])
        parent.log_dataset("train", fingerprint="abc123")
        parent.log_artifact(weights, kind="model")
        with ll.start_run("exp", store=store, name="child", parent=parent) as child:
            child.log_params({"lr": 0.2})
            child.log_metric("val_loss", 0.7)
    return parent.id, child.id


def test_a_store_offering_only_the_protocol_serves_every_reader(proxy, tmp_path):
    parent_id, child_id = _record(proxy, tmp_path)
    view = ll.get_run(parent_id, store=proxy)
    assert view.params == {"lr": 0.1, "model": "svc"} and view.tags == {"team": "nlp"}
    assert [h["value"] for h in view.tag_history] == ["vision", "nlp"]
    assert [n["text"] for n in view.notes] == ["first try"]
    assert view.summary["val_loss"]["last"] == 0.3 and view.summary["acc"]["count"] == 2
    assert list(view.metric("val_loss")["value"]) == [0.5, 0.3]
    assert sorted(set(view.metrics["key"])) == ["acc", "val_loss"]
    assert view.fold_stats[("accuracy", "test")]["n"] == 3 and len(view.folds) == 3
    assert [d["role"] for d in view.datasets] == ["train"]
    assert view.artifact("model.bin").path.read_bytes() == b"weights"
    assert [c.id for c in view.children] == [child_id]
    assert ll.get_run(child_id, store=proxy).lineage.get("inherited_from") == parent_id
    assert ll.get_run(parent_id[:16], store=proxy).id == parent_id
    assert ll.get_run("exp/child", store=proxy).id == child_id
    assert [e["runs"] for e in experiments(proxy)] == [2]
    frame = ll.runs("exp", store=proxy, include_children=True, where="params.lr > 0.15", aggregate="best")
    assert list(frame["id"]) == [child_id] and "metrics.val_loss.best" in frame
    rows = run_rows("exp", proxy, order_by="best(metrics.val_loss)")
    assert [r["id"] for r in rows] == [parent_id, child_id]
    assert column_values(open_store(proxy), rows, ["best(metrics.val_loss)", "dataset.train"])[1] == {
        "best(metrics.val_loss)": 0.7,
        "dataset.train": None,
    }
    assert fold_values(view, "accuracy")[:2] == [0.9, 0.8]
    assert [r["id"] for r in export_records("exp", store=proxy)] == [child_id, parent_id]
    assert ll.metric_direction("acc", "min", store=proxy) == "min"
    assert ll.metric_direction("acc", store=proxy) == "min"
    assert short_id(parent_id, open_store(proxy)) == parent_id[:12]


def test_record_reads_give_plain_rows(store_path, tmp_path):
    parent_id, child_id = _record(store_path, tmp_path)
    store = open_store(store_path)
    assert store.run_row(parent_id)["experiment"] == "exp"
    assert store.run_row("nope") is None and store.run_row_by_name("exp", "nope") is None
    assert [r["id"] for r in store.run_rows_by_prefix(min(parent_id, child_id)[:4], 6)] == sorted(
        [parent_id, child_id]
    )
    assert sorted(store.params_of([parent_id, child_id])) == sorted(
        [(child_id, "lr", "0.2"), (parent_id, "lr", "0.1"), (parent_id, "model", '"svc"')]
    )
    summary = {k: rest for run, k, *rest in store.summaries_of([parent_id]) if run == parent_id}
    assert summary["val_loss"][:4] == [0.3, 0.3, 0.5, 2]  # last, min, max, count, then the rest
    assert len(store.summaries_of([parent_id], brief=True)[0]) == 6
    assert [r[3:] for r in store.folds_of([parent_id])] == [(0, 0.9), (1, 0.8), (2, None)]
    assert store.fold_stats_of([parent_id])[0][:4] == (parent_id, "accuracy", "test", 3)
    assert [r[2] for r in store.datasets_of([parent_id])] == ["train"]
    assert store.artifact_by_content(store.artifact_sha(parent_id, "model.bin"), "x") == (
        parent_id,
        "model.bin",
    )
    assert store.run_ids() == sorted([parent_id, child_id]) and store.runs_version() >= 2
    sizes = dict(store.metric_sizes(parent_id))
    assert sizes == {"acc": 2, "val_loss": 2} and store.metric_sizes(parent_id, "acc") == [("acc", 2)]
    with store.snapshot():
        keys = [key for key, _, _ in store.metric_chunks(parent_id)]
    assert sorted(set(keys)) == ["acc", "val_loss"]
    assert store.latest_reproduction(parent_id, 0.0) is None
    store.set_setting("colour:a", "red")
    assert store.setting("colour:a") == "red" and store.settings("colour:") == {"colour:a": "red"}
    assert store.setting("colour:b") is None and store.package_set("0" * 64) is None


def test_a_snapshot_reads_one_state_of_the_store(store_path):
    store = open_store(store_path)
    with ll.start_run("exp", store=store_path) as run:
        run.log_metric("loss", 1.0)
        run.flush()
        with store.snapshot():
            before = store.metric_sizes(run.id)
            run.log_metric("loss", 2.0)
            run.flush()
            assert store.metric_sizes(run.id) == before == [("loss", 1)]
        assert store.metric_sizes(run.id) == [("loss", 2)]


def test_select_runs_takes_a_selection_in_normal_form(store_path):
    ids = []
    for i in range(4):
        with ll.start_run("sel", store=store_path, name=f"r{i}", params={"x": i}) as run:
            run.log_metric("val_loss", 1.0 / (i + 1))
        ids.append(run.id)
        time.sleep(0.002)
    store = open_store(store_path)
    where = normal_form(parse("params.x >= 1 and not params.x = 3"))
    order = parse_order_by("best(metrics.val_loss)")
    rows = store.select_runs(RunSelection("sel", where=where, order_by=order, limit=5, brief=True))
    assert [r["name"] for r in rows] == ["r2", "r1"]
    assert set(rows[0]) == {
        "id", "experiment", "name", "status", "parent_id", "start_time", "end_time", "author", "hypothesis"
    }  # fmt: skip
    assert [r["name"] for r in store.select_runs(RunSelection("sel"))] == ["r3", "r2", "r1", "r0"]
    assert store.field_values(ids[:2], parse_field("params.x")) == {ids[0]: 0, ids[1]: 1}


@pytest.mark.sqlite_only
def test_a_filter_too_large_for_the_store_is_reported_at_its_column(store_path, monkeypatch):
    monkeypatch.setattr(filter_sql, "max_variables", lambda: 10)
    text = " or ".join(f"params.k{i} = {i}" for i in range(8))
    with pytest.raises(FilterTooLargeError) as raw:
        open_store(store_path).select_runs(RunSelection(where=normal_form(parse(text))))
    assert raw.value.column == text.index("params.k5") + 1
    with pytest.raises(FilterSyntaxError) as shown:
        ll.runs(store=store_path, where=text)
    assert shown.value.column == raw.value.column and "^" in str(shown.value)


def test_field_sql_refuses_an_unresolved_best():
    with pytest.raises(ValueError, match="resolved"):
        filter_sql.field_sql(parse_field("best(metrics.loss)"))


def test_rows_of_many_runs_name_each_run(store_path, tmp_path):
    parent_id, child_id = _record(store_path, tmp_path)
    store = open_store(store_path)
    assert store.tags_of([parent_id, child_id, "missing"]) == [(parent_id, "team", "nlp")]
    assert store.tag_history_rows(parent_id)[0]["value"] == "vision"
    assert store.note_rows(child_id) == [] and store.pipeline_rows(parent_id) == []
    assert store.artifact_rows(parent_id)[0]["kind"] == "model"
    assert [c["id"] for c in store.child_rows(parent_id)] == [child_id]
