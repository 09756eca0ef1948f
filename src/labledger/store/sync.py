"""Copy runs from one store to another: a laptop's SQLite store to the team's server, a server's
runs into a local store, one database into another.

:func:`sync` copies every run (or one experiment's) with all its records: the run itself
(status, times, error), params, tags with their history, notes, folds, datasets, lineage and
package set, pipelines, artifacts and their bytes, metric histories. It works between any two
:class:`~labledger.store.backend.Backend` stores, and copies each record once: syncing again,
or after an interrupted sync, duplicates nothing. A running run is copied as it is and
finished by a later sync; a run whose end was copied is only checked for new tag changes.

>>> from labledger.store import open_store
>>> report = sync(open_store("./.labledger"), open_store("https://ledger.example.com"))  # doctest: +SKIP
>>> print(report.render())  # doctest: +SKIP
3 runs copied, 1 updated, 0 unchanged; 12,000 metric points, 41 records, 2 artifacts (1,258,291 bytes)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from labledger.errors import StoreError
from labledger.store.sync_records import (
    copy_artifacts,
    copy_datasets,
    copy_folds,
    copy_lineage,
    copy_metrics,
    copy_notes,
    copy_params,
    copy_pipelines,
    copy_tags,
)

if TYPE_CHECKING:
    from labledger.store.backend import Backend

__all__ = ["RUN_COLUMNS", "SyncConflictError", "SyncReport", "sync"]

#: Statuses a run keeps for good.
FINAL = ("finished", "failed", "killed")
#: Seconds :func:`sync` waits for a server target to take what it spooled.
SEND_TIMEOUT = 600.0
#: The columns of a run's row copied as they are (status, end and error follow its records).
RUN_COLUMNS = (
    "id", "name", "parent_id", "kind", "start_time", "author", "hypothesis", "host", "pid",
    "source", "environment", "reproduction_of", "pid_start", "pid_ns", "boot_id",
)  # fmt: skip


class SyncConflictError(StoreError):
    """A run id the target holds already belongs to another experiment there; the run is not copied."""

    def __init__(self, target: str, run_id: str, ours: str, theirs: str) -> None:
        self.run_id = run_id
        super().__init__(
            target,
            f"run {run_id} is in experiment {theirs!r} there, not {ours!r}: it was not copied. "
            "Two stores gave the same id to different runs; copy that run by hand, or not at all",
        )


@dataclass
class SyncReport:
    """What :func:`sync` did: runs copied (new in the target), updated (new records), unchanged,
    ended there; records, metric points, artifacts and artifact bytes written; conflicts."""

    runs_copied: int = 0
    runs_updated: int = 0
    runs_unchanged: int = 0
    runs_ended: int = 0
    points: int = 0
    records: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    conflicts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        """One line of counts (and one per conflict)."""
        lines = [
            f"{self.runs_copied} runs copied, {self.runs_updated} updated, {self.runs_unchanged} unchanged "
            f"({self.runs_ended} ended); {self.points:,} metric points, {self.records:,} records, "
            f"{self.artifacts} artifacts ({self.artifact_bytes:,} bytes)"
        ]
        lines += [f"conflict: {c}" for c in self.conflicts]
        return "\n".join(lines)


def _in_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parents before their children, else by start time."""
    by_id = {r["id"]: r for r in rows}
    done: set[str] = set()
    out: list[dict[str, Any]] = []

    def visit(row: dict[str, Any], depth: int = 0) -> None:
        if row["id"] in done or depth > 1000:
            return
        parent = by_id.get(row.get("parent_id") or "")
        if parent is not None:
            visit(parent, depth + 1)
        done.add(row["id"])
        out.append(row)

    for row in sorted(rows, key=lambda r: (r.get("start_time") or 0.0, r["id"])):
        visit(row)
    return out


def _source_rows(source: Backend, experiment: str | None) -> list[dict[str, Any]]:
    if experiment is None:
        ids = source.run_ids()
    else:
        from labledger.store.backend import RunSelection

        ids = [r["id"] for r in source.select_runs(RunSelection(experiment=experiment))]
    rows = [source.run_row(run_id) for run_id in ids]
    return [r for r in rows if r is not None]


def sync(
    source: Backend,
    target: Backend,
    experiment: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> SyncReport:
    """Copy ``source``'s runs (``experiment``'s only, when given) into ``target``, each record once.

    :param progress: called as ``progress(done, total, run_id)`` after each run.
    :returns: what was copied.
    :raises StoreError: a store cannot be read or written (what was copied before stays; run
        the sync again to finish it).

    >>> report = sync(open_store("./.labledger"), open_store("postgresql://db/ledger"))  # doctest: +SKIP
    >>> report.runs_copied  # doctest: +SKIP
    3
    """
    report = SyncReport()
    rows = _in_order(_source_rows(source, experiment))
    descriptions = {e["name"]: e.get("description") for e in source.experiment_rows()}
    experiment_ids: dict[str, int] = {}
    for done, row in enumerate(rows, 1):
        _sync_run(source, target, row, descriptions, experiment_ids, report)
        if progress is not None:
            progress(done, len(rows), row["id"])
    wait_sent = getattr(target, "wait_sent", None)
    if callable(wait_sent) and not wait_sent(SEND_TIMEOUT):
        raise StoreError(target.location, "the server stopped taking records: run the sync again later")
    return report


def _sync_run(
    source: Backend,
    target: Backend,
    row: dict[str, Any],
    descriptions: dict[str, str | None],
    experiment_ids: dict[str, int],
    report: SyncReport,
) -> None:
    run_id, name = row["id"], row["experiment"]
    held = target.run_row(run_id)
    if held is not None and held.get("experiment") != name:
        report.conflicts.append(
            str(SyncConflictError(target.location, run_id, name, str(held.get("experiment"))))
        )
        return
    status = row.get("status")
    if held is not None and held.get("status") in FINAL and held.get("status") == status:
        tags = copy_tags(source, target, run_id)  # tags change after the end too
        report.records += tags
        if tags:
            report.runs_updated += 1
        else:
            report.runs_unchanged += 1
        return
    if held is None:
        if name not in experiment_ids:
            experiment_ids[name] = target.ensure_experiment(name, descriptions.get(name))
        values = {column: row.get(column) for column in RUN_COLUMNS}
        target.insert_run({**values, "experiment_id": experiment_ids[name]})
    records = copy_params(source, target, run_id)
    records += copy_tags(source, target, run_id)
    records += copy_notes(source, target, run_id)
    records += copy_folds(source, target, run_id)
    records += copy_datasets(source, target, run_id)
    records += copy_lineage(source, target, row, held)
    records += copy_pipelines(source, target, run_id)
    artifacts, copied = copy_artifacts(source, target, run_id)
    points = copy_metrics(source, target, run_id)
    ended = 0
    if status in (*FINAL, "crashed") and (held is None or held.get("status") != status):
        end_time = row.get("end_time") or row.get("heartbeat") or row.get("start_time") or 0.0
        target.end_run(run_id, str(status), float(end_time), row.get("error"))
        ended = 1
    report.records += records
    report.points += points
    report.artifacts += artifacts
    report.artifact_bytes += copied
    report.runs_ended += ended
    if held is None:
        report.runs_copied += 1
    elif records or points or artifacts or ended:
        report.runs_updated += 1
    else:
        report.runs_unchanged += 1
