"""Who may use a labledger server: users, groups, API tokens and experiment permissions.

Everything here takes an open PostgreSQL connection (:func:`labledger.store.postgres.connect`)
on a database at schema version 2 or later (``labledger db upgrade``); the SQL is in
:mod:`labledger.store.postgres.accounts`.

- **Users and groups** are found by name in any case (``Alice`` is ``alice``).
- **A token** is ``ll_`` followed by 43 random URL-safe characters (256 bits). Only its SHA-256 is
  stored, with its first characters (:data:`PREFIX_LENGTH`) so a listing can show which is which;
  the secret is returned once, by :func:`create_token`. A token has a *scope*: ``read``,
  ``write`` or ``admin``, the most it may ever do, whatever its user may do.
- **Experiment permissions** give a user, or a group, the role ``read``, ``write`` or ``admin`` on
  one experiment; ``write`` includes ``read`` and ``admin`` includes both. A user's role is the
  strongest of their own grant and their groups'. Server administrators (``users.is_admin``)
  may do anything their token's scope allows. **An experiment without any grant is visible to
  nobody but the administrators**: access is given, never assumed.

>>> from labledger.store.postgres import connect
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     alice = create_user(conn, "alice")
...     secret = create_token(conn, "alice", "write")
...     grant(conn, "digits-svm", user="alice", role="write")
...     principal = authenticate(conn, secret)
...     allowed(principal, "digits-svm", "write"), allowed(principal, "other-team", "read")
(True, False)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.store.postgres import accounts as sql
from labledger.store.postgres.accounts import TokenInfo, User, check_schema
from labledger.store.postgres.v2 import SCOPES

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ACTIONS", "PREFIX_LENGTH", "ROLES", "SCOPES", "TOKEN_PREFIX", "AccountError", "AccountExistsError",
    "Principal", "TokenInfo", "UnknownAccountError", "User", "add_to_group", "allowed", "authenticate",
    "authenticator", "check_schema", "create_group", "create_token", "create_user", "disable_user",
    "find_token", "find_user", "grant", "hash_token", "list_grants", "list_tokens", "remove_from_group",
    "revoke_grant", "revoke_token",
]  # fmt: skip

#: Roles on an experiment, weakest first (each includes the ones before it).
ROLES = SCOPES
#: What a request may want to do to an experiment.
ACTIONS = SCOPES
_RANK = {name: rank for rank, name in enumerate(SCOPES)}
#: Every token starts with it (so a leaked one is recognisable, e.g. by secret scanners).
TOKEN_PREFIX = "ll_"
_TOKEN_LENGTH = len(TOKEN_PREFIX) + 43  # secrets.token_urlsafe(32)
#: How many of a token's first characters are stored and shown (``ll_`` and 7 random ones).
PREFIX_LENGTH = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")


class AccountError(LabledgerError, ValueError):
    """A user, group, token or permission could not be created, found or changed."""


class UnknownAccountError(AccountError, LookupError):
    """No user, group, experiment or token by that name: ``kind`` and ``name`` say which."""

    def __init__(self, kind: str, name: str, hint: str = "") -> None:
        self.kind, self.name = kind, name
        super().__init__(f"no {kind} {name!r}" + (f": {hint}" if hint else ""))


class AccountExistsError(AccountError):
    """A user or group of that name (in any case) exists already."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        super().__init__(f"a {kind} named {name!r} exists already (names are compared ignoring case)")


def _choice(what: str, value: str, choices: Iterable[str]) -> str:
    if value not in choices:
        raise AccountError(f"{what} {value!r} is not one of {', '.join(choices)}")
    return value


def _name(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise AccountError(
            f"{kind} name {name!r}: use 1 to 100 letters, digits, . _ @ + - (a letter or digit first)"
        )
    return name


@dataclass(frozen=True)
class Principal:
    """Who made a request, as :func:`authenticate` found them from their token.

    ``roles`` maps each experiment granted to the user (or one of their groups) to their
    strongest role there; use :func:`allowed` rather than reading it.
    """

    user: str
    scope: str
    groups: tuple[str, ...] = ()
    is_admin: bool = False
    user_id: int = 0
    token_id: int = 0
    roles: Mapping[str, str] = field(default_factory=dict, hash=False)


def create_user(
    conn: psycopg.Connection[Any],
    name: str,
    is_admin: bool = False,
    display_name: str | None = None,
    email: str | None = None,
) -> User:
    """Create a user; raises :class:`AccountExistsError` when the name is taken (in any case).

    >>> create_user(conn, "alice", is_admin=True)  # doctest: +SKIP
    User(id=1, name='alice', is_admin=True, disabled=False)
    """
    user_id = sql.insert_user(conn, _name("user", name), is_admin, display_name, email)
    if user_id is None:
        raise AccountExistsError("user", name)
    return User(user_id, name, is_admin)


def find_user(conn: psycopg.Connection[Any], name: str) -> User | None:
    """The user ``name`` (in any case), or ``None``.

    >>> find_user(conn, "ALICE")  # doctest: +SKIP
    User(id=1, name='alice', is_admin=True, disabled=False)
    """
    return sql.user_row(conn, name)


def _get_user(conn: psycopg.Connection[Any], name: str) -> User:
    found = find_user(conn, name)
    if found is None:
        raise UnknownAccountError("user", name)
    return found


def _group_id(conn: psycopg.Connection[Any], name: str) -> int:
    row = sql.group_row(conn, name)
    if row is None:
        raise UnknownAccountError("group", name)
    return int(row[0])


def disable_user(conn: psycopg.Connection[Any], name: str) -> bool:
    """Disable a user: their tokens stop working. ``False`` when they were disabled already.

    >>> disable_user(conn, "bob")  # doctest: +SKIP
    True
    """
    return sql.disable_user(conn, _get_user(conn, name).id)


def create_group(conn: psycopg.Connection[Any], name: str, members: Iterable[str] = ()) -> int:
    """Create a group (its members given by user name); its id. Raises :class:`AccountExistsError`.

    >>> create_group(conn, "vision", ["alice", "bob"])  # doctest: +SKIP
    1
    """
    with conn.transaction():
        group_id = sql.insert_group(conn, _name("group", name))
        if group_id is None:
            raise AccountExistsError("group", name)
        for member in members:
            sql.add_member(conn, group_id, _get_user(conn, member).id)
    return group_id


def add_to_group(conn: psycopg.Connection[Any], group: str, user: str) -> None:
    """Put a user in a group (nothing changes when they are in it).

    >>> add_to_group(conn, "vision", "carol")  # doctest: +SKIP
    """
    sql.add_member(conn, _group_id(conn, group), _get_user(conn, user).id)


def remove_from_group(conn: psycopg.Connection[Any], group: str, user: str) -> bool:
    """Take a user out of a group; ``False`` when they were not in it.

    >>> remove_from_group(conn, "vision", "carol")  # doctest: +SKIP
    True
    """
    return sql.remove_member(conn, _group_id(conn, group), _get_user(conn, user).id)


def hash_token(secret: str) -> bytes:
    """The SHA-256 of a token, as stored.

    >>> len(hash_token("ll_example"))
    32
    """
    return hashlib.sha256(secret.encode("utf-8")).digest()


def create_token(
    conn: psycopg.Connection[Any],
    user: str,
    scope: str,
    name: str | None = None,
    expires: datetime | timedelta | None = None,
) -> str:
    """Create an API token for ``user`` and return its secret: the only time it is seen.

    :param scope: ``read``, ``write`` or ``admin``: the most the token may do.
    :param name: what the token is for (shown by :func:`list_tokens`); default ``"<scope> token"``.
    :param expires: when it stops working: a time zone-aware moment, or a duration from now.

    >>> create_token(conn, "alice", "read", name="dashboard", expires=timedelta(days=90))  # doctest: +SKIP
    'll_Jx0...'
    """
    _choice("scope", scope, SCOPES)
    if isinstance(expires, datetime) and expires.tzinfo is None:
        raise AccountError("expires: give a time zone-aware datetime (or a timedelta from now)")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user_id, label = _get_user(conn, user).id, name or f"{scope} token"
    sql.insert_token(conn, user_id, label, hash_token(secret), scope, secret[:PREFIX_LENGTH], expires)
    return secret


def authenticate(conn: psycopg.Connection[Any], secret: str) -> Principal | None:
    """Who a token belongs to, or ``None`` when it is unknown, revoked, expired or its user disabled.

    The token is found by its SHA-256 (an index lookup: no comparison of secrets whose timing
    could leak them). Its last use is recorded at most once a minute.

    >>> authenticate(conn, secret)  # doctest: +SKIP
    Principal(user='alice', scope='write', groups=('vision',), is_admin=False, ...)
    """
    if len(secret) != _TOKEN_LENGTH or not secret.startswith(TOKEN_PREFIX):
        return None
    row = sql.token_by_hash(conn, hash_token(secret))
    if row is None:
        return None
    token_id, scope, user_id, user, is_admin, groups, due = row
    if due:
        sql.touch_token(conn, token_id)
    roles = {} if is_admin else dict(sql.roles_of(conn, user_id))
    return Principal(str(user), str(scope), tuple(groups), bool(is_admin), int(user_id), int(token_id), roles)


def authenticator(
    connection: Callable[[], AbstractContextManager[psycopg.Connection[Any]]],
) -> Callable[[str], Principal | None]:
    """:func:`authenticate` on a connection of its own each call, for
    :class:`labledger.server.auth.TokenAuth`: ``connection()`` gives a context manager yielding
    a connection (a pool's ``connection`` method, or a function calling ``connect``).

    >>> from psycopg_pool import ConnectionPool  # doctest: +SKIP
    >>> pool = ConnectionPool("postgresql://db/ledger", kwargs={"autocommit": True})  # doctest: +SKIP
    >>> app = TokenAuth(app, authenticate=authenticator(pool.connection))  # doctest: +SKIP
    """

    def check(secret: str) -> Principal | None:
        with connection() as conn:
            return authenticate(conn, secret)

    return check


def allowed(principal: Principal, experiment: str, action: str) -> bool:
    """Whether ``principal`` may ``action`` (``read``, ``write`` or ``admin``) the experiment.

    The token's scope caps the action; administrators may then do anything; others need a
    role on the experiment at least as strong as the action (theirs or one of their groups').

    >>> allowed(Principal("alice", "read", roles={"digits": "write"}), "digits", "write")
    False
    >>> allowed(Principal("alice", "write", roles={"digits": "write"}), "digits", "read")
    True
    """
    need = _RANK[_choice("action", action, ACTIONS)]
    if need > _RANK[principal.scope]:
        return False
    if principal.is_admin:
        return True
    role = principal.roles.get(experiment)
    return role is not None and _RANK[role] >= need


def list_tokens(conn: psycopg.Connection[Any], user: str | None = None) -> list[TokenInfo]:
    """The tokens (all, or a user's) oldest first, revoked ones included; never a secret.

    >>> [t.prefix for t in list_tokens(conn, user="alice")]  # doctest: +SKIP
    ['ll_Jx0abcd']
    """
    if user is not None:
        _get_user(conn, user)
    return [*sql.token_rows(conn, user=user)]


def find_token(conn: psycopg.Connection[Any], token: int | str) -> TokenInfo:
    """A token by its id, its shown prefix (at least ``ll_`` and one character) or its secret.

    >>> find_token(conn, "ll_Jx0a").id  # doctest: +SKIP
    3
    """
    text = str(token).strip()
    if text.isdigit():
        rows = sql.token_rows(conn, token_id=int(text))
    elif text.startswith(TOKEN_PREFIX) and len(text) == _TOKEN_LENGTH:
        rows = sql.token_rows(conn, token_hash=hash_token(text))
    elif text.startswith(TOKEN_PREFIX) and len(TOKEN_PREFIX) < len(text) <= PREFIX_LENGTH:
        rows = sql.tokens_by_prefix(conn, text)
        if len(rows) > 1:
            ids = ", ".join(str(t.id) for t in rows)
            raise AccountError(f"{len(rows)} tokens start with {text!r} (ids {ids}): give the id")
    else:
        raise UnknownAccountError(
            "token", text, f"give its id or its prefix ({TOKEN_PREFIX}… as labledger token list shows)"
        )
    if not rows:
        raise UnknownAccountError("token", text, "labledger token list shows the tokens")
    return rows[0]


def revoke_token(conn: psycopg.Connection[Any], token: int | str) -> bool:
    """Revoke a token (by id, shown prefix or secret): it stops working at once.
    ``False`` when it was revoked before; :class:`UnknownAccountError` when there is none.

    >>> revoke_token(conn, 3)  # doctest: +SKIP
    True
    """
    return sql.revoke_token_row(conn, find_token(conn, token).id)


def _target(
    conn: psycopg.Connection[Any], experiment: str, user: str | None, group: str | None
) -> tuple[int, int | None, int | None]:
    if (user is None) == (group is None):
        raise AccountError("give either a user or a group")
    exp = sql.experiment_id(conn, experiment)
    if exp is None:
        raise UnknownAccountError("experiment", experiment, "it is created by its first run")
    if user is not None:
        return exp, _get_user(conn, user).id, None
    return exp, None, _group_id(conn, str(group))


def grant(
    conn: psycopg.Connection[Any],
    experiment: str,
    *,
    role: str,
    user: str | None = None,
    group: str | None = None,
    granted_by: str | None = None,
) -> None:
    """Give a user or a group ``role`` (``read``, ``write``, ``admin``) on an experiment,
    replacing the role they had there.

    >>> grant(conn, "digits-svm", group="vision", role="read")  # doctest: +SKIP
    """
    _choice("role", role, ROLES)
    exp, user_id, group_id = _target(conn, experiment, user, group)
    by = _get_user(conn, granted_by).id if granted_by else None
    sql.upsert_grant(conn, exp, role, user_id=user_id, group_id=group_id, granted_by=by)


def revoke_grant(
    conn: psycopg.Connection[Any], experiment: str, *, user: str | None = None, group: str | None = None
) -> bool:
    """Take away a user's or a group's role on an experiment; ``False`` when they had none.

    >>> revoke_grant(conn, "digits-svm", user="bob")  # doctest: +SKIP
    True
    """
    exp, user_id, group_id = _target(conn, experiment, user, group)
    return sql.delete_grant(conn, exp, user_id=user_id, group_id=group_id)


def list_grants(conn: psycopg.Connection[Any], experiment: str) -> list[tuple[str, str, str]]:
    """``("user" | "group", name, role)`` of an experiment's grants.

    >>> list_grants(conn, "digits-svm")  # doctest: +SKIP
    [('user', 'alice', 'admin'), ('group', 'vision', 'read')]
    """
    exp = sql.experiment_id(conn, experiment)
    if exp is None:
        raise UnknownAccountError("experiment", experiment)
    return sql.grants_of(conn, exp)
