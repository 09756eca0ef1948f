"""The token middleware and the permission checks, on a tiny Starlette app backed by a real database."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from labledger.server import accounts
from labledger.server.accounts import Principal, create_token, create_user, grant
from labledger.server.auth import EXCEPTION_HANDLERS, TokenAuth, require
from labledger.store.postgres import upgrade


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def show(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    principal = require(request, name, "read")
    return JSONResponse({"experiment": name, "user": principal.user})


async def log(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    require(request, name, "write")
    return JSONResponse({"logged": name}, status_code=201)


def _app(authenticate: Callable[[str], Principal | None], cache_ttl: float = 0) -> TokenAuth:
    routes = [
        Route("/api/health", health),
        Route("/api/experiments/{name}", show),
        Route("/api/experiments/{name}/runs", log, methods=["POST"]),
    ]
    inner = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
    return TokenAuth(inner, authenticate=authenticate, cache_ttl=cache_ttl)


@pytest.fixture
def db(pg_conn: psycopg.Connection, pg_dsn: str) -> psycopg.Connection:
    """The current schema; alice (team vision) may write ``vision-a``; bob (team nlp) ``nlp-b``."""
    upgrade(pg_conn)
    for name in ("vision-a", "nlp-b"):
        pg_conn.execute("INSERT INTO experiments (name) VALUES (%s)", (name,))
    for user, team, experiment in (("alice", "vision", "vision-a"), ("bob", "nlp", "nlp-b")):
        create_user(pg_conn, user)
        accounts.create_group(pg_conn, team, [user])
        grant(pg_conn, experiment, group=team, role="write")
    return pg_conn


@pytest.fixture
def client(db: psycopg.Connection, pg_dsn: str) -> TestClient:
    """The app asking the database on every request (no cache)."""
    check = accounts.authenticator(lambda: psycopg.connect(pg_dsn, autocommit=True))
    return TestClient(_app(check))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_token_answers_401_but_the_health_check_is_open(client):
    response = client.get("/api/experiments/vision-a")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "authentication required" in response.json()["error"]
    assert client.get("/api/health").status_code == 200


def test_a_bad_token_answers_401(client):
    for token in ("ll_" + "x" * 43, "nonsense", "ll_" + "x" * 400):
        response = client.get("/api/experiments/vision-a", headers=_bearer(token))
        assert response.status_code == 401 and response.json()["error"].startswith("invalid API token")
    assert client.get("/api/experiments/vision-a", headers={"Authorization": "Basic abc"}).status_code == 401


def test_a_read_token_reads_but_cannot_write(client, db):
    token = create_token(db, "alice", "read")
    response = client.get("/api/experiments/vision-a", headers=_bearer(token))
    assert response.status_code == 200 and response.json() == {"experiment": "vision-a", "user": "alice"}
    response = client.post("/api/experiments/vision-a/runs", headers=_bearer(token))
    assert response.status_code == 403 and "scope is read" in response.json()["error"]


def test_a_write_token_writes_and_the_other_header_works(client, db):
    token = create_token(db, "alice", "write")
    response = client.post("/api/experiments/vision-a/runs", headers={"X-Labledger-Token": token})
    assert response.status_code == 201 and response.json() == {"logged": "vision-a"}


def test_another_teams_experiment_is_not_found(client, db):
    token = create_token(db, "alice", "write")
    for response in (
        client.get("/api/experiments/nlp-b", headers=_bearer(token)),
        client.post("/api/experiments/nlp-b/runs", headers=_bearer(token)),
    ):
        assert response.status_code == 404 and response.json() == {"error": "no experiment 'nlp-b'"}
    assert client.get("/api/experiments/nlp-b", headers=_bearer(create_token(db, "bob", "read"))).is_success


def test_a_reader_of_an_experiment_gets_403_when_writing_it(client, db):
    grant(db, "nlp-b", user="alice", role="read")
    token = create_token(db, "alice", "write")
    assert client.get("/api/experiments/nlp-b", headers=_bearer(token)).status_code == 200
    response = client.post("/api/experiments/nlp-b/runs", headers=_bearer(token))
    assert response.status_code == 403 and "no write permission" in response.json()["error"]


def test_an_administrator_sees_every_experiment(client, db):
    create_user(db, "root", is_admin=True)
    token = create_token(db, "root", "write")
    assert client.post("/api/experiments/nlp-b/runs", headers=_bearer(token)).status_code == 201


def test_a_revoked_token_stops_working_at_once(client, db):
    token = create_token(db, "alice", "read")
    assert client.get("/api/experiments/vision-a", headers=_bearer(token)).status_code == 200
    accounts.revoke_token(db, token[:10])
    assert client.get("/api/experiments/vision-a", headers=_bearer(token)).status_code == 401


def test_an_expired_token_answers_401(client, db):
    token = create_token(db, "alice", "read", expires=datetime.now(UTC) + timedelta(milliseconds=300))
    assert client.get("/api/experiments/vision-a", headers=_bearer(token)).status_code == 200
    time.sleep(0.4)
    assert client.get("/api/experiments/vision-a", headers=_bearer(token)).status_code == 401


def test_the_cache_remembers_successes_for_its_ttl_only(db, pg_dsn):
    calls: list[str] = []

    def check(secret: str) -> Principal | None:
        calls.append(secret)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            return accounts.authenticate(conn, secret)

    token = create_token(db, "alice", "read")
    with TestClient(_app(check, cache_ttl=0.3)) as client:
        for _ in range(3):
            assert client.get("/api/experiments/vision-a", headers=_bearer(token)).status_code == 200
        assert len(calls) == 1
        accounts.revoke_token(db, token)
        time.sleep(0.35)  # revocation takes effect once the cached lookup is older than the TTL
        assert client.get("/api/experiments/vision-a", headers=_bearer(token)).status_code == 401
        bad = "ll_" + "y" * 43
        for _ in range(2):
            client.get("/api/experiments/vision-a", headers=_bearer(bad))
        assert calls.count(bad) == 2  # failures are never cached


def test_a_failing_lookup_answers_503_and_async_authenticators_work():
    def broken(secret: str) -> Principal | None:
        raise RuntimeError("the database is down")

    async def fixed(secret: str) -> Principal | None:
        return Principal("alice", "write", is_admin=True) if secret == "good" else None

    with TestClient(_app(broken), raise_server_exceptions=False) as client:
        response = client.get("/api/experiments/vision-a", headers=_bearer("ll_" + "z" * 43))
        assert response.status_code == 503 and "try again" in response.json()["error"]
    with TestClient(_app(fixed)) as client:
        assert client.post("/api/experiments/x/runs", headers=_bearer("good")).status_code == 201
        assert client.get("/api/experiments/x", headers=_bearer("bad")).status_code == 401
