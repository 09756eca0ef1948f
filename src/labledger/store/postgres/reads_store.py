"""Store-wide reads from PostgreSQL: artifacts by name or content, package sets, settings and
metric histories, in the shapes the SQLite store gives.

>>> from labledger.store.postgres import connect
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     setting(conn, "ui.theme")
'dark'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from labledger.store.postgres.metrics import read_chunks
from labledger.store.postgres.reads_base import fetch, first

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "artifact_by_content",
    "artifact_sha",
    "metric_chunks",
    "metric_sizes",
    "package_set",
    "setting",
    "settings",
]

_ARTIFACT_SHA = "SELECT sha256 FROM artifacts WHERE run_id = %s AND name = %s"
# identical bytes under several names: the given name first, then checkpoints, then the earliest
_BY_CONTENT = (
    "SELECT run_id, name FROM artifacts WHERE sha256 = %s "
    "ORDER BY name <> %s, kind <> 'checkpoint', created_at LIMIT 1"
)
_PACKAGE_SET = "SELECT packages FROM package_sets WHERE sha256 = %s"
_SETTING = "SELECT value FROM settings WHERE key = %s"
_SETTINGS = 'SELECT key, value FROM settings WHERE starts_with(key, %s) ORDER BY key COLLATE "C"'
_SIZES = (
    "SELECT k.name, sum(c.count) FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id "
    "WHERE c.run_id = %s{key} GROUP BY k.id, k.name ORDER BY k.name"
)


def artifact_sha(conn: psycopg.Connection[Any], run_id: str, name: str) -> str | None:
    """The SHA-256 of a run's artifact ``name``, or None.

    >>> artifact_sha(conn, "0123abcd", "model")  # doctest: +SKIP
    '8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4'
    """
    row = first(conn, _ARTIFACT_SHA, (run_id, name))
    return None if row is None else str(row[0])


def artifact_by_content(conn: psycopg.Connection[Any], sha256: str, name: str) -> tuple[str, str] | None:
    """``(run_id, artifact name)`` of stored bytes ``sha256``: name ``name`` first, then
    checkpoints, then the earliest; None when no artifact has these bytes.

    >>> artifact_by_content(conn, "8f4343…", "model")  # doctest: +SKIP
    ('0123abcd', 'model')
    """
    row = first(conn, _BY_CONTENT, (sha256, name))
    return None if row is None else (str(row[0]), str(row[1]))


def package_set(conn: psycopg.Connection[Any], sha256: str) -> str | None:
    """The JSON text of package set ``sha256`` (name → version), or None.

    >>> package_set(conn, "b91da6…")  # doctest: +SKIP
    '{"numpy": "2.1.0"}'
    """
    row = first(conn, _PACKAGE_SET, (sha256,))
    return None if row is None else str(row[0])


def setting(conn: psycopg.Connection[Any], key: str) -> str | None:
    """A store-wide setting, or None.

    >>> setting(conn, "ui.theme")  # doctest: +SKIP
    'dark'
    """
    row = first(conn, _SETTING, (key,))
    return None if row is None or row[0] is None else str(row[0])


def settings(conn: psycopg.Connection[Any], prefix: str) -> dict[str, str]:
    """The store-wide settings whose key starts with ``prefix``.

    >>> settings(conn, "ui.")  # doctest: +SKIP
    {'ui.theme': 'dark'}
    """
    return {str(k): str(v) for k, v in fetch(conn, _SETTINGS, (prefix,))}


def metric_sizes(conn: psycopg.Connection[Any], run_id: str, key: str | None = None) -> list[tuple[str, int]]:
    """``(key, points)`` of a run's metric histories (one key, or all by name).

    >>> metric_sizes(conn, "0123abcd")  # doctest: +SKIP
    [('acc', 4), ('loss', 9)]
    """
    if key is None:
        rows = fetch(conn, _SIZES.format(key=""), (run_id,))
    else:
        rows = fetch(conn, _SIZES.format(key=" AND k.name = %s"), (run_id, key))
    return [(str(name), int(points)) for name, points in rows]


def metric_chunks(
    conn: psycopg.Connection[Any], run_id: str, key: str | None = None
) -> Iterator[tuple[str, int, bytes]]:
    """``(key, points, chunk)`` of a run's histories, each key's chunks in logging order
    (:mod:`labledger.store.codec` encoding). Read in one transaction with :func:`metric_sizes`
    (a snapshot) when the two must agree.

    >>> [(k, n) for k, n, _ in metric_chunks(conn, "0123abcd", "loss")]  # doctest: +SKIP
    [('loss', 5), ('loss', 4)]
    """
    return read_chunks(conn, run_id, key)
