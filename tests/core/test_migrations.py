"""A store written by an older release opens, upgraded in place, in this one."""

from __future__ import annotations

import math
import shutil
import sqlite3
from pathlib import Path

import pytest

import labledger as ll
from labledger.store import Store
from labledger.store.schema import MIGRATIONS, SCHEMA_VERSION

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store-v1"


def test_v1_fixture_store_is_migrated_and_fully_readable(tmp_path):
    store_path = tmp_path / "store"
    shutil.copytree(FIXTURE, store_path)
    store = Store(store_path)
    assert store.schema_version() == 1  # opening reads; the first write connection upgrades the store
    versions = [r[0] for r in store.conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert store.schema_version() == SCHEMA_VERSION

    view = ll.get_run("legacy-exp/v1-run", store=store_path)
    assert view.status == "finished" and view.hypothesis == "written by schema v1"
    assert view.params == {"C": 1.0, "kernel": "rbf", "layers": [64, 32]}
    assert view.tags == {"team": "core"}
    loss = view.metric("loss")
    assert loss["step"].tolist() == list(range(101)) and math.isnan(loss["value"].iloc[-1])
    assert view.summary["acc"]["count"] == 100 and view.summary["loss"]["nan_count"] == 1
    assert view.fold_stats[("accuracy", "test")]["n"] == 3
    (art,) = view.artifacts
    with art.open("r") as fh:
        assert fh.read() == "a v1 model\n"
    assert view.datasets[0]["fingerprint"] == "abc123"
    failed = ll.get_run("legacy-exp/v1-failed", store=store_path)
    assert failed.status == "failed" and "RuntimeError: v1 failure" in failed.error

    # the upgraded store takes new runs next to the old ones, and the kinds of artifact added since
    config = tmp_path / "config.yaml"
    config.write_text("trainer:\n  max_epochs: 3\n")
    with ll.start_run("legacy-exp", store=store_path) as run:
        run.log_metric("loss", 0.1)
        run.log_artifact(config, kind="config")
    assert len(ll.runs("legacy-exp", store=store_path)) == 3
    assert [(a.name, a.kind) for a in ll.get_run(run.id, store=store_path).artifacts] == [
        ("config.yaml", "config")
    ]
    assert [a.name for a in ll.get_run("legacy-exp/v1-run", store=store_path).artifacts] == [art.name]
    # the rebuilt artifacts table still refuses writes to ended runs
    other = tmp_path / "late.txt"
    other.write_text("late")
    with pytest.raises(sqlite3.IntegrityError, match="read-only"), store.write() as conn:
        conn.execute(
            "INSERT INTO artifacts (run_id, name, kind, sha256, size, media_type, metadata, created_at) "
            "VALUES (?, 'late.txt', 'other', ?, 4, 'text/plain', '{}', 0)",
            (run.id, "0" * 64),
        )


def test_migrations_are_numbered_from_an_empty_file(tmp_path):
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 2
    store = Store(tmp_path / "fresh")
    cols = {r[1] for r in store.conn.execute("PRAGMA table_info(runs)")}
    assert {"lineage", "packages_sha", "reproduction_of"} <= cols
