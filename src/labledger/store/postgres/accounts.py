"""The SQL of a server's accounts: users, groups, API tokens and experiment permissions.

One statement a function, every value a parameter; users and tokens come back as :class:`User`
and :class:`TokenInfo`, other rows as tuples. The rules
(what a scope allows, what a token looks like, which errors to raise) live in
:mod:`labledger.server.accounts`, which is what to call.

>>> from labledger.store.postgres import connect
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     user_id = insert_user(conn, "alice")
...     user_row(conn, "ALICE")
User(id=1, name='alice', is_admin=False, disabled=False)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from labledger.errors import StoreError
from labledger.store.postgres.connection import describe
from labledger.store.postgres.v2 import SCOPES

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ACCOUNTS_SCHEMA",
    "TokenInfo",
    "User",
    "add_member",
    "check_schema",
    "delete_grant",
    "disable_user",
    "experiment_id",
    "grants_of",
    "group_row",
    "insert_group",
    "insert_token",
    "insert_user",
    "remove_member",
    "revoke_token_row",
    "roles_of",
    "token_by_hash",
    "token_rows",
    "tokens_by_prefix",
    "touch_token",
    "upsert_grant",
    "user_row",
]

_USER = "SELECT id, name, is_admin, disabled_at FROM users WHERE lower(name) = lower(%s)"
_ADD_USER = (
    "INSERT INTO users (name, is_admin, display_name, email) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT ((lower(name))) DO NOTHING RETURNING id"
)
_DISABLE_USER = "UPDATE users SET disabled_at = now() WHERE id = %s AND disabled_at IS NULL"
_GROUP = "SELECT id, name FROM groups WHERE lower(name) = lower(%s)"
_ADD_GROUP = "INSERT INTO groups (name) VALUES (%s) ON CONFLICT ((lower(name))) DO NOTHING RETURNING id"
_ADD_MEMBER = "INSERT INTO group_members (group_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
_REMOVE_MEMBER = "DELETE FROM group_members WHERE group_id = %s AND user_id = %s"
_EXPERIMENT = "SELECT id FROM experiments WHERE name = %s"

_ADD_TOKEN = (
    "INSERT INTO api_tokens (user_id, name, token_hash, scope, prefix, expires_at) "
    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
)
_ADD_TOKEN_FOR = (
    "INSERT INTO api_tokens (user_id, name, token_hash, scope, prefix, expires_at) "
    "VALUES (%s, %s, %s, %s, %s, now() + %s) RETURNING id"
)
# a live token only: not revoked, not expired, its user not disabled (one index lookup by hash)
_TOKEN_BY_HASH = (
    "SELECT t.id, t.scope, u.id, u.name, u.is_admin, "
    "ARRAY(SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id "
    "WHERE m.user_id = u.id ORDER BY lower(g.name)), "
    "t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' "
    "FROM api_tokens t JOIN users u ON u.id = t.user_id "
    "WHERE t.token_hash = %s AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) "
    "AND u.disabled_at IS NULL"
)
_TOUCH = (
    "UPDATE api_tokens SET last_used_at = now() WHERE id = %s "
    "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
)
# the fields of TokenInfo, in order (never the hash)
_TOKEN_SELECT = (
    "SELECT t.id, u.name, t.name, t.scope, t.prefix, t.created_at, t.last_used_at, t.expires_at, "
    "t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id "
)
_TOKENS = _TOKEN_SELECT + "ORDER BY t.id"
_USER_TOKENS = _TOKEN_SELECT + "WHERE lower(u.name) = lower(%s) ORDER BY t.id"
_TOKEN_BY_ID = _TOKEN_SELECT + "WHERE t.id = %s"
_TOKEN_BY_SECRET = _TOKEN_SELECT + "WHERE t.token_hash = %s"
_TOKENS_BY_PREFIX = _TOKEN_SELECT + "WHERE starts_with(t.prefix, %s) ORDER BY t.id"
_REVOKE = "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL"

_GRANT_USER = (
    "INSERT INTO experiment_permissions (experiment_id, user_id, role, granted_by) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (experiment_id, user_id) WHERE user_id IS NOT NULL "
    "DO UPDATE SET role = excluded.role, granted_at = now(), granted_by = excluded.granted_by"
)
_GRANT_GROUP = (
    "INSERT INTO experiment_permissions (experiment_id, group_id, role, granted_by) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (experiment_id, group_id) WHERE group_id IS NOT NULL "
    "DO UPDATE SET role = excluded.role, granted_at = now(), granted_by = excluded.granted_by"
)
_UNGRANT_USER = "DELETE FROM experiment_permissions WHERE experiment_id = %s AND user_id = %s"
_UNGRANT_GROUP = "DELETE FROM experiment_permissions WHERE experiment_id = %s AND group_id = %s"
# the strongest role of a user on each experiment: their own grant's, or one of their groups'
_ROLES = (
    "SELECT e.name, (%s::text[])[max(array_position(%s::text[], p.role))] "
    "FROM experiment_permissions p JOIN experiments e ON e.id = p.experiment_id "
    "WHERE p.user_id = %s OR p.group_id IN (SELECT group_id FROM group_members WHERE user_id = %s) "
    "GROUP BY e.name"
)
_GRANTS = (
    "SELECT CASE WHEN p.user_id IS NULL THEN 'group' ELSE 'user' END, coalesce(u.name, g.name), p.role "
    "FROM experiment_permissions p LEFT JOIN users u ON u.id = p.user_id "
    "LEFT JOIN groups g ON g.id = p.group_id WHERE p.experiment_id = %s "
    "ORDER BY 1 DESC, lower(coalesce(u.name, g.name))"
)


@dataclass(frozen=True)
class User:
    """A user of the server."""

    id: int
    name: str
    is_admin: bool = False
    disabled: bool = False


@dataclass(frozen=True)
class TokenInfo:
    """What is known of an API token besides its secret (which is never stored)."""

    id: int
    user: str
    name: str
    scope: str
    prefix: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


#: The first schema version holding what the accounts need (token scopes).
ACCOUNTS_SCHEMA = 2


def check_schema(conn: psycopg.Connection[Any]) -> None:
    """Raise :class:`~labledger.errors.StoreError` unless the database is at :data:`ACCOUNTS_SCHEMA`
    or later.

    >>> check_schema(conn)  # doctest: +SKIP
    """
    from labledger.store.postgres.migrations import current_version

    version = current_version(conn)
    if version < ACCOUNTS_SCHEMA:
        raise StoreError(
            describe(conn),
            f"schema version {version} has no API token scopes (version {ACCOUNTS_SCHEMA} has): "
            "run labledger db upgrade --backend URI first",
        )


def _one(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
    row = conn.execute(sql, params).fetchone()
    return tuple(row) if row is not None else None


def user_row(conn: psycopg.Connection[Any], name: str) -> User | None:
    """The user ``name`` (any case), or ``None``."""
    row = _one(conn, _USER, (name,))
    return User(int(row[0]), str(row[1]), bool(row[2]), row[3] is not None) if row else None


def insert_user(
    conn: psycopg.Connection[Any],
    name: str,
    is_admin: bool = False,
    display_name: str | None = None,
    email: str | None = None,
) -> int | None:
    """The id of a new user, or ``None`` when the name (in any case) is taken."""
    row = _one(conn, _ADD_USER, (name, is_admin, display_name, email))
    return int(row[0]) if row else None


def disable_user(conn: psycopg.Connection[Any], user_id: int) -> bool:
    """Disable a user (their tokens stop working); ``False`` when they already were."""
    return conn.execute(_DISABLE_USER, (user_id,)).rowcount == 1


def group_row(conn: psycopg.Connection[Any], name: str) -> tuple[Any, ...] | None:
    """``(id, name)`` of the group ``name`` (any case), or ``None``."""
    return _one(conn, _GROUP, (name,))


def insert_group(conn: psycopg.Connection[Any], name: str) -> int | None:
    """The id of a new group, or ``None`` when the name (in any case) is taken."""
    row = _one(conn, _ADD_GROUP, (name,))
    return int(row[0]) if row else None


def add_member(conn: psycopg.Connection[Any], group_id: int, user_id: int) -> None:
    """Put a user in a group (nothing happens when they are in it)."""
    conn.execute(_ADD_MEMBER, (group_id, user_id))


def remove_member(conn: psycopg.Connection[Any], group_id: int, user_id: int) -> bool:
    """Take a user out of a group; ``False`` when they were not in it."""
    return conn.execute(_REMOVE_MEMBER, (group_id, user_id)).rowcount == 1


def experiment_id(conn: psycopg.Connection[Any], name: str) -> int | None:
    """The id of the experiment ``name`` (exact case), or ``None``."""
    row = _one(conn, _EXPERIMENT, (name,))
    return int(row[0]) if row else None


def lock_experiment_name(conn: psycopg.Connection[Any], name: str) -> None:
    """Hold, until this transaction ends, the right to create experiment ``name`` (another
    transaction asking waits), so creating it and granting its creator happen as one."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('labledger.experiment'), hashtext(%s))", (name,))


def insert_token(
    conn: psycopg.Connection[Any],
    user_id: int,
    name: str,
    token_hash: bytes,
    scope: str,
    prefix: str,
    expires: datetime | timedelta | None = None,
) -> int:
    """The id of a new token of the user; ``expires`` is a moment, or a time from now."""
    sql = _ADD_TOKEN_FOR if isinstance(expires, timedelta) else _ADD_TOKEN
    row = _one(conn, sql, (user_id, name, token_hash, scope, prefix, expires))
    assert row is not None  # INSERT ... RETURNING gives one row
    return int(row[0])


def token_by_hash(conn: psycopg.Connection[Any], token_hash: bytes) -> tuple[Any, ...] | None:
    """``(token id, scope, user id, user name, is_admin, [group names], due for a touch)`` of the
    live token with this SHA-256, or ``None`` (unknown, revoked, expired, or its user disabled)."""
    return _one(conn, _TOKEN_BY_HASH, (token_hash,))


def touch_token(conn: psycopg.Connection[Any], token_id: int) -> None:
    """Record that a token was used now (written at most once a minute)."""
    conn.execute(_TOUCH, (token_id,))


def token_rows(
    conn: psycopg.Connection[Any],
    user: str | None = None,
    token_id: int | None = None,
    token_hash: bytes | None = None,
) -> list[TokenInfo]:
    """Tokens: all, a user's, the one with an id, or the one with a hash; oldest first."""
    params: tuple[Any, ...]
    if token_id is not None:
        sql, params = _TOKEN_BY_ID, (token_id,)
    elif token_hash is not None:
        sql, params = _TOKEN_BY_SECRET, (token_hash,)
    elif user is not None:
        sql, params = _USER_TOKENS, (user,)
    else:
        sql, params = _TOKENS, ()
    return [TokenInfo(*r) for r in conn.execute(sql, params).fetchall()]


def tokens_by_prefix(conn: psycopg.Connection[Any], prefix: str) -> list[TokenInfo]:
    """Tokens whose shown prefix starts with ``prefix``, oldest first."""
    return [TokenInfo(*r) for r in conn.execute(_TOKENS_BY_PREFIX, (prefix,)).fetchall()]


def revoke_token_row(conn: psycopg.Connection[Any], token_id: int) -> bool:
    """Revoke a token now; ``False`` when it was revoked before."""
    return conn.execute(_REVOKE, (token_id,)).rowcount == 1


def upsert_grant(
    conn: psycopg.Connection[Any],
    experiment: int,
    role: str,
    user_id: int | None = None,
    group_id: int | None = None,
    granted_by: int | None = None,
) -> None:
    """Give a user or a group (one of them) ``role`` on an experiment, replacing their former role."""
    if user_id is not None:
        conn.execute(_GRANT_USER, (experiment, user_id, role, granted_by))
    else:
        conn.execute(_GRANT_GROUP, (experiment, group_id, role, granted_by))


def delete_grant(
    conn: psycopg.Connection[Any], experiment: int, user_id: int | None = None, group_id: int | None = None
) -> bool:
    """Take away a user's or a group's role on an experiment; ``False`` when they had none."""
    if user_id is not None:
        return conn.execute(_UNGRANT_USER, (experiment, user_id)).rowcount == 1
    return conn.execute(_UNGRANT_GROUP, (experiment, group_id)).rowcount == 1


def roles_of(conn: psycopg.Connection[Any], user_id: int) -> list[tuple[str, str]]:
    """``(experiment name, role)``: the user's strongest role on each experiment granted to them
    or to one of their groups."""
    ranked = list(SCOPES)
    rows = conn.execute(_ROLES, (ranked, ranked, user_id, user_id)).fetchall()
    return [(str(e), str(r)) for e, r in rows]


def grants_of(conn: psycopg.Connection[Any], experiment: int) -> list[tuple[str, str, str]]:
    """``("user" | "group", name, role)`` of an experiment's grants, users first."""
    return [(str(k), str(n), str(r)) for k, n, r in conn.execute(_GRANTS, (experiment,)).fetchall()]
