"""A run's lineage and package set in a PostgreSQL database, written as the SQLite store writes them.

Lineage sections are merged into the run's lineage as SQLite's ``json_patch`` merges them (a JSON
merge patch, RFC 7396: objects merged key by key, a ``null`` removing its key), and the result is
kept as the same compact JSON text; a package set is stored once per SHA-256 digest.

>>> merge_patch({"git": {"commit": "a1", "dirty": True}}, {"git": {"dirty": None}, "host": "gpu-3"})
{'git': {'commit': 'a1'}, 'host': 'gpu-3'}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from labledger.store.postgres.writes_common import refusing
from labledger.store.writes import dumps

if TYPE_CHECKING:
    import psycopg

__all__ = ["merge_patch", "record_lineage"]

_ADD_PACKAGE_SET = (
    "INSERT INTO package_sets (sha256, packages, created_at) VALUES (%s, %s, now()) "
    "ON CONFLICT (sha256) DO NOTHING"
)
_SET_PACKAGES = "UPDATE runs SET packages_sha = %s WHERE id = %s"
_LOCK_LINEAGE = "SELECT lineage FROM runs WHERE id = %s FOR NO KEY UPDATE"
_SET_LINEAGE = "UPDATE runs SET lineage = %s WHERE id = %s"


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with JSON merge patch ``patch`` applied (RFC 7396); neither is changed.

    Keys keep their order, new keys follow in the patch's order, as SQLite's ``json_patch`` keeps them.

    >>> merge_patch({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}, "a": None})
    {'b': {'c': 2, 'd': 3}}
    """
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def record_lineage(
    conn: psycopg.Connection[Any], run_id: str, lineage: dict[str, Any], packages: dict[str, str] | None
) -> None:
    """Merge lineage sections into the run's lineage; with ``packages``, store the package set once
    under ``lineage["packages_sha256"]`` and point the run at it.

    Lineage may be recorded after the run has ended (the start-up capture of a short run). Values
    JSON cannot hold are stored as their text; NaN raises ``ValueError`` and nothing is stored.

    >>> lineage = {"git": {"commit": "a1b2c3"}, "packages_sha256": sha}  # doctest: +SKIP
    >>> record_lineage(conn, run_id, lineage, {"numpy": "2.1.0"})  # doctest: +SKIP
    """
    sha = lineage.get("packages_sha256") if packages is not None else None
    patch = json.loads(json.dumps(lineage, allow_nan=False, default=str))
    with refusing(conn, run_id, "record lineage"), conn.transaction():
        if sha is not None:
            conn.execute(_ADD_PACKAGE_SET, (sha, dumps(packages)))
            conn.execute(_SET_PACKAGES, (sha, run_id))
        row = conn.execute(_LOCK_LINEAGE, (run_id,)).fetchone()
        if row is None:
            return  # no such run: nothing to merge into, as in the SQLite store
        merged = merge_patch(json.loads(row[0]) if row[0] is not None else {}, patch)
        conn.execute(_SET_LINEAGE, (json.dumps(merged, allow_nan=False, separators=(",", ":")), run_id))
