"""The server's HTTP API, spoken raw (httpx and the wire codec) to a real ``labledger server`` process
on a real PostgreSQL database with a folder for artifacts: one server for the whole module."""

from __future__ import annotations

import hashlib
import socket
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from labledger.records import MetricBatch, Series
from labledger.server import accounts
from labledger.store.backend import RunSelection
from labledger.store.remote import wire

from .test_server_process import Server, call, database, result, run_row, running, user_token

MAX_BODY = 1 << 20
MAX_OBJECT = 2 << 20


@dataclass
class World:
    """The module's server: alice (team vision) owns ``vision-a``, bob (team nlp) ``nlp-b``."""

    server: Server
    dsn: str
    alice: str  # write token
    alice_read: str
    bob: str
    admin: str
    alice_run: str
    bob_run: str

    def client(self, token: str | None = None) -> httpx.Client:
        return self.server.client(token)


def _batch(run_id: str, seq: int, values: list[float]) -> MetricBatch:
    n = len(values)
    return MetricBatch(run_id, seq, {"loss": Series(list(range(n)), [None] * n, [time.time()] * n, values)})


def _send_batch(client: httpx.Client, batch: MetricBatch) -> httpx.Response:
    body = wire.encode_batch(batch)
    return client.post("/api/v1/write/write_metrics", content=body, headers={"Content-Type": wire.BATCH_TYPE})


def _new_run(client: httpx.Client, experiment: str, name: str) -> str:
    experiment_id = result(call(client, "write", "ensure_experiment", experiment))
    row = run_row(experiment_id, name)  # type: ignore[arg-type]
    assert result(call(client, "write", "insert_run", row)) == name
    return str(row["id"])


@pytest.fixture(scope="module")
def world(postgres_cluster, tmp_path_factory) -> Iterator[World]:
    folder: Path = tmp_path_factory.mktemp("server")
    with database(postgres_cluster) as dsn:
        args = ["--backend", dsn, "--artifacts", (folder / "objects").as_uri(), "--auth-cache", "0"]
        args += ["--max-body", str(MAX_BODY), "--max-object", str(MAX_OBJECT)]
        with running(args, folder) as server:
            alice = user_token(dsn, "alice", "write", ("vision",))
            bob = user_token(dsn, "bob", "write", ("nlp",))
            with psycopg.connect(dsn, autocommit=True) as conn:
                accounts.create_user(conn, "root", is_admin=True)
                admin = accounts.create_token(conn, "root", "admin")
                alice_read = accounts.create_token(conn, "alice", "read")
            with server.client(alice) as a, server.client(bob) as b:
                alice_run = _new_run(a, "vision-a", "svm")
                bob_run = _new_run(b, "nlp-b", "bert")
                result(call(b, "write", "insert_params", bob_run, {"lr": 0.1}))
            yield World(server, dsn, alice, alice_read, bob, admin, alice_run, bob_run)


# -- writing and reading ----------------------------------------------------------------------


def test_a_run_written_through_the_api_reads_back(world):
    with world.client(world.alice) as client:
        run_id = _new_run(client, "vision-a", "roundtrip")
        result(call(client, "write", "insert_params", run_id, {"C": 1.5, "kernel": "rbf"}))
        result(call(client, "write", "set_tags", run_id, {"stage": "dev"}, time.time()))
        values = [0.5, float("nan"), 0.25, float("inf")]
        assert _send_batch(client, _batch(run_id, 1, values)).json() == {"result": None, "points": 4}
        result(call(client, "write", "end_run", run_id, "finished", time.time(), None))

        row = result(call(client, "read", "run_row", run_id))
        assert row["status"] == "finished" and row["experiment"] == "vision-a"  # type: ignore[index]
        params = result(call(client, "read", "params_of", [run_id]))
        assert sorted(params) == [(run_id, "C", "1.5"), (run_id, "kernel", '"rbf"')]  # type: ignore[arg-type]
        assert result(call(client, "read", "tags_of", [run_id])) == [(run_id, "stage", "dev")]
        (summary,) = result(call(client, "read", "summaries_of", [run_id]))  # type: ignore[misc]
        assert summary[:2] == (run_id, "loss") and summary[5] == 4
        response = call(client, "read", "metric_chunks", run_id)
        assert response.headers["content-type"] == wire.CHUNKS_TYPE
        assert [(key, points) for key, points, _ in wire.decode_chunks(response.content)] == [("loss", 4)]
        selected = result(call(client, "read", "select_runs", RunSelection(experiment="vision-a")))
        assert run_id in [r["id"] for r in selected]  # type: ignore[union-attr]

        refused = call(client, "write", "insert_params", run_id, {"late": 1})
        assert refused.status_code == 409 and refused.json()["kind"] == "RunFinishedError"


def test_replays_are_stored_once(world):
    with world.client(world.alice) as client:
        experiment_id = result(call(client, "write", "ensure_experiment", "vision-a"))
        row = run_row(experiment_id, "replayed")  # type: ignore[arg-type]
        assert result(call(client, "write", "insert_run", row)) == "replayed"
        assert result(call(client, "write", "insert_run", row)) == "replayed"  # the answer was lost
        batch = _batch(str(row["id"]), 7, [1.0, 2.0, 3.0])
        assert _send_batch(client, batch).status_code == 200
        assert _send_batch(client, batch).status_code == 200
        assert result(call(client, "read", "metric_sizes", row["id"])) == [("loss", 3)]
        result(call(client, "write", "add_note", row["id"], "hello", 1.0))
        result(call(client, "write", "add_note", row["id"], "hello", 1.0))
        assert len(result(call(client, "read", "note_rows", row["id"]))) == 1  # type: ignore[arg-type]

        other = result(call(client, "write", "ensure_experiment", "vision-b"))
        taken = call(client, "write", "insert_run", {**row, "experiment_id": other})
        assert taken.status_code == 409 and taken.json()["kind"] == "RunIdTakenError"


# -- objects ----------------------------------------------------------------------------------


def test_objects_are_checked_stored_once_and_streamed_back(world):
    data = b"model weights " * 10_000
    sha = hashlib.sha256(data).hexdigest()
    with world.client(world.alice) as client:
        assert client.head(f"/api/v1/objects/{sha}").status_code == 404
        bad = client.put(f"/api/v1/objects/{sha}", content=data[:-1])
        assert bad.status_code == 400 and bad.json()["kind"] == "DigestMismatchError"
        assert client.head(f"/api/v1/objects/{sha}").status_code == 404  # nothing was stored
        assert client.put(f"/api/v1/objects/{sha}", content=data).status_code == 201
        again = client.put(f"/api/v1/objects/{sha}", content=data)
        assert again.status_code == 200 and again.json()["stored"] is False
        assert client.head(f"/api/v1/objects/{sha}").status_code == 200
        assert client.get(f"/api/v1/objects/{sha}").content == data
        assert client.get("/api/v1/objects/not-a-digest").status_code == 400
    with world.client(world.alice_read) as reader:
        assert reader.get(f"/api/v1/objects/{sha}").content == data
        assert reader.put(f"/api/v1/objects/{sha}", content=data).status_code == 403


# -- bounds and malformed requests ------------------------------------------------------------


def _declared_only(world: World, path: str, method: str, length: int) -> str:
    """Send headers announcing ``length`` bytes and no body; the status line answered."""
    host, port = world.server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {world.alice}\r\n"
        sock.sendall(f"{head}Content-Length: {length}\r\n\r\n".encode())
        return sock.recv(4096).decode("latin-1").split("\r\n")[0]


def test_a_body_too_large_is_refused_before_it_is_read(world):
    assert " 413 " in _declared_only(world, "/api/v1/write/insert_params", "POST", MAX_BODY + 1)
    assert " 413 " in _declared_only(world, "/api/v1/write/write_metrics", "POST", 10 * MAX_BODY)
    assert " 413 " in _declared_only(world, "/api/v1/objects/" + "0" * 64, "PUT", MAX_OBJECT + 1)
    with world.client(world.alice) as client:  # a chunked body, no length announced
        sent = client.post("/api/v1/read/run_ids", content=iter([b"x" * 65536] * 20))
        assert sent.status_code == 413 and sent.json()["kind"] == "BodyTooLargeError"


def test_malformed_requests_answer_400(world):
    bomb = b"LLB1" + zlib.compress(b"\0" * (MAX_BODY * 8 + 4096), 9)
    assert len(bomb) < MAX_BODY
    with world.client(world.alice) as client:
        cases = [
            client.post("/api/v1/read/run_row", content=b"{not json"),
            client.post("/api/v1/read/run_row", content=b'{"args": 3}'),
            client.post("/api/v1/read/run_row", content=b'{"args": [{"__t": "Popen", "v": {}}]}'),
            client.post("/api/v1/read/run_row", content=wire.dumps_args(["a", "b", "c"])),
            client.post("/api/v1/write/write_metrics", content=b"LLB1garbage"),
            client.post("/api/v1/write/write_metrics", content=bomb),
        ]
        for response in cases:
            assert response.status_code == 400, response.text
            assert set(response.json()) >= {"error", "kind"} and "Traceback" not in response.text
        unknown = client.post("/api/v1/read/drop_everything", content=wire.dumps_args([]))
        assert unknown.status_code == 404


# -- authentication and authorization ---------------------------------------------------------


def test_a_token_is_needed_but_not_for_the_health_check(world):
    with world.client() as anonymous:
        assert anonymous.get("/api/health").status_code == 200
        response = call(anonymous, "read", "run_ids")
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/", headers={"Accept": "text/html"}).status_code == 303  # to /login
    with world.client("ll_" + "x" * 43) as forged:
        assert call(forged, "read", "run_ids").status_code == 401


def test_a_read_token_posts_reads_but_cannot_write(world):
    with world.client(world.alice_read) as reader:
        assert world.alice_run in result(call(reader, "read", "run_ids"))  # type: ignore[operator]
        refused = call(reader, "write", "heartbeat", world.alice_run)
        assert refused.status_code == 403
        assert _send_batch(reader, _batch(world.alice_run, 99, [1.0])).status_code == 403


def test_another_teams_experiment_is_invisible(world):
    with world.client(world.alice) as client:
        names = [e["name"] for e in result(call(client, "read", "experiment_rows"))]  # type: ignore[union-attr]
        assert "vision-a" in names and "nlp-b" not in names
        everything = result(call(client, "read", "select_runs", RunSelection()))
        assert world.bob_run not in [r["id"] for r in everything]  # type: ignore[union-attr]
        assert result(call(client, "read", "select_runs", RunSelection(experiment="nlp-b"))) == []
        assert world.bob_run not in result(call(client, "read", "run_ids"))  # type: ignore[operator]
        assert result(call(client, "read", "run_row", world.bob_run)) is None
        assert result(call(client, "read", "run_row_by_name", "nlp-b", "bert")) is None
        assert result(call(client, "read", "params_of", [world.bob_run, world.alice_run])) == []
        assert result(call(client, "read", "run_rows_by_prefix", world.bob_run[:6], 10)) == []
        for write in (
            call(client, "write", "insert_params", world.bob_run, {"x": 1}),
            call(client, "write", "ensure_experiment", "nlp-b"),
            _send_batch(client, _batch(world.bob_run, 1, [1.0])),
        ):
            assert write.status_code == 404, write.text
        # the dashboard, through the same checks
        page = client.get("/")
        assert page.status_code == 200 and "vision-a" in page.text and "nlp-b" not in page.text
        assert client.get(f"/runs/{world.bob_run}").status_code == 404
        assert client.get(f"/api/runs/{world.bob_run}").status_code == 404
        listed = client.get("/api/runs").json()
        assert world.alice_run in [r["id"] for r in listed["rows"]]
        assert world.bob_run not in [r["id"] for r in listed["rows"]]
    with world.client(world.admin) as admin:  # an administrator sees both
        assert result(call(admin, "read", "run_row", world.bob_run)) is not None


def test_a_reader_of_an_experiment_gets_403_when_writing_it(world):
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        accounts.grant(conn, "vision-a", user="bob", role="read")
    try:
        with world.client(world.bob) as client:
            assert result(call(client, "read", "run_row", world.alice_run)) is not None
            refused = call(client, "write", "set_tags", world.alice_run, {"x": "y"}, 1.0)
            assert refused.status_code == 403 and refused.json()["kind"] == "PermissionDeniedError"
    finally:
        with psycopg.connect(world.dsn, autocommit=True) as conn:
            accounts.revoke_grant(conn, "vision-a", user="bob")


def test_settings_need_an_admin_token(world):
    with world.client(world.alice) as client:
        assert call(client, "write", "set_setting", "metric/loss/direction", "min").status_code == 403
    with world.client(world.admin) as admin:
        result(call(admin, "write", "set_setting", "metric/loss/direction", "min"))
        assert result(call(admin, "read", "setting", "metric/loss/direction")) == "min"


def test_a_revoked_token_stops_working(world):
    token = user_token(world.dsn, "eve", "read")
    with world.client(token) as client:
        assert call(client, "read", "run_ids").status_code == 200
        with psycopg.connect(world.dsn, autocommit=True) as conn:
            accounts.revoke_token(conn, token)
        assert call(client, "read", "run_ids").status_code == 401


def test_a_browser_signs_in_with_a_cookie_that_only_reads(world):
    with world.client() as browser:
        assert "API token" in browser.get("/login").text
        assert browser.post("/login", data={"token": "ll_wrong", "next": "/"}).status_code == 401
        signed = browser.post("/login", data={"token": world.alice, "next": "https://evil.example/"})
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
        page = browser.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "vision-a" in page.text and "nlp-b" not in page.text
        assert call(browser, "write", "heartbeat", world.alice_run).status_code == 401  # no writes by cookie
        browser.get("/logout")
        assert browser.get("/api/experiments").status_code == 401


def test_info_names_the_caller_and_the_artifacts(world):
    with world.client(world.alice_read) as client:
        info = client.get("/api/v1/info").json()
    assert info["api"] == 1 and info["user"] == "alice" and info["max_body"] == MAX_BODY
    assert info["artifacts"].startswith("file:///") and info["artifacts"].endswith("/objects")


def test_jobs_starting_at_once_all_create_or_join_their_new_experiment(world):
    """Sixteen clients of one user start runs in a new experiment at the same moment: one creates
    it (and becomes its admin in the same transaction), the others find it and may write it."""
    from concurrent.futures import ThreadPoolExecutor

    tokens = [user_token(world.dsn, "alice", "write") for _ in range(16)]
    for attempt in range(3):
        experiment = f"sweep-{attempt}"

        def start(token: str, name: str = experiment) -> int:
            with world.client(token) as client:
                return call(client, "write", "ensure_experiment", name).status_code

        with ThreadPoolExecutor(16) as pool:
            assert list(pool.map(start, tokens)) == [200] * 16
        with world.client(world.bob) as bob:  # and it stays alice's: invisible to bob's team
            assert call(bob, "write", "ensure_experiment", experiment).status_code == 404
