"""Migration 3 of the PostgreSQL schema (see :mod:`labledger.store.postgres.schema`): notes are the
one record an ended run still takes (findings written after it ended), each with its author.
Released SQL never changes.
"""

from __future__ import annotations

__all__ = ["V3"]

V3 = """
DROP TRIGGER notes_run_open_insert ON notes;
DROP TRIGGER notes_run_open_update ON notes;
ALTER TABLE notes ADD COLUMN author text;
"""
