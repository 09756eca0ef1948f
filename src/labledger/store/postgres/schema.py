"""The PostgreSQL schema: the embedded store's records, plus what a shared server needs.

``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``; each lives in its own
module (``v1`` ...) and, once released, never changes: later changes are new migrations.
:mod:`labledger.store.postgres.migrations` applies them.

Choices, the same in every table:

- **Times are** ``timestamptz`` (UTC, microseconds): the SQLite store's epoch seconds
  (``REAL``) convert both ways with ``to_timestamp()`` / ``extract(epoch ...)``.
- **Metric values are** ``double precision``: float64 like the SQLite store's ``REAL``, NaN
  and ±inf included. Steps and counts are ``bigint``.
- **JSON documents are** ``text``, not ``jsonb``: params, summaries and lineage may hold
  NaN or ±inf, which PostgreSQL's JSON types reject; readers decode them and report damage
  exactly as with SQLite.
- **Metric series are chunks** in the codec of :mod:`labledger.store.codec`, as ``bytea``
  stored out of line *uncompressed* (``STORAGE EXTERNAL``): the codec has compressed them.
- **Finished runs are read-only and params immutable** in the database itself (triggers),
  as in the SQLite schema. Each refusal carries its own SQLSTATE (``*_SQLSTATE``), so the server
  turns it into the matching :mod:`labledger.errors` class.

Objects are created in the connection's current schema; functions are prefixed
``labledger_``.
"""

from __future__ import annotations

from labledger.store.postgres.v1 import (
    FINAL_STATUS_SQLSTATE,
    PARAMS_IMMUTABLE_SQLSTATE,
    RUN_ENDED_SQLSTATE,
    V1,
)
from labledger.store.postgres.v2 import V2
from labledger.store.postgres.v3 import V3

__all__ = [
    "FINAL_STATUS_SQLSTATE",
    "MIGRATIONS",
    "PARAMS_IMMUTABLE_SQLSTATE",
    "RUN_ENDED_SQLSTATE",
    "SCHEMA_VERSION",
    "TABLES",
    "V1",
    "V2",
    "V3",
    "VERSION_TABLE",
]

#: MIGRATIONS[n] takes a database from version n to n + 1 (version 0: no labledger tables).
MIGRATIONS: tuple[str, ...] = (V1, V2, V3)
SCHEMA_VERSION = len(MIGRATIONS)

#: The versions applied, one row each (every labledger database has it, created before v1).
VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    labledger text NOT NULL
)
"""

#: The tables of :data:`SCHEMA_VERSION`, besides ``schema_version``.
TABLES = (
    "experiments",
    "package_sets",
    "runs",
    "params",
    "tags",
    "tag_history",
    "notes",
    "metric_keys",
    "metric_chunks",
    "metric_summary",
    "artifacts",
    "datasets",
    "folds",
    "fold_stats",
    "pipelines",
    "settings",
    "users",
    "groups",
    "group_members",
    "api_tokens",
    "experiment_permissions",
    "ingested_batches",
)
