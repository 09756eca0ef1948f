"""Migration 2 of the PostgreSQL schema (see :mod:`labledger.store.postgres.schema`): what an API
token may do (its *scope*) and the first characters of the token, shown so a token can be told
apart and revoked without its secret. Released SQL never changes.

Tokens made before this migration get the ``read`` scope (the least they could do) and no prefix.
"""

from __future__ import annotations

__all__ = ["SCOPES", "V2"]

#: What a token may do, weakest first: each scope includes the ones before it.
SCOPES = ("read", "write", "admin")

V2 = """
ALTER TABLE api_tokens
    ADD COLUMN scope text NOT NULL DEFAULT 'read' CHECK (scope IN ('read', 'write', 'admin')),
    ADD COLUMN prefix text CHECK (length(prefix) BETWEEN 4 AND 16);
CREATE INDEX api_tokens_prefix ON api_tokens (prefix) WHERE prefix IS NOT NULL;
"""
