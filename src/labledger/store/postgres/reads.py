"""Reading the records of a PostgreSQL store: the reads of :class:`labledger.store.backend.Backend`
as functions of a psycopg connection, giving the rows the SQLite store gives (same keys and
columns, JSON fields as text, times in epoch seconds, text ordered by code point).

Not here: ``select_runs`` and ``field_values``, which need the filter language in PostgreSQL.

>>> from labledger.store.postgres import connect
>>> from labledger.store.postgres import reads
>>> with connect("postgresql://postgres@127.0.0.1:5432/ledger") as conn:  # doctest: +SKIP
...     [r["name"] for r in reads.child_rows(conn, reads.run_ids(conn)[0])]
['fold-0', 'fold-1']
"""

from __future__ import annotations

from labledger.store.postgres.reads_records import (
    artifact_rows,
    datasets_of,
    fold_stats_of,
    folds_of,
    keys_of,
    note_rows,
    params_of,
    pipeline_rows,
    summaries_of,
    tag_history_rows,
    tags_of,
)
from labledger.store.postgres.reads_runs import (
    RUN_SELECT,
    child_rows,
    experiment_rows,
    latest_reproduction,
    run_ids,
    run_row,
    run_row_by_name,
    run_rows_by_prefix,
    runs_version,
)
from labledger.store.postgres.reads_store import (
    artifact_by_content,
    artifact_sha,
    metric_chunks,
    metric_sizes,
    package_set,
    setting,
    settings,
)

__all__ = [
    "RUN_SELECT",
    "artifact_by_content",
    "artifact_rows",
    "artifact_sha",
    "child_rows",
    "datasets_of",
    "experiment_rows",
    "fold_stats_of",
    "folds_of",
    "keys_of",
    "latest_reproduction",
    "metric_chunks",
    "metric_sizes",
    "note_rows",
    "package_set",
    "params_of",
    "pipeline_rows",
    "run_ids",
    "run_row",
    "run_row_by_name",
    "run_rows_by_prefix",
    "runs_version",
    "setting",
    "settings",
    "summaries_of",
    "tag_history_rows",
    "tags_of",
]
