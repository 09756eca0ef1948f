"""Experiments, runs and settings in a PostgreSQL database, written as the SQLite store writes them.

Times travel as epoch seconds and are stored as ``timestamptz`` (to the microsecond); the
times the SQLite store takes from the clock of the writing process (an experiment's creation,
a heartbeat, a setting's change) are the database's ``now()`` here, as for metric batches.
Each function is one transaction.

>>> from labledger.store.postgres import connect
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     exp = ensure_experiment(conn, "digits")
...     insert_run(conn, {"id": "0123abcd", "experiment_id": exp, "name": "svm", ...})
'svm'
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from labledger.errors import StoreError
from labledger.store.postgres.connection import describe
from labledger.store.postgres.writes_common import refusing

if TYPE_CHECKING:
    import psycopg

__all__ = ["end_run", "ensure_experiment", "heartbeat", "insert_run", "reap_crashed", "set_setting"]

#: How many names :func:`insert_run` tries (``name``, ``name-2`` ... ``name-9999``).
_NAME_ATTEMPTS = 10_000

_EXPERIMENT_ID = "SELECT id FROM experiments WHERE name = %s"
_ADD_EXPERIMENT = "INSERT INTO experiments (name, description) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING"
_INSERT_RUN = (
    "INSERT INTO runs (id, experiment_id, name, parent_id, status, kind, start_time, heartbeat, author, "
    "hypothesis, host, pid, source, environment, reproduction_of, pid_start, pid_ns, boot_id) VALUES "
    "(%(id)s, %(experiment_id)s, %(name)s, %(parent_id)s, 'running', %(kind)s, to_timestamp(%(start_time)s), "
    "to_timestamp(%(start_time)s), %(author)s, %(hypothesis)s, %(host)s, %(pid)s, %(source)s, "
    "%(environment)s, %(reproduction_of)s, %(pid_start)s, %(pid_ns)s, %(boot_id)s) "
    "ON CONFLICT (experiment_id, name) DO NOTHING"
)
_END_RUN = (
    "UPDATE runs SET status = %s, end_time = to_timestamp(%s), heartbeat = to_timestamp(%s), error = %s "
    "WHERE id = %s AND status IN ('running', 'crashed')"
)
_HEARTBEAT = (
    "UPDATE runs SET heartbeat = now(), status = CASE WHEN status = 'crashed' THEN 'running' "
    "ELSE status END WHERE id = %s"
)
_RUNNING = (
    "SELECT id, host, pid, extract(epoch FROM heartbeat)::float8, pid_start, pid_ns, boot_id, heartbeat "
    "FROM runs WHERE status = 'running' ORDER BY id"
)
# a run whose heartbeat moved since it was read is alive after all
_MARK_CRASHED = (
    "UPDATE runs SET status = 'crashed', end_time = coalesce(end_time, heartbeat) "
    "WHERE id = %s AND status = 'running' AND heartbeat = %s"
)
_SET_SETTING = (
    "INSERT INTO settings (key, value, updated_at) VALUES (%s, %s, now()) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


def ensure_experiment(conn: psycopg.Connection[Any], name: str, description: str | None = None) -> int:
    """The id of experiment ``name``, created (with ``description``) when missing.

    An experiment that exists keeps its description; writers creating the same experiment
    at once get the same id.

    >>> ensure_experiment(conn, "digits", "handwritten digits")  # doctest: +SKIP
    1
    """
    with refusing(conn, None, f"create experiment {name!r}"):
        row = conn.execute(_EXPERIMENT_ID, (name,)).fetchone()
        if row is None:
            with conn.transaction():
                conn.execute(_ADD_EXPERIMENT, (name, description))
                row = conn.execute(_EXPERIMENT_ID, (name,)).fetchone()
    if row is None:  # cannot happen: inserted here, or by another writer meanwhile
        raise StoreError(describe(conn), f"experiment {name!r} was not created")
    return int(row[0])


def insert_run(conn: psycopg.Connection[Any], row: dict[str, Any]) -> str:
    """Create a running run from ``row`` (the columns :meth:`labledger.store.backend.Backend.insert_run`
    takes, ``start_time`` in epoch seconds); returns the name used.

    A name taken in the experiment gets a ``-2``, ``-3`` ... suffix. When the run's process is
    this one, its identity (:func:`labledger.store.liveness.process_identity`) is recorded too,
    as the SQLite store records it, and the runs found crashed meanwhile are recorded so in the same
    transaction (:func:`reap_crashed`). An id taken already raises :class:`~labledger.errors.StoreError`.

    >>> insert_run(conn, {**row, "name": "svm"}), insert_run(conn, {**row, "id": other, "name": "svm"})
    ... # doctest: +SKIP
    ('svm', 'svm-2')
    """
    from labledger.store.liveness import process_identity

    identity = process_identity() if row.get("pid") == os.getpid() else {}
    values = {"pid_start": None, "pid_ns": None, "boot_id": None, **identity, **row}
    base = str(row["name"])
    with refusing(conn, None, f"create run {row['id']}"), conn.transaction():
        for attempt in range(1, _NAME_ATTEMPTS):
            name = base if attempt == 1 else f"{base}-{attempt}"
            if conn.execute(_INSERT_RUN, {**values, "name": name}).rowcount == 1:
                _mark_crashed(conn, None)
                return name
    raise StoreError(describe(conn), f"no free run name for {base!r}")


def end_run(
    conn: psycopg.Connection[Any], run_id: str, status: str, end_time: float, error: str | None
) -> None:
    """Give a running (or crashed) run its final ``status``, ``end_time`` (epoch seconds) and ``error``.

    A run that has ended keeps its status: ending it again changes nothing, as in the SQLite store.

    >>> end_run(conn, run_id, "finished", time.time(), None)  # doctest: +SKIP
    """
    with refusing(conn, run_id, "end"), conn.transaction():
        conn.execute(_END_RUN, (status, end_time, end_time, error, run_id))


def heartbeat(conn: psycopg.Connection[Any], run_id: str) -> None:
    """Mark a run alive now; a run recorded as crashed whose process still writes runs again.

    An ended run keeps its status (only its heartbeat moves).

    >>> heartbeat(conn, run_id)  # doctest: +SKIP
    """
    with refusing(conn, run_id, "renew the heartbeat"), conn.transaction():
        conn.execute(_HEARTBEAT, (run_id,))


def set_setting(conn: psycopg.Connection[Any], key: str, value: str) -> None:
    """Store a store-wide setting (e.g. a metric's direction), replacing its value.

    >>> set_setting(conn, "metric/loss/direction", "min")  # doctest: +SKIP
    """
    with refusing(conn, None, f"store setting {key!r}"), conn.transaction():
        conn.execute(_SET_SETTING, (key, value))


def _mark_crashed(conn: psycopg.Connection[Any], stale_after: float | None) -> int:
    """Record as ``crashed`` the running runs :func:`labledger.store.liveness.crashed` judges so."""
    from labledger.store.liveness import crashed

    rows = conn.execute(_RUNNING).fetchall()
    dead = [(r[0], r[7]) for r in rows if crashed(r[1], r[2], r[3], r[4], r[5], r[6], stale=stale_after)]
    if dead:
        with conn.cursor() as cur:
            cur.executemany(_MARK_CRASHED, dead)
    return len(dead)


def reap_crashed(conn: psycopg.Connection[Any], stale_after: float | None = None) -> int:
    """Record as ``crashed`` the running runs whose process is gone; returns how many were found.

    A run is judged as the SQLite store judges it (:func:`labledger.store.liveness.crashed`): by its
    process when it ran on this machine, else by a heartbeat older than ``stale_after`` seconds
    (default ``LABLEDGER_HEARTBEAT_TIMEOUT``). :func:`insert_run` does it too; a crashed run whose
    process still writes is revived by :func:`heartbeat`.

    >>> reap_crashed(conn, stale_after=300)  # doctest: +SKIP
    2
    """
    with refusing(conn, None, "record crashed runs"), conn.transaction():
        return _mark_crashed(conn, stale_after)
