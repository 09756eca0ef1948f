"""A team's labledger server: accounts (users, groups, API tokens, experiment permissions) on
PostgreSQL, and the authentication of its requests (:mod:`labledger.server.auth`, which needs
Starlette).

>>> from labledger.server import authenticate, create_token
>>> from labledger.store.postgres import connect
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     authenticate(conn, create_token(conn, "alice", "read")).scope
'read'
"""

from __future__ import annotations

from labledger.server.accounts import (
    ACTIONS,
    ROLES,
    SCOPES,
    AccountError,
    AccountExistsError,
    Principal,
    TokenInfo,
    UnknownAccountError,
    User,
    add_to_group,
    allowed,
    authenticate,
    authenticator,
    create_group,
    create_token,
    create_user,
    disable_user,
    find_token,
    find_user,
    grant,
    list_grants,
    list_tokens,
    remove_from_group,
    revoke_grant,
    revoke_token,
)

__all__ = [
    "ACTIONS",
    "ROLES",
    "SCOPES",
    "AccountError",
    "AccountExistsError",
    "Principal",
    "TokenInfo",
    "UnknownAccountError",
    "User",
    "add_to_group",
    "allowed",
    "authenticate",
    "authenticator",
    "create_group",
    "create_token",
    "create_user",
    "disable_user",
    "find_token",
    "find_user",
    "grant",
    "list_grants",
    "list_tokens",
    "remove_from_group",
    "revoke_grant",
    "revoke_token",
]
