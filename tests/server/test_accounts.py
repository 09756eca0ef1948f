"""Users, groups, API tokens and experiment permissions, against a real throw-away cluster."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner

from labledger.cli.app import main
from labledger.server import accounts
from labledger.server.accounts import (
    AccountError,
    AccountExistsError,
    Principal,
    UnknownAccountError,
    allowed,
    authenticate,
    create_token,
    create_user,
    grant,
)
from labledger.store.postgres import upgrade

from .postgres import free_port


@pytest.fixture
def db(pg_conn: psycopg.Connection) -> psycopg.Connection:
    """The test's database at the current schema, with experiments ``vision-a`` and ``nlp-b``."""
    upgrade(pg_conn)
    for name in ("vision-a", "nlp-b"):
        pg_conn.execute("INSERT INTO experiments (name) VALUES (%s)", (name,))
    return pg_conn


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


# -- users and groups ----------------------------------------------------------------------


def test_user_names_ignore_case(db):
    alice = create_user(db, "Alice")
    assert accounts.find_user(db, "ALICE") == alice
    with pytest.raises(AccountExistsError, match="ignoring case"):
        create_user(db, "alice")
    with pytest.raises(AccountError, match="letters, digits"):
        create_user(db, "no spaces")
    assert accounts.find_user(db, "bob") is None


def test_groups_and_their_members(db):
    create_user(db, "alice")
    create_user(db, "bob")
    accounts.create_group(db, "Vision", ["alice"])
    accounts.add_to_group(db, "vision", "bob")
    principal = authenticate(db, create_token(db, "bob", "read"))
    assert principal is not None and principal.groups == ("Vision",)
    assert accounts.remove_from_group(db, "VISION", "bob")
    assert not accounts.remove_from_group(db, "vision", "bob")
    with pytest.raises(UnknownAccountError, match="no group 'nope'"):
        accounts.add_to_group(db, "nope", "bob")


# -- tokens --------------------------------------------------------------------------------


def test_only_the_hash_of_a_token_is_stored(db):
    create_user(db, "alice")
    secret = create_token(db, "alice", "write", name="laptop")
    assert secret.startswith("ll_") and len(secret) == 46
    stored = db.execute("SELECT token_hash, prefix, scope, name FROM api_tokens").fetchall()
    assert stored == [(hashlib.sha256(secret.encode()).digest(), secret[:10], "write", "laptop")]
    dump = "\n".join(str(r) for r in db.execute("SELECT * FROM api_tokens").fetchall())
    assert secret not in dump and secret[10:20] not in dump


def test_authenticate_finds_the_user_and_scope(db):
    create_user(db, "alice", is_admin=True)
    principal = authenticate(db, create_token(db, "alice", "admin"))
    assert principal is not None
    assert (principal.user, principal.scope, principal.is_admin) == ("alice", "admin", True)
    assert authenticate(db, "ll_" + "x" * 43) is None
    assert authenticate(db, "not a token") is None


def test_last_use_is_recorded_at_most_once_a_minute(db):
    create_user(db, "alice")
    secret = create_token(db, "alice", "read")
    assert authenticate(db, secret)
    first = db.execute("SELECT last_used_at FROM api_tokens").fetchone()
    assert first and first[0] is not None
    assert authenticate(db, secret)
    assert db.execute("SELECT last_used_at FROM api_tokens").fetchone() == first


def test_revoked_expired_and_disabled_tokens_stop_working(db):
    create_user(db, "alice")
    revoked = create_token(db, "alice", "read")
    expired = create_token(db, "alice", "read", expires=datetime.now(UTC) - timedelta(seconds=1))
    later = create_token(db, "alice", "read", expires=timedelta(days=1))
    assert authenticate(db, revoked) and authenticate(db, later)
    assert accounts.revoke_token(db, revoked[:10])
    assert not accounts.revoke_token(db, revoked)  # revoked before
    assert authenticate(db, revoked) is None
    assert authenticate(db, expired) is None
    assert accounts.disable_user(db, "alice")
    assert authenticate(db, later) is None


def test_tokens_are_found_by_id_prefix_or_secret_and_listed_without_secrets(db):
    create_user(db, "alice")
    create_user(db, "bob")
    secret = create_token(db, "alice", "read")
    create_token(db, "bob", "write")
    info = accounts.find_token(db, secret[:8])
    assert accounts.find_token(db, str(info.id)) == info == accounts.find_token(db, secret)
    with pytest.raises(UnknownAccountError, match="give its id or its prefix"):
        accounts.find_token(db, "ll_")  # too short to tell: refused, never matches every token
    with pytest.raises(UnknownAccountError):
        accounts.find_token(db, "999")
    listed = accounts.list_tokens(db)
    assert [(t.user, t.scope) for t in listed] == [("alice", "read"), ("bob", "write")]
    assert [t.user for t in accounts.list_tokens(db, user="BOB")] == ["bob"]
    assert secret not in repr(listed)
    with pytest.raises(AccountError, match="scope 'owner' is not one of read, write, admin"):
        create_token(db, "alice", "owner")
    with pytest.raises(UnknownAccountError, match="no user 'carol'"):
        create_token(db, "carol", "read")


# -- permissions ---------------------------------------------------------------------------


def test_an_experiment_without_a_grant_is_seen_by_administrators_only(db):
    create_user(db, "root", is_admin=True)
    create_user(db, "alice")
    root = authenticate(db, create_token(db, "root", "admin"))
    alice = authenticate(db, create_token(db, "alice", "admin"))
    assert root and alice
    assert allowed(root, "vision-a", "admin")
    assert not allowed(alice, "vision-a", "read")


def test_grants_by_user_and_group_and_the_order_of_roles(db):
    create_user(db, "alice")
    create_user(db, "bob")
    accounts.create_group(db, "vision", ["bob"])
    grant(db, "vision-a", user="alice", role="write")
    grant(db, "vision-a", group="vision", role="read")
    grant(db, "nlp-b", group="vision", role="admin")
    alice = authenticate(db, create_token(db, "alice", "admin"))
    bob = authenticate(db, create_token(db, "bob", "admin"))
    assert alice and bob
    assert allowed(alice, "vision-a", "read") and allowed(alice, "vision-a", "write")  # write implies read
    assert not allowed(alice, "vision-a", "admin") and not allowed(alice, "nlp-b", "read")
    assert allowed(bob, "vision-a", "read") and not allowed(bob, "vision-a", "write")
    assert allowed(bob, "nlp-b", "write")  # admin implies write
    assert accounts.list_grants(db, "vision-a") == [("user", "alice", "write"), ("group", "vision", "read")]
    assert accounts.revoke_grant(db, "vision-a", group="vision")
    bob = authenticate(db, create_token(db, "bob", "read"))
    assert bob and not allowed(bob, "vision-a", "read")
    with pytest.raises(UnknownAccountError, match="no experiment 'nope'"):
        grant(db, "nope", user="alice", role="read")
    with pytest.raises(AccountError, match="either a user or a group"):
        grant(db, "vision-a", user="alice", group="vision", role="read")


def test_the_token_scope_caps_what_a_role_allows():
    writer = {"vision-a": "write"}
    assert not allowed(Principal("alice", "read", roles=writer), "vision-a", "write")
    assert allowed(Principal("alice", "read", roles=writer), "vision-a", "read")
    assert not allowed(Principal("root", "read", is_admin=True), "vision-a", "write")
    assert allowed(Principal("root", "write", is_admin=True), "vision-a", "write")


def test_accounts_need_the_second_schema_version(pg_conn):
    from labledger.errors import StoreError

    with pytest.raises(StoreError, match="db upgrade"):
        accounts.check_schema(pg_conn)


# -- labledger token / grant / group -------------------------------------------------------


def test_cli_create_prints_the_token_last_and_it_authenticates(db, pg_dsn):
    code, out = _run("token", "create", "--backend", pg_dsn, "--user", "alice", "--scope", "write")
    assert code == 1 and "no user 'alice': add --create-user" in out and len(out.splitlines()) == 1
    code, out = _run(
        "token", "create", "--backend", pg_dsn, "--user", "alice", "--scope", "write", "--create-user"
    )
    assert code == 0, out
    secret = out.split()[-1]
    principal = authenticate(db, secret)
    assert principal is not None and (principal.user, principal.scope) == ("alice", "write")


def test_cli_list_never_shows_secrets_and_revoke_works(db, pg_dsn):
    create_user(db, "alice")
    secret = create_token(db, "alice", "read", name="dashboard")
    code, out = _run("token", "list", "--backend", pg_dsn)
    assert code == 0 and "dashboard" in out and secret[:10] in out and secret not in out
    code, out = _run("token", "list", "--backend", pg_dsn, "--json")
    assert code == 0 and secret not in out and '"scope": "read"' in out
    code, out = _run("token", "revoke", "--backend", pg_dsn, secret[:10])
    assert code == 0 and out.startswith("revoked token")
    assert authenticate(db, secret) is None
    code, out = _run("token", "revoke", "--backend", pg_dsn, secret[:10])
    assert code == 0 and "revoked already" in out
    code, out = _run("token", "revoke", "--backend", pg_dsn, "12345")
    assert code == 1 and "no token '12345'" in out


def test_cli_grant_and_group(db, pg_dsn):
    create_user(db, "alice")
    code, out = _run("group", "--backend", pg_dsn, "vision", "alice", "nobody")
    assert code == 1 and out == "Error: no user 'nobody'\n"  # nothing kept, the group neither
    code, out = _run("group", "--backend", pg_dsn, "vision", "alice")
    assert code == 0 and out == "created group vision\nadded alice to group vision\n"
    code, out = _run(
        "grant", "--backend", pg_dsn, "--experiment", "vision-a", "--group", "vision", "--role", "read"
    )
    assert code == 0 and out == "group vision may read experiment vision-a\n"
    principal = authenticate(db, create_token(db, "alice", "read"))
    assert principal and allowed(principal, "vision-a", "read")
    code, out = _run(
        "grant", "--backend", pg_dsn, "--experiment", "vision-a", "--group", "vision", "--remove"
    )
    assert code == 0 and "lost its role" in out
    code, out = _run(
        "grant", "--backend", pg_dsn, "--experiment", "nope", "--user", "alice", "--role", "read"
    )
    assert code == 1 and "no experiment 'nope'" in out


def test_cli_says_in_one_line_when_the_database_cannot_be_reached_or_is_old(pg_dsn):
    dsn = f"postgresql://alice:s3cret@127.0.0.1:{free_port()}/ledger"
    code, out = _run("token", "list", "--backend", dsn)
    assert code == 1 and len(out.splitlines()) == 1 and "cannot connect" in out and "s3cret" not in out
    code, out = _run("token", "list", "--backend", pg_dsn)  # never upgraded
    assert code == 1 and "labledger db upgrade" in out
