"""What the write functions of the PostgreSQL store share: the open-run check and the errors.

A write names the run it is for; :func:`refusing` turns what the database answers into the
errors labledger raises elsewhere: a write to an ended run (the database's ``LL001``, or
:func:`check_open`) is a :class:`~labledger.errors.RunFinishedError`, a change of a final status
(``LL003``) too, a missing run a :class:`~labledger.errors.RunNotFoundError`, anything else a
:class:`~labledger.errors.StoreError` naming the database.

>>> from labledger.store.postgres import connect
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     with refusing(conn, "0123abcd", "add a note"), conn.transaction():
...         check_open(conn, "0123abcd", "add a note")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError, RunFinishedError, RunNotFoundError, StoreError
from labledger.store.postgres.connection import describe, one_line
from labledger.store.postgres.v1 import FINAL_STATUS_SQLSTATE, RUN_ENDED_SQLSTATE

if TYPE_CHECKING:
    import psycopg

__all__ = ["OPEN_STATUSES", "check_open", "nan_as_null", "refusing"]

#: The statuses of a run that still takes writes.
OPEN_STATUSES = ("running", "crashed")
#: PostgreSQL's ``foreign_key_violation``: the run a record names does not exist.
_MISSING_RUN_SQLSTATE = "23503"

_LOCK_RUN = "SELECT status FROM runs WHERE id = %s FOR NO KEY UPDATE"
_STATUS = "SELECT status FROM runs WHERE id = %s"


def nan_as_null(value: float | None) -> float | None:
    """``value`` unchanged, with NaN as ``None`` (SQLite stores a NaN as NULL; PostgreSQL would keep it).

    >>> nan_as_null(float("nan")) is None, nan_as_null(0.5)
    (True, 0.5)
    """
    return None if value is None or value != value else value


def check_open(conn: psycopg.Connection[Any], run_id: str, action: str) -> None:
    """Lock run ``run_id``'s row until the transaction ends; raise when the run cannot take writes.

    Raises :class:`~labledger.errors.RunNotFoundError` when there is no such run and
    :class:`~labledger.errors.RunFinishedError` when it has ended (``action`` says what was refused).
    Writers of one run queue on its row, so a run cannot end between this check and the write.

    >>> with conn.transaction():  # doctest: +SKIP
    ...     check_open(conn, run_id, "log params")
    """
    row = conn.execute(_LOCK_RUN, (run_id,)).fetchone()
    if row is None:
        raise RunNotFoundError(run_id)
    if row[0] not in OPEN_STATUSES:
        raise RunFinishedError(run_id, str(row[0]), action)


def _status(conn: psycopg.Connection[Any], run_id: str) -> str:
    """The run's status as it reads now ("ended" when it cannot be read)."""
    import psycopg

    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return "ended"  # inside a failed transaction of the caller's: nothing can be read
    try:
        row = conn.execute(_STATUS, (run_id,)).fetchone()
    except psycopg.Error:
        return "ended"
    return "ended" if row is None else str(row[0])


@contextmanager
def refusing(conn: psycopg.Connection[Any], run_id: str | None, action: str) -> Iterator[None]:
    """Raise the database's errors inside the block as labledger's (see the module's docstring).

    ``run_id`` is the run written (``None`` for store-wide records), ``action`` what is done,
    as in "cannot *record lineage* of run ...". Open the transaction inside the block, so it
    has rolled back when the error is raised.

    >>> with refusing(conn, run_id, "add a note"), conn.transaction():  # doctest: +SKIP
    ...     conn.execute("INSERT INTO notes (run_id, created_at, text) VALUES (%s, now(), %s)", (run_id, "x"))
    """
    import psycopg

    try:
        yield
    except LabledgerError:
        raise
    except psycopg.Error as e:
        state = e.sqlstate
        if run_id is not None and state in (RUN_ENDED_SQLSTATE, FINAL_STATUS_SQLSTATE):
            raise RunFinishedError(run_id, _status(conn, run_id), action) from e
        if run_id is not None and state == _MISSING_RUN_SQLSTATE:
            raise RunNotFoundError(run_id) from e
        what = f"{action} of run {run_id}" if run_id is not None else action
        raise StoreError(describe(conn), f"cannot {what}: {one_line(e)}") from e
