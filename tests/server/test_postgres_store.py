"""The PostgreSQL store as a labledger store: opened by its URI, written and read through the
public API (runs, the background writer, artifacts, the CLI), with its transactions, snapshots,
forked children, crashed runs and errors, on a real cluster."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

import labledger as ll
from labledger.cli import main as cli
from labledger.errors import StoreError
from labledger.store import open_store
from labledger.store.backend import Backend
from labledger.store.objects.cached import ArtifactLocationMissingError
from labledger.store.postgres import DatabaseConnectionError, DatabaseVersionError
from labledger.store.postgres.plugin import close_stores
from labledger.store.postgres.store import PostgresStore, cache_folder
from labledger.tracking import lifecycle

from .s3 import closed_port

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def pg_store(pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``LABLEDGER_STORE`` naming the test's database, artifacts in a folder, caches in the test's."""
    monkeypatch.setenv("LABLEDGER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LABLEDGER_ARTIFACTS", (tmp_path / "objects").as_uri())
    monkeypatch.setenv("LABLEDGER_STORE", pg_dsn)
    yield pg_dsn
    for run in lifecycle.open_runs():
        run.end("finished")
    close_stores()


def _with_password(dsn: str) -> str:
    return dsn.replace("postgres@", "postgres:s3cret@", 1)  # the test cluster trusts every login


def test_a_postgresql_uri_opens_one_postgres_store_per_database(pg_store: str, tmp_path: Path) -> None:
    dsn = _with_password(pg_store)
    store = open_store(dsn)
    assert isinstance(store, PostgresStore) and isinstance(store, Backend)
    assert open_store(dsn) is store and open_store(pg_store) is not store
    assert "s3cret" not in store.uri and store.uri == store.location == dsn.replace("s3cret", "***")
    assert store.path == cache_folder(store.location) and store.path.parent == tmp_path / "cache"
    assert open_store(pg_store.replace("postgresql://", "postgres://", 1)).uri.startswith("postgres://")
    with ll.start_run("env", hypothesis="LABLEDGER_STORE names the database") as run:
        assert run.store is open_store(pg_store)
    assert store.run_ids() == [run.id]


def test_the_python_api_end_to_end(pg_store: str, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(5000))
    folder = tmp_path / "tokenizer"
    (folder / "sub").mkdir(parents=True)
    (folder / "vocab.txt").write_text("a b c")
    (folder / "sub" / "merges.txt").write_text("ab")
    run = ll.start_run("digits", name="svm", params={"C": 1.5, "kernel": "rbf"}, tags={"team": "a"})
    for step in range(3000):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
        if step % 100 == 0:
            run.log_metric("acc", step / 3000, step=step)
    run.log_folds("acc", [0.9, 0.8, float("nan")], split="test")
    run.set_tag("team", "b")
    run.note("first try")
    run.log_artifact(model)
    run.log_artifact(folder)
    run.end()
    other = ll.start_run("digits", params={"C": 3.0})
    other.log_metric("loss", 0.5)
    other.end("failed")

    listing = ll.runs("digits")
    assert listing["id"].tolist() == [other.id, run.id]
    assert listing["status"].tolist() == ["failed", "finished"]
    view = ll.get_run("digits/svm")
    assert view.id == run.id and view.params == {"C": 1.5, "kernel": "rbf"}
    assert view.tags == {"team": "b"}
    assert [(h["key"], h["value"]) for h in view.tag_history] == [("team", "a"), ("team", "b")]
    assert [n["text"] for n in view.notes] == ["first try"]
    loss = view.metric("loss")
    assert loss["step"].tolist() == list(range(3000))
    assert loss["value"].tolist() == [1.0 / (s + 1) for s in range(3000)]
    assert view.summary["acc"]["count"] == 30
    folds = view.folds.sort_values("fold")
    assert folds["value"].tolist()[:2] == [0.9, 0.8] and folds["value"].isna().tolist()[2]
    arts = {a.name: a for a in view.artifacts}
    assert arts["model.bin"].path.read_bytes() == model.read_bytes()
    assert sorted(p for p, _, _ in arts["tokenizer"].files) == ["sub/merges.txt", "vocab.txt"]
    assert (arts["tokenizer"].path / "sub" / "merges.txt").read_text() == "ab"
    comparison = ll.compare([run.id, other.id], metric="loss")
    assert [r.id for r in comparison.runs] == [run.id, other.id]

    result = CliRunner().invoke(cli, ["runs", "digits"])
    assert result.exit_code == 0, result.output
    assert "svm" in result.output and "failed" in result.output
    result = CliRunner().invoke(cli, ["show", "digits/svm"])
    assert result.exit_code == 0, result.output
    assert "kernel" in result.output and "tokenizer" in result.output


def test_artifacts_are_read_back_into_an_empty_cache(pg_store: str, tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"w" * 10_000)
    with ll.start_run("cache") as run:
        run.log_artifact(tmp_path / "weights.bin")
    close_stores()
    import shutil

    shutil.rmtree(tmp_path / "cache")
    view = ll.get_run(run.id)
    assert view.artifact("weights.bin").path.read_bytes() == b"w" * 10_000
    assert view.artifact("weights.bin").path.is_relative_to(tmp_path / "cache")


def test_without_an_artifacts_location_artifacts_are_refused_and_runs_still_read(
    pg_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABLEDGER_ARTIFACTS")
    (tmp_path / "x.txt").write_text("x")
    with ll.start_run("bare") as run:
        run.log_param("a", 1)
        with pytest.raises(ArtifactLocationMissingError, match=r"--artifacts.*LABLEDGER_ARTIFACTS") as e:
            run.log_artifact(tmp_path / "x.txt")
    assert e.value.path == open_store(pg_store).location
    assert ll.get_run(run.id).params == {"a": 1} and ll.get_run(run.id).artifacts == []
    open_store(pg_store).set_setting("server.artifacts", (tmp_path / "shared").as_uri())
    close_stores()  # the location is read once per store: a new process, in effect
    with ll.start_run("bare") as second:
        second.log_artifact(tmp_path / "x.txt")
    stored = [p for p in (tmp_path / "shared").rglob("*") if p.is_file()]
    assert [p.read_text() for p in stored] == ["x"]


def test_a_transaction_groups_writes_and_a_snapshot_reads_one_state(pg_store: str, pg_conn) -> None:
    store = open_store(pg_store)
    exp = store.ensure_experiment("bulk")

    def row(run_id: str) -> dict:
        return {"id": run_id, "experiment_id": exp, "name": run_id, "parent_id": None, "kind": "offline",
                "start_time": time.time(), "author": None, "hypothesis": None, "host": "h", "pid": 1,
                "source": None, "environment": None, "reproduction_of": None}  # fmt: skip

    def outside() -> list[str]:
        return [r[0] for r in pg_conn.execute("SELECT id FROM runs ORDER BY id").fetchall()]

    assert not store.in_transaction()
    with store.transaction():
        assert store.in_transaction()
        store.insert_run(row("a1"))
        store.insert_params("a1", {"x": 1})
        assert store.run_ids() == ["a1"] and store.params_of(["a1"]) == [("a1", "x", "1")]
        assert outside() == []  # not committed yet
        with store.transaction():  # nested: a savepoint
            store.insert_run(row("a2"))
    assert not store.in_transaction()
    assert outside() == ["a1", "a2"]
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_run(row("a3"))
        raise RuntimeError("rolled back")
    assert outside() == ["a1", "a2"]

    with store.snapshot():
        before = store.run_ids()
        with store.snapshot():  # nested: the same one
            store.insert_run(row("a4"))  # written on a connection of its own, and committed
        assert store.run_ids() == before == ["a1", "a2"]
        assert outside() == ["a1", "a2", "a4"]
    assert store.run_ids() == ["a1", "a2", "a4"]


def test_a_forked_child_opens_connections_of_its_own(pg_store: str, pg_conn) -> None:
    store = open_store(pg_store)
    with ll.start_run("fork") as parent_run:
        parent_run.log_param("who", "parent")
    ours = {r[0] for r in pg_conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'labledger'").fetchall()}  # fmt: skip
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: log a run, report its connection, leave without cleaning up
        code = 1
        try:
            with ll.start_run("fork") as child_run:
                child_run.log_metric("loss", 0.5)
            backend = store._read(lambda conn: conn.info.backend_pid)
            os.write(write, f"{child_run.id} {backend}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child_id, backend = os.read(read, 200).decode().split()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert int(backend) not in ours
    assert store.run_row(child_id)["status"] == "finished"  # the parent's connections still work
    assert ll.get_run(child_id).summary["loss"]["last"] == 0.5
    assert sorted(store.run_ids()) == sorted([parent_run.id, child_id])


def test_runs_of_a_process_that_died_read_as_crashed(pg_store: str, run_script) -> None:
    done = run_script(
        """
        import labledger as ll
        with ll.start_run("sub", params={"lr": 0.1}) as run:
            for i in range(50):
                run.log_metric("loss", 1 / (i + 1), step=i)
        """,
        env={"LABLEDGER_STORE": pg_store},
    )
    assert done.returncode == 0, done.stderr
    killed = run_script(
        """
        import os, labledger as ll
        run = ll.start_run("sub", name="doomed")
        run.log_param("x", 1)
        run.flush()
        os._exit(9)
        """,
        env={"LABLEDGER_STORE": pg_store},
    )
    assert killed.returncode == 9, killed.stderr
    runs = ll.runs("sub").set_index("name")
    assert runs.loc["doomed", "status"] == "crashed"
    finished = ll.get_run(runs[runs["status"] == "finished"].iloc[0]["id"])
    assert finished.params == {"lr": 0.1} and finished.summary["loss"]["count"] == 50


def test_an_unreachable_database_fails_fast_naming_it_without_password() -> None:
    with closed_port() as port:
        dsn = f"postgresql://alice:hunter2@127.0.0.1:{port}/ledger"
        started = time.monotonic()
        with pytest.raises(DatabaseConnectionError) as e:
            ll.start_run("x", store=dsn)
        assert time.monotonic() - started < 10
    message = str(e.value)
    assert "hunter2" not in message and f"postgresql://alice:***@127.0.0.1:{port}/ledger" in message
    assert e.value.path == f"postgresql://alice:***@127.0.0.1:{port}/ledger"
    close_stores()


def test_a_newer_schema_is_refused(pg_store: str, pg_conn) -> None:
    open_store(pg_store)
    pg_conn.execute("INSERT INTO schema_version (version, labledger) VALUES (99, 'future')")
    store = PostgresStore(pg_store)
    with pytest.raises(DatabaseVersionError, match="newer") as e:
        store.create()
    assert e.value.path == store.location and e.value.found == 99
    store.close()


def test_database_errors_name_the_store_and_dropped_connections_are_replaced(pg_store: str, pg_conn) -> None:
    store = open_store(pg_store)
    with ll.start_run("errors") as run:
        pg_conn.execute("ALTER TABLE notes ADD CONSTRAINT short CHECK (length(text) < 5)")
        with pytest.raises(StoreError) as e:
            store.add_note(run.id, "far too long", time.time())
        assert e.value.path == store.location and "short" in e.value.problem
    pg_conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'labledger'"
    )
    assert store.run_ids() == [run.id]  # a read on a dropped connection is run again on a new one
    elsewhere = PostgresStore(pg_store + "?options=-csearch_path%3Dnowhere")
    with pytest.raises(StoreError, match="holds no labledger store yet") as e:
        elsewhere.run_ids()
    assert e.value.path == elsewhere.location
    elsewhere.close()


def test_records_logged_while_the_database_refuses_connections_are_written_once_it_is_back(
    pg_store: str, postgres_cluster
) -> None:
    from labledger.store.sink import StoreWriteWarning

    database = pg_store.rsplit("/", 1)[1]
    store = open_store(pg_store)
    # (a database may not lock itself; the admin connection is closed whatever happens)
    with psycopg.connect(postgres_cluster.dsn, autocommit=True) as admin, ll.start_run("outage") as run:
        run.log_param("before", 1)
        run.flush()  # the start-up lineage capture is written before the outage, not during it
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'labledger'"
        )
        started = time.monotonic()
        with pytest.warns(StoreWriteWarning, match=re.escape(store.location)):
            run.log_param("during", 2)
            run.note("kept")
        assert time.monotonic() - started < 10  # not the pool's whole wait
        with pytest.raises(StoreError, match="cannot connect"):
            store.run_ids()
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        run.flush()
    view = ll.get_run(run.id)
    assert view.params == {"before": 1, "during": 2} and [n["text"] for n in view.notes] == ["kept"]
    assert view.status == "finished"
