"""``sync``: runs copied between stores with every record, each record once — syncing twice, or
after an interrupted sync, duplicates nothing; a running run is finished by a later sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import labledger as ll
from labledger.cli.app import main
from labledger.records import MetricBatch, Series
from labledger.store import open_store
from labledger.store.backend import Backend
from labledger.store.codec import decode_chunk_lists
from labledger.store.sync import RUN_COLUMNS, sync
from labledger.store.sync_records import copy_params

from .remote_helpers import LedgerServer

pytestmark = pytest.mark.timeout(180)


def _log_runs(store: str, tmp_path: Path) -> list[str]:
    """Two experiments' runs with every kind of record (a child, a failed run, artifacts)."""
    (tmp_path / "model.bin").write_bytes(b"weights" * 3000)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "a.txt").write_text("a")
    (tmp_path / "ckpt" / "b.txt").write_text("bb")
    ids = []
    with ll.start_run(
        "digits", store=store, params={"lr": 0.1, "layers": [1, 2]}, tags={"team": "cv"}
    ) as run:
        for step in range(3000):
            run.log_metric("loss", 1.0 / (step + 1), step=step, epoch=step // 1000)
            if step % 700 == 0:
                run.flush()  # several stored chunks per key
        run.log_metric("acc", float("nan"), step=1)
        run.log_folds("f1", [0.5, float("nan"), 0.7])
        run.log_dataset("digits", fingerprint="ab" * 8, role="train", rows=1797)
        run.set_tag("team", "vision")
        run.note("first")
        run.note("second")
        run._record_lineage({"seeds": {"python": 1}, "code": {"git": None}}, {"numpy": "2.0"})
        run.log_artifact(tmp_path / "model.bin", kind="model")
        run.log_artifact(tmp_path / "ckpt", kind="checkpoint")
        with ll.start_run("digits", parent=run, params={"fold": 1}) as child:
            child.log_metric("loss", 0.5)
        ids += [run.id, child.id]
    with pytest.raises(RuntimeError), ll.start_run("other", store=store) as failed:
        for chunk in range(3):
            failed.log_metric("x", float(chunk), step=chunk)
            failed.flush()
        raise RuntimeError("boom")
    ids.append(failed.id)
    return ids


def _records(store: Backend, run_id: str) -> dict[str, object]:
    """Everything a store tells of a run, in a form two stores can be compared by."""
    row = dict(store.run_row(run_id) or {})
    with store.snapshot():
        chunks = list(store.metric_chunks(run_id))

    points: dict[str, list[tuple]] = {}
    for key, _, data in chunks:
        cols = decode_chunk_lists(data)
        points.setdefault(key, []).extend(
            zip(cols["step"], cols["epoch"], cols["timestamp"], map(repr, cols["value"]), strict=True)
        )
    return {
        "row": {k: row.get(k) for k in ("experiment", "name", "status", "start_time", "end_time", "error")},
        "lineage": json.loads(row.get("lineage") or "{}"),
        "packages": store.package_set(row["packages_sha"]) if row.get("packages_sha") else None,
        "params": sorted(store.params_of([run_id])),
        "tags": sorted(store.tags_of([run_id])),
        "tag_history": [(r["key"], r["value"], r["changed_at"]) for r in store.tag_history_rows(run_id)],
        "notes": [(r["created_at"], r["text"]) for r in store.note_rows(run_id)],
        "folds": [tuple(repr(v) for v in r) for r in store.folds_of([run_id])],
        "fold_stats": [tuple(repr(v) for v in r) for r in store.fold_stats_of([run_id])],
        "datasets": sorted(store.datasets_of([run_id])),
        "pipelines": store.pipeline_rows(run_id),
        "artifacts": sorted(
            (r["name"], r["kind"], r["sha256"], r["size"]) for r in store.artifact_rows(run_id)
        ),
        "sizes": sorted(store.metric_sizes(run_id)),
        # histories keep timestamps to the millisecond: so does a copy's last_time
        "summaries": sorted(
            (*(repr(v) for v in r[:-1]), None if r[-1] is None else int(r[-1] * 1000))
            for r in store.summaries_of([run_id])
        ),
        "points": points,
    }


def _same(source: Backend, target: Backend, ids: list[str]) -> None:
    assert sorted(target.run_ids()) == sorted(ids)
    for run_id in ids:
        assert _records(target, run_id) == _records(source, run_id), run_id


def test_sqlite_to_sqlite_copies_every_record_once(tmp_path):
    ids = _log_runs(str(tmp_path / "a"), tmp_path)
    source, target = open_store(tmp_path / "a"), open_store(tmp_path / "b")
    report = sync(source, target)
    assert (report.runs_copied, report.runs_updated, report.conflicts) == (3, 0, [])
    assert report.points == 3000 + 1 + 1 + 3 and report.artifacts == 2
    _same(source, target, ids)
    for sha in {r["sha256"] for run_id in ids for r in source.artifact_rows(run_id)}:
        assert target.blobs.path_for(sha).read_bytes() == source.blobs.path_for(sha).read_bytes()
    view = ll.get_run(ids[0], store=target)
    restored = view.artifact("ckpt").download(tmp_path / "restored")
    assert (restored / "b.txt").read_text() == "bb"

    again = sync(source, target)  # nothing twice
    assert (again.runs_copied, again.runs_updated, again.runs_unchanged) == (0, 0, 3)
    assert (again.points, again.records, again.artifacts) == (0, 0, 0)
    _same(source, target, ids)


def test_one_experiment_and_tags_changed_after_the_end(tmp_path):
    ids = _log_runs(str(tmp_path / "a"), tmp_path)
    source, target = open_store(tmp_path / "a"), open_store(tmp_path / "b")
    assert sync(source, target, experiment="other").runs_copied == 1
    assert target.run_ids() == [ids[2]]
    source.set_tags(ids[2], {"verdict": "bug"}, 12345.0)  # tags stay mutable after the end
    report = sync(source, target, experiment="other")
    assert (report.runs_updated, report.records) == (1, 1)
    assert ("verdict", "bug", 12345.0) in _records(target, ids[2])["tag_history"]


def test_an_interrupted_sync_then_a_full_one_duplicates_nothing(tmp_path):
    ids = _log_runs(str(tmp_path / "a"), tmp_path)
    source, target = open_store(tmp_path / "a"), open_store(tmp_path / "b")

    def stop(done: int, total: int, run_id: str) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the first run

    with pytest.raises(KeyboardInterrupt):
        sync(source, target, progress=stop)
    assert len(target.run_ids()) == 1
    # a run stopped half way: its row, params and first metric chunk copied, the rest not
    failed = ids[2]
    row = source.run_row(failed)
    exp = target.ensure_experiment("other")
    target.insert_run({k: row[k] for k in RUN_COLUMNS} | {"experiment_id": exp})
    copy_params(source, target, failed)
    key, _, data = next(iter(source.metric_chunks(failed)))
    cols = decode_chunk_lists(data)
    target.write_metrics(
        MetricBatch(failed, 0, {key: Series(cols["step"], cols["epoch"], cols["timestamp"], cols["value"])})
    )
    report = sync(source, target)
    assert (report.runs_copied, report.runs_updated, report.points) == (1, 1, 1 + 2)
    _same(source, target, ids)


def test_a_running_run_is_copied_as_it_is_and_finished_by_a_later_sync(tmp_path):
    source, target = open_store(tmp_path / "a"), open_store(tmp_path / "b")
    run = ll.start_run("live", store=source)
    for step in range(500):
        run.log_metric("loss", float(step), step=step)
    run.flush()
    first = sync(source, target)
    assert first.runs_copied == 1 and target.run_row(run.id)["status"] in ("running", "crashed")
    assert dict(target.metric_sizes(run.id)) == {"loss": 500}
    for step in range(500, 1200):
        run.log_metric("loss", float(step), step=step)
    run.note("done")
    run.end()
    second = sync(source, target)
    assert (second.runs_updated, second.runs_ended, second.points) == (1, 1, 700)
    _same(source, target, [run.id])


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LedgerServer]:
    monkeypatch.setenv("LABLEDGER_CACHE", str(tmp_path / "cache"))
    with LedgerServer(tmp_path / "server-store") as server:
        yield server


def test_sqlite_to_a_server_with_the_cli_twice(tmp_path, server):
    ids = _log_runs(str(tmp_path / "a"), tmp_path)
    runner = CliRunner()
    first = runner.invoke(main, ["sync", "--store", str(tmp_path / "a"), "--to", server.url])
    assert first.exit_code == 0, first.output
    assert "3 runs copied" in first.output and "3,005 metric points" in first.output
    second = runner.invoke(main, ["sync", "--store", str(tmp_path / "a"), "--to", server.url, "--json"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["runs_unchanged"] == 3
    _same(open_store(tmp_path / "a"), open_store(server.store), ids)
    _same(open_store(tmp_path / "a"), open_store(server.url), ids)


def test_sqlite_to_postgres_twice(tmp_path, pg_dsn, monkeypatch):
    monkeypatch.setenv("LABLEDGER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LABLEDGER_ARTIFACTS", (tmp_path / "objects").as_uri())
    ids = _log_runs(str(tmp_path / "a"), tmp_path)
    source, target = open_store(tmp_path / "a"), open_store(pg_dsn)
    assert sync(source, target).runs_copied == 3
    assert sync(source, target).runs_unchanged == 3
    for run_id in ids:
        ours, theirs = _records(source, run_id), _records(target, run_id)
        assert theirs["sizes"] == ours["sizes"] and theirs["points"] == ours["points"]
        assert theirs["params"] == ours["params"] and theirs["artifacts"] == ours["artifacts"]
        assert len(theirs["notes"]) == len(ours["notes"]) and theirs["row"]["status"] == ours["row"]["status"]
        assert len(theirs["tag_history"]) == len(ours["tag_history"])


def test_times_on_a_microsecond_boundary_sync_once(tmp_path, pg_dsn):
    """A store may round a time's last microsecond otherwise than Python does: still the same moment."""
    source, target = open_store(tmp_path / "a"), open_store(pg_dsn)
    with ll.start_run("boundary", store=source) as run:
        pass
    for i in range(40):  # half-microsecond fractions, where the two roundings can disagree
        when = 1_796_101_116.0 + i / 1000 + 0.0000005
        source.set_tags(run.id, {f"k{i}": "v"}, when)
        source.add_note(run.id, f"note {i}", when)
    assert sync(source, target).runs_copied == 1
    again = sync(source, target)
    assert (again.runs_unchanged, again.runs_updated, again.records) == (1, 0, 0)
