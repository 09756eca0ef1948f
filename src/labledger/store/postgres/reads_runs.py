"""Reading runs and experiments from PostgreSQL, in the rows the SQLite store gives.

A run's row holds every column of ``runs`` (times in epoch seconds) and ``experiment``, its
experiment's name, as :meth:`labledger.store.backend.Backend.run_row` promises.

>>> from labledger.store.postgres import connect
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     run_row(conn, "0123abcd")["experiment"]
'digits'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labledger.store.postgres.reads_base import dicts, epoch, fetch, first

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "RUN_SELECT",
    "child_rows",
    "experiment_rows",
    "latest_reproduction",
    "run_ids",
    "run_row",
    "run_row_by_name",
    "run_rows_by_prefix",
    "runs_version",
]

_RUN_COLUMNS = (
    "r.id, r.experiment_id, r.name, r.parent_id, r.status, r.kind, "
    f"{epoch('r.start_time', 'start_time')}, {epoch('r.end_time', 'end_time')}, "
    f"{epoch('r.heartbeat', 'heartbeat')}, r.author, r.hypothesis, r.host, r.pid, r.source, "
    "r.environment, r.error, r.lineage, r.packages_sha, r.reproduction_of, r.pid_start, r.pid_ns, r.boot_id"
)
#: A run's row with its experiment's name (the columns in the SQLite store's order).
RUN_SELECT = (
    f"SELECT {_RUN_COLUMNS}, e.name AS experiment FROM runs r JOIN experiments e ON e.id = r.experiment_id"
)
_BY_ID = RUN_SELECT + " WHERE r.id = %s"
_BY_NAME = RUN_SELECT + " WHERE e.name = %s AND r.name = %s"
_BY_PREFIX = RUN_SELECT + ' WHERE starts_with(r.id, %s) ORDER BY r.id COLLATE "C" LIMIT %s'
_CHILDREN = RUN_SELECT + ' WHERE r.parent_id = %s ORDER BY r.id COLLATE "C"'
_EXPERIMENTS = (
    f"SELECT e.name, e.description, {epoch('e.created_at', 'created_at')}, count(r.id) AS runs, "
    "sum((r.status = 'running')::int) AS running, "
    f"{epoch('max(r.start_time)', 'last_run')} "
    'FROM experiments e LEFT JOIN runs r ON r.experiment_id = e.id GROUP BY e.id ORDER BY e.name COLLATE "C"'
)
_RUN_IDS = 'SELECT id FROM runs ORDER BY id COLLATE "C"'
# runs are never deleted: their number grows with each one added
_RUNS_VERSION = "SELECT count(*) FROM runs"
_REPRODUCTION = (
    "SELECT id FROM runs WHERE reproduction_of = %s AND start_time >= to_timestamp(%s) "
    "ORDER BY start_time DESC LIMIT 1"
)


def run_row(conn: psycopg.Connection[Any], run_id: str) -> dict[str, Any] | None:
    """A run's row (its columns and ``experiment``), or None.

    >>> run_row(conn, "0123abcd")["status"]  # doctest: +SKIP
    'finished'
    """
    rows = dicts(conn, _BY_ID, (run_id,))
    return rows[0] if rows else None


def run_row_by_name(conn: psycopg.Connection[Any], experiment: str, name: str) -> dict[str, Any] | None:
    """The row of run ``name`` in ``experiment``, or None.

    >>> run_row_by_name(conn, "digits", "baseline")["id"]  # doctest: +SKIP
    '0123abcd'
    """
    rows = dicts(conn, _BY_NAME, (experiment, name))
    return rows[0] if rows else None


def run_rows_by_prefix(conn: psycopg.Connection[Any], prefix: str, limit: int) -> list[dict[str, Any]]:
    """Rows of the runs whose id starts with ``prefix``, by id, at most ``limit``.

    >>> [r["id"] for r in run_rows_by_prefix(conn, "01", 2)]  # doctest: +SKIP
    ['0123abcd', '01ff0042']
    """
    return dicts(conn, _BY_PREFIX, (prefix, limit))


def child_rows(conn: psycopg.Connection[Any], run_id: str) -> list[dict[str, Any]]:
    """Rows of a run's children, by id.

    >>> [r["name"] for r in child_rows(conn, "0123abcd")]  # doctest: +SKIP
    ['fold-0', 'fold-1']
    """
    return dicts(conn, _CHILDREN, (run_id,))


def experiment_rows(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Experiments by name: name, description, created_at, runs, running (None without runs), last_run.

    >>> [(e["name"], e["runs"]) for e in experiment_rows(conn)]  # doctest: +SKIP
    [('digits', 3)]
    """
    return dicts(conn, _EXPERIMENTS)


def run_ids(conn: psycopg.Connection[Any]) -> list[str]:
    """Every run id, sorted.

    >>> run_ids(conn)  # doctest: +SKIP
    ['0123abcd', '01ff0042']
    """
    return [str(r[0]) for r in fetch(conn, _RUN_IDS)]


def runs_version(conn: psycopg.Connection[Any]) -> int:
    """A number that changes whenever a run is added: the number of runs (runs are never deleted).

    >>> runs_version(conn)  # doctest: +SKIP
    2
    """
    row = first(conn, _RUNS_VERSION)
    return int(row[0]) if row else 0


def latest_reproduction(conn: psycopg.Connection[Any], run_id: str, since: float) -> str | None:
    """The newest run started since ``since`` (epoch seconds) that reproduces ``run_id``, or None.

    >>> latest_reproduction(conn, "0123abcd", 0.0)  # doctest: +SKIP
    '01ff0042'
    """
    row = first(conn, _REPRODUCTION, (run_id, since))
    return None if row is None else str(row[0])
