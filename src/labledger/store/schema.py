"""The store's schema: numbered forward migrations, and the current schema in one script.

``MIGRATIONS[n]`` upgrades a store from version ``n`` to ``n + 1``: an SQL
script, or a function of the connection for a step SQL cannot do (v5
re-encodes the metric chunks). A store written by an older release is
upgraded in place when opened; one written by a newer release is refused with
:class:`labledger.errors.StoreVersionError`. A new store is created from
:data:`SCHEMA` at once, not by replaying the migrations; a test checks that
both give the same schema. The SQL lives here, apart from the code that runs
it, so tests can read it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from functools import lru_cache

from labledger.store.schema_v5 import V5

RUN_STATUSES = ("running", "finished", "failed", "killed", "crashed")
FINAL_STATUSES = ("finished", "failed", "killed")
#: The artifact kinds of schema v1-v3 (a migration's SQL never changes once released).
_V1_ARTIFACT_KINDS = (
    "model",
    "checkpoint",
    "plot",
    "predictions",
    "feature_importance",
    "table",
    "dataset",
    "code",
    "other",
)
#: What ``Run.log_artifact(kind=...)`` accepts: v4 adds ``config`` (a training configuration file).
ARTIFACT_KINDS = (*_V1_ARTIFACT_KINDS[:-1], "config", "other")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# A write to a run's records is accepted only while the run is open; the
# final flush happens before the status changes, so nothing is lost.
_OPEN_GUARD = """
CREATE TRIGGER {table}_run_open BEFORE INSERT ON {table}
WHEN (SELECT status FROM runs WHERE id = NEW.run_id) NOT IN ('running', 'crashed')
BEGIN SELECT RAISE(ABORT, 'run has ended and is read-only'); END;
"""

_GUARDED = ("params", "notes", "metric_chunks", "artifacts", "datasets", "folds")

V1 = f"""
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    name TEXT NOT NULL,
    parent_id TEXT REFERENCES runs(id),
    status TEXT NOT NULL CHECK (status IN {_in(RUN_STATUSES)}),
    kind TEXT NOT NULL DEFAULT 'offline' CHECK (kind IN ('offline', 'online')),
    start_time REAL NOT NULL,
    end_time REAL,
    heartbeat REAL NOT NULL,
    author TEXT,
    hypothesis TEXT,
    host TEXT,
    pid INTEGER,
    source TEXT,
    environment TEXT,
    error TEXT,
    UNIQUE (experiment_id, name)
);
CREATE INDEX runs_parent ON runs(parent_id);
CREATE INDEX runs_status ON runs(status);
CREATE TRIGGER runs_final_status BEFORE UPDATE OF status ON runs
WHEN OLD.status IN {_in(FINAL_STATUSES)} AND NEW.status != OLD.status
BEGIN SELECT RAISE(ABORT, 'run has ended; its status is final'); END;

CREATE TABLE params (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TRIGGER params_immutable BEFORE UPDATE ON params
BEGIN SELECT RAISE(ABORT, 'params are immutable'); END;

CREATE TABLE tags (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE tag_history (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    changed_at REAL NOT NULL
);
CREATE INDEX tag_history_run ON tag_history(run_id);

CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    created_at REAL NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX notes_run ON notes(run_id);

CREATE TABLE metric_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE metric_chunks (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key_id INTEGER NOT NULL REFERENCES metric_keys(id),
    seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, key_id, seq)
);
CREATE TABLE metric_summary (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    nan_count INTEGER NOT NULL,
    last REAL,
    last_step INTEGER NOT NULL,
    last_time REAL NOT NULL,
    min REAL,
    max REAL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

CREATE TABLE artifacts (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN {_in(_V1_ARTIFACT_KINDS)}),
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (run_id, name)
);
CREATE TABLE datasets (
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    fingerprint TEXT,
    summary TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, name, role)
) WITHOUT ROWID;
CREATE TABLE folds (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    split TEXT NOT NULL,
    fold INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, key, split, fold)
) WITHOUT ROWID;
CREATE TABLE fold_stats (
    run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    split TEXT NOT NULL,
    n INTEGER NOT NULL,
    mean REAL,
    std REAL,
    min REAL,
    max REAL,
    PRIMARY KEY (run_id, key, split)
) WITHOUT ROWID;
{"".join(_OPEN_GUARD.format(table=t) for t in _GUARDED)}
"""

# v2: lineage and selection. Package sets are stored once per distinct set;
# a run's code, seeds and model type live in its lineage JSON; store-wide
# settings (e.g. declared metric directions) in settings.
V2 = """
ALTER TABLE runs ADD COLUMN lineage TEXT;
ALTER TABLE runs ADD COLUMN packages_sha TEXT;
ALTER TABLE runs ADD COLUMN reproduction_of TEXT REFERENCES runs(id);
CREATE TABLE package_sets (
    sha256 TEXT PRIMARY KEY,
    packages TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE pipelines (
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    structure TEXT NOT NULL,
    text TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX pipelines_version ON pipelines(version);
CREATE INDEX datasets_fingerprint ON datasets(fingerprint);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
-- the start-up lineage capture may store the uncommitted diff after a short run ended
DROP TRIGGER artifacts_run_open;
CREATE TRIGGER artifacts_run_open BEFORE INSERT ON artifacts
WHEN NEW.kind != 'code' AND (SELECT status FROM runs WHERE id = NEW.run_id) NOT IN ('running', 'crashed')
BEGIN SELECT RAISE(ABORT, 'run has ended and is read-only'); END;
""" + _OPEN_GUARD.format(table="pipelines")

# v3: a run's process identity beside its host and pid, so liveness survives pid reuse and
# PID namespaces (containers): the process's start time in clock ticks after boot
# (/proc/<pid>/stat, field 22), the inode of its PID namespace, and the boot id.
V3 = """
ALTER TABLE runs ADD COLUMN pid_start INTEGER;
ALTER TABLE runs ADD COLUMN pid_ns INTEGER;
ALTER TABLE runs ADD COLUMN boot_id TEXT;
"""

# v4: the artifact kind ``config`` (a configuration file, e.g. LightningCLI's config.yaml).
# SQLite cannot change a CHECK constraint in place: the table is rebuilt, rows and ids kept.
V4 = f"""
CREATE TABLE artifacts_v4 (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN {_in(ARTIFACT_KINDS)}),
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (run_id, name)
);
INSERT INTO artifacts_v4 (id, run_id, name, kind, sha256, size, media_type, metadata, created_at)
SELECT id, run_id, name, kind, sha256, size, media_type, metadata, created_at FROM artifacts;
DROP TABLE artifacts;
ALTER TABLE artifacts_v4 RENAME TO artifacts;
CREATE TRIGGER artifacts_run_open BEFORE INSERT ON artifacts
WHEN NEW.kind != 'code' AND (SELECT status FROM runs WHERE id = NEW.run_id) NOT IN ('running', 'crashed')
BEGIN SELECT RAISE(ABORT, 'run has ended and is read-only'); END;
"""


# v6: notes are the one record an ended run still takes (findings written after it ended), each
# with its author.
V6 = """
DROP TRIGGER notes_run_open;
ALTER TABLE notes ADD COLUMN author TEXT;
"""

#: A step of :data:`MIGRATIONS`: an SQL script, or a function that migrates through the connection.
Migration = str | Callable[[sqlite3.Connection], None]
#: MIGRATIONS[n] takes a store from version n to n + 1 (version 0 = empty file).
MIGRATIONS: tuple[Migration, ...] = (V1, V2, V3, V4, V5, V6)
SCHEMA_VERSION = len(MIGRATIONS)

#: The schema of a store at :data:`SCHEMA_VERSION`, the migrations' outcome in one script.
SCHEMA = f"""
CREATE TABLE experiments (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT,
    created_at REAL NOT NULL);
CREATE TABLE runs (
    id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id), name TEXT NOT NULL,
    parent_id TEXT REFERENCES runs(id), status TEXT NOT NULL CHECK (status IN {_in(RUN_STATUSES)}),
    kind TEXT NOT NULL DEFAULT 'offline' CHECK (kind IN ('offline', 'online')), start_time REAL NOT NULL,
    end_time REAL, heartbeat REAL NOT NULL, author TEXT, hypothesis TEXT, host TEXT, pid INTEGER,
    source TEXT, environment TEXT, error TEXT, lineage TEXT, packages_sha TEXT,
    reproduction_of TEXT REFERENCES runs(id), pid_start INTEGER, pid_ns INTEGER, boot_id TEXT,
    UNIQUE (experiment_id, name));
CREATE INDEX runs_parent ON runs(parent_id);
CREATE INDEX runs_status ON runs(status);
CREATE TRIGGER runs_final_status BEFORE UPDATE OF status ON runs
WHEN OLD.status IN {_in(FINAL_STATUSES)} AND NEW.status != OLD.status
BEGIN SELECT RAISE(ABORT, 'run has ended; its status is final'); END;
CREATE TABLE params (run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)) WITHOUT ROWID;
CREATE TRIGGER params_immutable BEFORE UPDATE ON params
BEGIN SELECT RAISE(ABORT, 'params are immutable'); END;
CREATE TABLE tags (run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, value TEXT NOT NULL,
    updated_at REAL NOT NULL, PRIMARY KEY (run_id, key)) WITHOUT ROWID;
CREATE TABLE tag_history (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL, value TEXT NOT NULL, changed_at REAL NOT NULL);
CREATE INDEX tag_history_run ON tag_history(run_id);
CREATE TABLE notes (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id),
    created_at REAL NOT NULL, text TEXT NOT NULL, author TEXT);
CREATE INDEX notes_run ON notes(run_id);
CREATE TABLE metric_keys (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE metric_chunks (run_id TEXT NOT NULL REFERENCES runs(id),
    key_id INTEGER NOT NULL REFERENCES metric_keys(id), seq INTEGER NOT NULL, count INTEGER NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (run_id, key_id, seq));
CREATE TABLE metric_summary (run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
    count INTEGER NOT NULL, nan_count INTEGER NOT NULL, last REAL, last_step INTEGER NOT NULL,
    last_time REAL NOT NULL, min REAL, max REAL, PRIMARY KEY (run_id, key)) WITHOUT ROWID;
CREATE TABLE datasets (run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL, role TEXT NOT NULL,
    fingerprint TEXT, summary TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (run_id, name, role)) WITHOUT ROWID;
CREATE TABLE folds (run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, split TEXT NOT NULL,
    fold INTEGER NOT NULL, value REAL, PRIMARY KEY (run_id, key, split, fold)) WITHOUT ROWID;
CREATE TABLE fold_stats (run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, split TEXT NOT NULL,
    n INTEGER NOT NULL, mean REAL, std REAL, min REAL, max REAL,
    PRIMARY KEY (run_id, key, split)) WITHOUT ROWID;
{"".join(_OPEN_GUARD.format(table=t) for t in _GUARDED if t not in ("artifacts", "notes"))}
CREATE TABLE package_sets (sha256 TEXT PRIMARY KEY, packages TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE pipelines (run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL,
    version TEXT NOT NULL, structure TEXT NOT NULL, text TEXT, created_at REAL NOT NULL,
    PRIMARY KEY (run_id, name)) WITHOUT ROWID;
CREATE INDEX pipelines_version ON pipelines(version);
CREATE INDEX datasets_fingerprint ON datasets(fingerprint);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL);
{_OPEN_GUARD.format(table="pipelines")}
CREATE TABLE artifacts (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN {_in(ARTIFACT_KINDS)}), sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, media_type TEXT NOT NULL, metadata TEXT NOT NULL, created_at REAL NOT NULL,
    UNIQUE (run_id, name));
CREATE TRIGGER artifacts_run_open BEFORE INSERT ON artifacts
WHEN NEW.kind != 'code' AND (SELECT status FROM runs WHERE id = NEW.run_id) NOT IN ('running', 'crashed')
BEGIN SELECT RAISE(ABORT, 'run has ended and is read-only'); END;
"""
#: The table recording the versions applied (every store has it).
VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at REAL NOT NULL)"
)


@lru_cache(maxsize=1)
def schema_statements() -> tuple[str, ...]:
    """:data:`SCHEMA` split into statements, once per process."""
    return tuple(statements(SCHEMA))


def migrate(conn: sqlite3.Connection, step: Migration) -> None:
    """Apply one step of :data:`MIGRATIONS` inside the caller's transaction."""
    if callable(step):
        step(conn)
        return
    for statement in statements(step):
        conn.execute(statement)


def upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Bring a store at ``version`` to :data:`SCHEMA_VERSION` inside the caller's transaction, each
    version recorded: a new one (``version`` 0) gets :data:`SCHEMA` at once, an older one its migrations."""
    done = []
    if version == 0:
        for statement in (VERSION_TABLE, *schema_statements()):
            conn.execute(statement)
        done.append(SCHEMA_VERSION)
    for target in range(version or SCHEMA_VERSION, SCHEMA_VERSION):
        migrate(conn, MIGRATIONS[target])
        done.append(target + 1)
    conn.executemany("INSERT INTO schema_version VALUES (?, ?)", [(v, time.time()) for v in done])


def statements(script: str) -> Iterator[str]:
    """Split a migration script into complete statements (triggers included)."""
    buf: list[str] = []
    for line in script.splitlines(keepends=True):
        buf.append(line)
        text = "".join(buf).strip()
        if text and sqlite3.complete_statement(text):
            yield text
            buf = []
    rest = "".join(buf).strip()
    if rest:
        yield rest
