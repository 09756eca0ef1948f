"""A labledger server as a store (``LABLEDGER_STORE=http://127.0.0.1:<port>``): runs logged by real
training scripts, read back through the server; tokens; artifact bytes uploaded once and
checked on the way back."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import labledger as ll
from labledger.errors import ParamConflictError, StoreError
from labledger.records import MetricBatch, Series
from labledger.store import open_store
from labledger.store.objects import ObjectCorruptError
from labledger.store.remote.client import RemoteStore
from labledger.store.remote.errors import (
    RemoteError,
    ServerUnreachableError,
    TokenRefusedError,
    error_from_answer,
)
from labledger.store.remote.plugin import open_remote

from .remote_helpers import LedgerServer, free_port, uploads

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LedgerServer]:
    monkeypatch.setenv("LABLEDGER_CACHE", str(tmp_path / "cache"))
    with LedgerServer(tmp_path / "server-store") as server:
        yield server


def test_a_training_script_logs_every_record_to_the_server(server, run_script, tmp_path):
    result = run_script(
        """
        from pathlib import Path
        import labledger as ll
        Path("model.bin").write_bytes(b"weights" * 1000)
        Path("ckpt").mkdir()
        Path("ckpt/a.txt").write_text("a")
        Path("ckpt/b.txt").write_text("b")
        with ll.start_run("digits", params={"lr": 0.1, "opt": {"name": "adam"}}, tags={"team": "cv"}) as run:
            for step in range(5000):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
            run.log_folds("acc", [0.9, 0.91, 0.92])
            run.log_dataset("digits", fingerprint="f" * 16, rows=10)
            run.set_tag("team", "vision")
            run.note("looks fine")
            run.log_artifact("model.bin", kind="model")
            run.log_artifact("ckpt", kind="checkpoint")
        print(run.id)
        """,
        env={"LABLEDGER_STORE": server.url},
    )
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.split()[-1]
    local = open_store(server.store)  # what the server stored
    remote = open_store(server.url)  # read back through the server
    for store in (local, remote):
        row = store.run_row(run_id)
        assert row["status"] == "finished" and row["experiment"] == "digits"
        assert dict(store.metric_sizes(run_id)) == {"loss": 5000}
        assert {k: v for _, k, v in store.params_of([run_id])} == {"lr": "0.1", "opt/name": '"adam"'}
        assert [(r["key"], r["value"]) for r in store.tag_history_rows(run_id)] == [
            ("team", "cv"),
            ("team", "vision"),
        ]
        assert [n["text"] for n in store.note_rows(run_id)] == ["looks fine"]
        assert [r[1:4] for r in store.fold_stats_of([run_id], brief=True)] == [("acc", "test", 3)]
        assert {r["name"] for r in store.artifact_rows(run_id)} == {"model.bin", "ckpt"}
    view = ll.get_run(run_id, store=server.url)
    assert view.summary["loss"]["count"] == 5000
    assert view.metric("loss")["value"].iloc[-1] == pytest.approx(1 / 5000)
    restored = view.artifact("ckpt").download(tmp_path / "restored")
    assert sorted(p.name for p in restored.iterdir()) == ["a.txt", "b.txt"]
    assert remote.blobs.path_for(remote.artifact_sha(run_id, "model.bin")).read_bytes() == b"weights" * 1000


def test_reads_inside_a_snapshot_agree(server):
    store = open_store(server.url)
    exp = store.ensure_experiment("snap")
    row = dict.fromkeys(("parent_id", "author", "hypothesis", "host", "pid", "source", "environment"))
    row |= {"id": "snap0001", "experiment_id": exp, "name": "a", "start_time": 1.0, "kind": "offline"}
    row["reproduction_of"] = None
    assert store.insert_run(row) == "a"
    store.write_metrics(
        MetricBatch("snap0001", 0, {"x": Series([0, 1], [None, None], [1.0, 2.0], [0.5, 0.25])})
    )
    with store.snapshot():
        sizes = store.metric_sizes("snap0001")
        chunks = list(store.metric_chunks("snap0001"))
    assert sizes == [("x", 2)] and [c[:2] for c in chunks] == [("x", 2)]
    assert store.insert_run(row) == "a"  # a replayed creation answers the run's name


def test_a_refused_token_names_LABLEDGER_TOKEN(tmp_path, monkeypatch, run_script):
    monkeypatch.setenv("LABLEDGER_CACHE", str(tmp_path / "cache"))
    with LedgerServer(tmp_path / "server-store", token="s3cret-token") as server:
        monkeypatch.delenv("LABLEDGER_TOKEN", raising=False)
        with pytest.raises(TokenRefusedError, match="LABLEDGER_TOKEN is not set"):
            RemoteStore(server.url).create()
        monkeypatch.setenv("LABLEDGER_TOKEN", "wrong")
        with pytest.raises(
            TokenRefusedError, match="LABLEDGER_TOKEN holds a token the server does not accept"
        ):
            RemoteStore(server.url).run_ids()
        result = run_script(
            "import labledger as ll\nll.start_run('x').end()\n", env={"LABLEDGER_STORE": server.url}
        )
        assert result.returncode != 0 and "LABLEDGER_TOKEN" in result.stderr
        monkeypatch.setenv("LABLEDGER_TOKEN", "s3cret-token")
        with ll.start_run("x", store=server.url) as run:
            run.log_metric("m", 1.0)
        assert RemoteStore(server.url).run_row(run.id)["status"] == "finished"


def test_a_server_that_is_not_there_is_a_clear_error_naming_it(monkeypatch):
    monkeypatch.setenv("LABLEDGER_CONNECT_TIMEOUT", "0.5")
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnreachableError, match=f"{url}.*cannot be reached.*connection refused"):
        ll.start_run("x", store=url)
    with pytest.raises(ServerUnreachableError):
        open_store(url, create=False).run_ids()
    with pytest.raises(StoreError, match="https://"):
        open_store("http://ledger.example.com:80", create=False)


def test_server_errors_are_raised_as_labledger_errors():
    error = error_from_answer(
        "http://h:1", 409, b'{"error": "no", "kind": "ParamConflictError", "key": "lr", "run_id": "r"}'
    )
    assert isinstance(error, ParamConflictError) and error.key == "lr" and str(error) == "no"
    assert isinstance(error_from_answer("http://h:1", 418, b"teapot"), StoreError)
    assert "--max-body" in str(error_from_answer("http://h:1", 413, b'{"error": "too big"}'))


def test_artifacts_are_uploaded_once_across_runs(server, run_script):
    code = """
        from pathlib import Path
        import labledger as ll
        Path("model.bin").write_bytes(b"same bytes" * 5000)
        for _ in range(2):
            with ll.start_run("uploads") as run:
                run.log_artifact("model.bin", kind="model")
    """
    server.stop()
    server = LedgerServer(server.store, real=False).start()  # this one counts uploads
    for _ in range(2):  # two processes, two runs each
        result = run_script(code, env={"LABLEDGER_STORE": server.url})
        assert result.returncode == 0, result.stderr
    store = open_store(server.store)
    shas = {store.artifact_sha(run_id, "model.bin") for run_id in store.run_ids()}
    assert len(store.run_ids()) == 4 and len(shas) == 1
    assert uploads(server.url) == {shas.pop(): 1}
    server.stop()


@pytest.mark.parametrize("real", [False, True], ids=["client-check", "labledger-server"])
def test_a_tampered_download_is_refused(server, tmp_path, monkeypatch, real):
    server.stop()
    server = LedgerServer(server.store, real=real).start()
    source = tmp_path / "model.bin"
    source.write_bytes(b"the real weights" * 100_000)
    with ll.start_run("tamper", store=server.url) as run:
        record = run.log_artifact(source, kind="model")
    blob = open_store(server.store).blobs.path_for(record.sha256)
    os.chmod(blob, stat.S_IWUSR | stat.S_IRUSR)
    blob.write_bytes(b"something else!!" * 100_000)  # same size, other bytes
    monkeypatch.setenv("LABLEDGER_CACHE", str(tmp_path / "other-cache"))  # another machine's cache
    fresh = RemoteStore(server.url)
    # this module's server sends the bytes as they are: the client's check refuses them; labledger
    # server checks them itself and cuts the download short
    expected = RemoteError if real else ObjectCorruptError
    with pytest.raises(expected, match=record.sha256[:12]):
        fresh.blobs.path_for(record.sha256)
    assert not BlobPath(fresh, record.sha256).exists()
    assert not list((tmp_path / "other-cache").rglob(".*.part"))
    server.stop()


def BlobPath(store: RemoteStore, sha: str) -> Path:
    return store.path / "artifacts" / sha[:2] / sha[2:]


def test_one_store_per_url_in_a_process(server):
    assert open_remote(server.url) is open_remote(server.url + "/")
    assert open_store(server.url) is open_remote(server.url)
