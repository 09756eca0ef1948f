"""What goes in comes back out: params, metrics, artifacts, tags, notes, datasets, folds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import labledger as ll


def test_params_keep_their_types_and_nested_dicts_are_flattened(run):
    params = {
        "int": 3,
        "float": 0.5,
        "bool": True,
        "str": "rbf",
        "none": None,
        "list": [1, "a", None],
        "empty": {},
        "nested": {"lr": 1e-3, "opt": {"name": "adam"}},
        "np_int": np.int64(7),
        "np_float": np.float32(0.25),
        "tuple": (1, 2),
    }
    run.log_params(params)
    run.end()
    got = ll.get_run(run.id).params
    assert got == {
        "int": 3,
        "float": 0.5,
        "bool": True,
        "str": "rbf",
        "none": None,
        "list": [1, "a", None],
        "empty": {},
        "nested/lr": 1e-3,
        "nested/opt/name": "adam",
        "np_int": 7,
        "np_float": 0.25,
        "tuple": [1, 2],
    }
    assert type(got["int"]) is int and type(got["float"]) is float and type(got["bool"]) is bool


def test_metrics_history_and_summary_with_nan_and_inf(run):
    values = [0.5, math.nan, math.inf, -math.inf, 0.25, 1e308, -0.0]
    for i, v in enumerate(values):
        run.log_metric("loss", v, step=i * 10, epoch=i)
    run.log_metrics({"acc": 0.1, "f1": 0.2})
    run.log_metrics({"acc": 0.3, "f1": np.float64(0.4)})
    run.end()
    view = ll.get_run(run.id)
    hist = view.metric("loss")
    assert hist["step"].tolist() == [i * 10 for i in range(len(values))]
    assert hist["epoch"].tolist() == list(range(len(values)))
    got = hist["value"].to_numpy()
    assert np.array_equal(got, np.array(values), equal_nan=True)
    assert math.copysign(1, got[-1]) == -1  # -0.0 kept bit for bit
    s = view.summary["loss"]
    assert s["count"] == 7 and s["nan_count"] == 1
    assert s["min"] == -math.inf and s["max"] == math.inf and s["last"] == 0.0 and s["last_step"] == 60
    # steps default to one more than the key's previous step
    acc = view.metric("acc")
    assert acc["step"].tolist() == [0, 1] and acc["epoch"].isna().all()
    full = view.metrics
    assert list(full.columns) == ["key", "step", "epoch", "timestamp", "value"]
    assert len(full) == 11 and set(full["key"]) == {"loss", "acc", "f1"}
    assert (full["timestamp"] > 1e9).all()


def test_summary_last_is_nan_when_the_last_point_is_nan(run):
    run.log_metric("x", 1.0)
    run.log_metric("x", math.nan)
    run.end()
    s = ll.get_run(run.id).summary["x"]
    assert math.isnan(s["last"]) and s["min"] == 1.0 and s["max"] == 1.0


def test_many_flushes_make_one_ordered_history(run):
    for i in range(1000):
        run.log_metric("m", float(i), step=i)
        if i % 97 == 0:
            run.flush()
    run.end()
    hist = ll.get_run(run.id).metric("m")
    assert hist["step"].tolist() == list(range(1000))
    assert hist["value"].tolist() == [float(i) for i in range(1000)]
    assert ll.get_run(run.id).summary["m"]["count"] == 1000


def test_file_and_directory_artifacts_are_content_addressed_and_deduplicated(run, tmp_path, store_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights" * 1000)
    d = tmp_path / "ckpt"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("alpha")
    (d / "sub" / "b.txt").write_text("beta")
    copy = tmp_path / "copy.bin"
    copy.write_bytes(f.read_bytes())

    rec = run.log_artifact(f, kind="model", metadata={"epoch": 3})
    run.log_artifact(d, kind="checkpoint")
    run.log_artifact(copy, kind="other")
    run.log_artifact(f, kind="model")  # same name, same content: a no-op
    run.end()
    f.unlink()

    view = ll.get_run(run.id)
    arts = {a.name: a for a in view.artifacts}
    assert set(arts) == {"model.bin", "ckpt", "copy.bin"}
    model = arts["model.bin"]
    assert model.kind == "model" and model.metadata == {"epoch": 3} and model.size == 7000
    assert model.sha256 == rec.sha256
    with model.open() as fh:
        assert fh.read() == b"weights" * 1000
    assert arts["copy.bin"].sha256 == model.sha256
    root = Path(view.store.blobs.root)  # the store's folder (a server's: this machine's cache of it)
    assert model.path.parent.parent == root
    assert model.path.name == model.sha256[2:] and model.path.parent.name == model.sha256[:2]
    blobs = [p for p in root.rglob("*") if p.is_file()]
    # model (stored once for two names), a.txt, b.txt and the directory manifest
    assert len(blobs) == 4
    ckpt = arts["ckpt"]
    assert ckpt.is_dir and ckpt.size == len("alpha") + len("beta")
    assert sorted(rel for rel, _, _ in ckpt.files) == ["a.txt", "sub/b.txt"]
    assert (ckpt.path / "sub" / "b.txt").read_text() == "beta"
    restored = ckpt.download(tmp_path / "restored")
    assert (restored / "a.txt").read_text() == "alpha"


def test_tags_are_mutable_with_timestamped_history(run):
    run.set_tags({"team": "vision", "stage": "baseline"})
    run.set_tag("stage", "candidate")
    run.end()
    run.set_tag("stage", "champion")  # tags stay mutable after the end
    view = ll.get_run(run.id)
    assert view.tags == {"team": "vision", "stage": "champion"}
    history = [(h["key"], h["value"]) for h in view.tag_history]
    assert history == [
        ("team", "vision"),
        ("stage", "baseline"),
        ("stage", "candidate"),
        ("stage", "champion"),
    ]
    times = [h["changed_at"] for h in view.tag_history]
    assert times == sorted(times)


def test_notes_hypothesis_datasets_and_folds(run):
    run.note("plateaus after epoch 6")
    fp = run.log_dataset("digits", fingerprint="abc123", role="valid", rows=10)
    assert fp == "abc123"
    stats = run.log_folds("accuracy", [0.9, 0.95, math.nan], split="test")
    assert math.isnan(stats["mean"])
    stats = run.log_folds("f1", [0.8, 0.9])
    assert stats["mean"] == pytest.approx(0.85) and stats["std"] == pytest.approx(0.05)
    run.end()
    view = ll.get_run(run.id)
    assert [n["text"] for n in view.notes] == ["plateaus after epoch 6"]
    assert view.datasets[0]["fingerprint"] == "abc123" and view.datasets[0]["role"] == "valid"
    assert view.datasets[0]["summary"] == {"rows": 10}
    folds = view.folds
    assert list(folds.columns) == ["key", "split", "fold", "value"]
    acc = folds[folds["key"] == "accuracy"]["value"].tolist()
    assert acc[:2] == [0.9, 0.95] and math.isnan(acc[2])
    assert view.fold_stats[("f1", "test")]["std"] == pytest.approx(0.05)


def test_hypothesis_child_runs_and_listing(store_path):
    with ll.start_run("exp-a", name="parent", hypothesis="more data helps") as parent:
        parent.log_params({"C": 1})
        with ll.start_run(parent=parent, experiment="exp-a", name="child") as child:
            child.log_metric("acc", 0.5)
            assert ll.active_run() is child
        assert ll.active_run() is parent
    assert ll.active_run() is None
    view = ll.get_run(parent.id)
    assert view.hypothesis == "more data helps"
    assert [c.id for c in view.children] == [child.id]
    assert ll.get_run(child.id).parent_id == parent.id
    df = ll.runs("exp-a", include_children=True)
    assert isinstance(df, pd.DataFrame) and len(df) == 2
    for col in ("id", "name", "status", "start_time", "end_time", "duration", "params.C", "metrics.acc"):
        assert col in df.columns
    assert set(df["status"]) == {"finished"}
    top = ll.runs("exp-a")
    assert top["id"].tolist() == [parent.id]


def test_run_names_are_generated_and_unique_within_an_experiment():
    a = ll.start_run("names", name="baseline")
    b = ll.start_run("names", name="baseline")
    c = ll.start_run("names")
    assert a.name == "baseline" and b.name == "baseline-2" and c.name
    assert len({a.id, b.id, c.id}) == 3 and sorted([a.id, b.id, c.id]) == [a.id, b.id, c.id]
    assert ll.get_run("names/baseline-2").id == b.id
    assert ll.get_run(c.id[:20]).id == c.id


def test_module_level_functions_log_to_the_active_run():
    with pytest.raises(ll.NoActiveRunError):
        ll.log_metric("x", 1.0)
    with ll.start_run("module-level") as run:
        ll.log_params({"a": 1})
        ll.log_param("b", 2)
        ll.log_metrics({"m": 1.0}, step=1)
        ll.log_metric("n", 2.0)
        ll.set_tags({"t": "v"})
        ll.note("hello")
    view = ll.get_run(run.id)
    assert view.params == {"a": 1, "b": 2} and set(view.summary) == {"m", "n"}
    assert view.tags == {"t": "v"} and view.notes[0]["text"] == "hello"


def test_explicit_store_argument_and_experiments_listing(tmp_path):
    other = tmp_path / "elsewhere"
    with ll.start_run("exp-b", store=other) as run:
        run.log_metric("x", 1.0)
    assert ll.get_run(run.id, store=other).status == "finished"
    assert [e["name"] for e in ll.experiments(store=other)] == ["exp-b"]
    with pytest.raises(ll.errors.RunNotFoundError):
        ll.get_run(run.id)  # not in the default store
