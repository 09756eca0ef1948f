"""The write half of the PostgreSQL store: the :class:`labledger.store.backend.Backend` writes as
functions of a psycopg connection, storing what the SQLite store stores for the same calls.

Each function is one transaction (a savepoint inside a transaction of the caller's) and is
idempotent as the SQLite store's write is: a record sent again after a failure is stored once.
Metric batches are written by :func:`labledger.store.postgres.metrics.write_batch`.

======================  ============================================================
experiments, runs       :mod:`labledger.store.postgres.writes_runs`
a run's records         :mod:`labledger.store.postgres.writes_records`
lineage, package sets   :mod:`labledger.store.postgres.writes_lineage`
errors, open-run check  :mod:`labledger.store.postgres.writes_common`
======================  ============================================================

>>> from labledger.store.postgres import connect, upgrade
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     upgrade(conn)
...     exp = ensure_experiment(conn, "digits")
...     name = insert_run(conn, {"id": run_id, "experiment_id": exp, "name": "svm", ...})
...     insert_params(conn, run_id, {"C": 1.0})
...     end_run(conn, run_id, "finished", time.time(), None)
"""

from __future__ import annotations

from labledger.store.postgres.writes_lineage import merge_patch, record_lineage
from labledger.store.postgres.writes_records import (
    add_note,
    insert_artifact,
    insert_dataset,
    insert_folds,
    insert_params,
    insert_pipeline,
    set_tags,
)
from labledger.store.postgres.writes_runs import (
    end_run,
    ensure_experiment,
    heartbeat,
    insert_run,
    reap_crashed,
    set_setting,
)

__all__ = [
    "add_note",
    "end_run",
    "ensure_experiment",
    "heartbeat",
    "insert_artifact",
    "insert_dataset",
    "insert_folds",
    "insert_params",
    "insert_pipeline",
    "insert_run",
    "merge_patch",
    "reap_crashed",
    "record_lineage",
    "set_setting",
    "set_tags",
]
