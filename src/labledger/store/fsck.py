"""Checking a whole store: :func:`fsck`.

What it checks, reading through a read-only connection (so it works on a
store on read-only media, and beside running writers):

- the database file (``PRAGMA integrity_check``);
- every row holding JSON (params, run source/environment/lineage, artifact
  metadata, dataset summaries, pipeline structures, package sets), every
  artifact's SHA-256 digest, and every metric chunk's encoding;
- every blob under ``artifacts/``: its content against its name, blobs no row
  references (orphans), and blobs a row references but that are missing;
- leftover temporary files: ``artifacts/.incoming-*`` and half-built copies in
  ``cache/dirs``, once older than a minute or when their writer's pid is gone;
- records (metric batches, params, notes, the run's end...) a process kept in spill files
  while the store refused writes (a full disk) and could not write before it exited
  (:mod:`labledger.store.spill`).

``repair=True`` removes orphaned blobs and leftover temporary files, and writes
the spilled records into the store (each once, in order, a run's end last). What it
cannot repair (a damaged database, changed or missing blobs, damaged rows)
stays in the report with what to do about it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labledger.errors import StoreError
from labledger.store import Store, open_store
from labledger.store.integrity import BlobProblem, hash_file, is_sha256, parse_manifest

__all__ = ["FsckReport", "Problem", "fsck"]

#: Temporary files and orphans younger than this may belong to a writer at work: left alone.
GRACE_SECONDS = 60.0

#: Rows holding JSON: (table, column, how a row is named in the report).
_JSON_COLUMNS = (
    ("params", "value", "run_id, key"),
    ("runs", "source", "id"),
    ("runs", "environment", "id"),
    ("runs", "lineage", "id"),
    ("artifacts", "metadata", "run_id, name"),
    ("datasets", "summary", "run_id, name"),
    ("pipelines", "structure", "run_id, name"),
    ("package_sets", "packages", "sha256"),
)

_ADVICE = {
    "database": "restore the store from a backup (`sqlite3 labledger.db .recover` may rescue what it holds)",
    "damaged row": "the rest of the run stays readable; restore the store from a backup to recover it",
    "damaged chunk": "that metric's history is unreadable; restore the store from a backup to recover it",
    "changed blob": "restore the artifacts folder from a backup, or log the artifact again in a new run",
    "missing blob": "restore the artifacts folder from a backup, or log the artifact again in a new run",
    "orphaned blob": "no run references it: `labledger fsck --repair` removes it",
    "leftover temporary file": "left by a writer that stopped: `labledger fsck --repair` removes it",
    "unwritten record": "`labledger fsck --repair` writes it into the store",
    "damaged spill file": "its points cannot be read back; remove the file",
}


@dataclass
class Problem:
    """One thing :func:`fsck` found wrong.

    :ivar kind: ``database``, ``damaged row``, ``damaged chunk``, ``changed blob``,
        ``missing blob``, ``orphaned blob``, ``leftover temporary file``,
        ``unwritten record`` or ``damaged spill file``.
    :ivar where: the file, or the row (``table.column`` and its key).
    :ivar detail: what is wrong.
    :ivar repairable: whether ``repair=True`` fixes it; ``repaired``: whether it did.
    """

    kind: str
    where: str
    detail: str
    repairable: bool = False
    repaired: bool = False

    @property
    def advice(self) -> str:
        return _ADVICE.get(self.kind, "")


@dataclass
class FsckReport:
    """What :func:`fsck` checked and found. ``ok`` when nothing remains to be fixed."""

    store: str
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def remaining(self) -> list[Problem]:
        return [p for p in self.problems if not p.repaired]

    @property
    def ok(self) -> bool:
        return not self.remaining

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "ok": self.ok,
            "checked": self.checked,
            "problems": [{**asdict(p), "advice": p.advice} for p in self.problems],
        }

    def render(self) -> str:
        """The text ``labledger fsck`` prints."""
        c = self.checked
        lines = [
            f"store       {self.store}",
            f"checked     database, {c.get('rows', 0)} rows, {c.get('chunks', 0)} metric chunks, "
            f"{c.get('blobs', 0)} blobs ({c.get('blob_bytes', 0):,} bytes), "
            f"{c.get('temporary', 0)} temporary files, {c.get('spills', 0)} spill files",
        ]
        if not self.problems:
            lines.append("no problems found")
            return "\n".join(lines)
        fixed = len(self.problems) - len(self.remaining)
        lines.append(
            f"problems    {len(self.problems)} found, {fixed} repaired, {len(self.remaining)} remaining"
        )
        for p in self.problems:
            state = "repaired" if p.repaired else ("repairable" if p.repairable else "cannot repair")
            lines.append(f"  {p.kind}: {p.where}: {p.detail} [{state}]")
            if not p.repaired and p.advice:
                lines.append(f"      {p.advice}")
        return "\n".join(lines)


def fsck(store: str | os.PathLike[str] | Store | None = None, *, repair: bool = False) -> FsckReport:
    """Check a store's database, rows, blobs and temporary files; optionally repair what can be.

    :param store: store folder (default ``$LABLEDGER_STORE`` or ``./.labledger``).
    :param repair: remove orphaned blobs and leftover temporary files; write spilled records
        into the store.
    :raises StoreError: there is no store there, or its database cannot be opened at all.

    >>> report = fsck("/tmp/ledger")          # doctest: +SKIP
    >>> report.ok, [p.kind for p in report.problems]  # doctest: +SKIP
    (True, [])
    """
    st = open_store(store, create=False)
    if st.schema_version() == 0:
        raise StoreError(str(st.path), "holds no labledger store (no database); nothing to check")
    report = FsckReport(str(st.path))
    conn = st.read_conn
    _check_database(conn, report)
    _check_rows(conn, report)
    referenced = _referenced(conn, st)
    _check_blobs(st, referenced, report, repair)
    _check_temporary(st, report, repair)
    _check_spills(st, report, repair)
    return report


def _check_database(conn: sqlite3.Connection, report: FsckReport) -> None:
    try:
        found = [r[0] for r in conn.execute("PRAGMA main.integrity_check")]
    except sqlite3.DatabaseError as e:
        found = [str(e)]
    if found != ["ok"]:
        detail = "; ".join(found[:5]) + (f" (+{len(found) - 5} more)" if len(found) > 5 else "")
        report.problems.append(Problem("database", "labledger.db", f"integrity check: {detail}"))


def _rows(conn: sqlite3.Connection, sql: str) -> Iterator[tuple[Any, ...]]:
    try:
        yield from conn.execute(sql)
    except sqlite3.DatabaseError as e:
        raise StoreError("labledger.db", f"cannot be read ({e}); restore it from a backup") from e


def _check_rows(conn: sqlite3.Connection, report: FsckReport) -> None:
    from labledger.store.codec import DamagedChunkError, split_chunk

    rows = 0
    for table, column, key in _JSON_COLUMNS:
        for *ident, text in _rows(conn, f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL"):
            rows += 1
            try:
                json.loads(text)
            except (TypeError, ValueError) as e:
                where = f"{table}.{column} ({', '.join(map(str, ident))})"
                report.problems.append(Problem("damaged row", where, f"invalid JSON ({e})"))
    for run_id, name, sha in _rows(conn, "SELECT run_id, name, sha256 FROM artifacts"):
        if not is_sha256(sha):
            where = f"artifacts.sha256 ({run_id}, {name})"
            report.problems.append(Problem("damaged row", where, f"{sha!r} is not a SHA-256 hex digest"))
    chunks = 0
    sql = (
        "SELECT c.run_id, k.name, c.seq, c.count, c.data FROM metric_chunks c "
        "LEFT JOIN metric_keys k ON k.id = c.key_id"
    )
    for run_id, key, seq, count, data in _rows(conn, sql):
        chunks += 1
        try:  # either version of the encoding, checked down to its compressed streams
            points = split_chunk(bytes(data)).points
            if points != count:
                raise DamagedChunkError(
                    f"damaged metric chunk (it holds {points} points, its row says {count})"
                )
        except (DamagedChunkError, TypeError) as e:
            where = f"metric_chunks ({run_id}, {key!r}, batch {seq})"
            report.problems.append(Problem("damaged chunk", where, str(e)))
    report.checked.update(rows=rows, chunks=chunks)


def _referenced(conn: sqlite3.Connection, st: Store) -> dict[str, list[str]]:
    """Blob digest -> who uses it (artifacts, and the files of directory artifacts)."""
    used: dict[str, list[str]] = {}
    sql = "SELECT run_id, name, sha256, media_type FROM artifacts"
    for run_id, name, sha, media_type in _rows(conn, sql):
        if not is_sha256(sha):
            continue
        who = f"artifact {name!r} of run {run_id}"
        used.setdefault(sha, []).append(who)
        if media_type == "inode/directory":
            path = st.blobs.path_for(sha)
            try:
                files = parse_manifest(path.read_bytes(), path)
            except (OSError, BlobProblem):
                continue  # reported with the blob itself
            for rel, file_sha, _size in files:
                used.setdefault(file_sha, []).append(f"{who} ({rel})")
    return used


def _blobs(root: Path) -> Iterator[tuple[str, Path]]:
    try:
        folders = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return
    for folder in folders:
        if len(folder.name) != 2 or not folder.is_dir(follow_symlinks=False):
            continue
        for entry in sorted(os.scandir(folder.path), key=lambda e: e.name):
            sha = folder.name + entry.name
            if is_sha256(sha) and entry.is_file(follow_symlinks=False):
                yield sha, Path(entry.path)


def _check_blobs(st: Store, referenced: dict[str, list[str]], report: FsckReport, repair: bool) -> None:
    root = st.blobs.root
    now = time.time()
    count = size = 0
    on_disk: set[str] = set()
    orphans: list[tuple[str, Path, Problem]] = []
    for sha, path in _blobs(root):
        on_disk.add(sha)
        count += 1
        rel = str(path.relative_to(st.path))
        try:
            found, n = hash_file(path)
        except OSError as e:
            report.problems.append(Problem("changed blob", rel, f"cannot be read ({e.strerror or e})"))
            continue
        size += n
        users = referenced.get(sha)
        if found != sha:
            whose = f"; used by {', '.join(users[:3])}" if users else ""
            report.problems.append(Problem("changed blob", rel, f"its content hashes to {found[:12]}{whose}"))
        elif users is None and now - path.stat().st_mtime > GRACE_SECONDS:
            problem = Problem("orphaned blob", rel, f"{n:,} bytes no run references", repairable=True)
            report.problems.append(problem)
            orphans.append((sha, path, problem))
    if repair and orphans:
        still_used = _referenced(st.read_conn, st)  # a writer may have referenced one meanwhile
        for sha, path, problem in orphans:
            if sha not in still_used:
                problem.repaired = _unlink(path)
    for sha in sorted(set(referenced) - on_disk):
        rel = str(st.blobs.path_for(sha).relative_to(st.path))
        report.problems.append(Problem("missing blob", rel, f"used by {', '.join(referenced[sha][:3])}"))
    report.checked.update(blobs=count, blob_bytes=size)


def _writer_gone(name: str, prefix: str) -> bool:
    """Whether a temporary file's name says its writer was a process of this host that is gone."""
    from labledger.store import blobs

    pid, _, rest = name[len(prefix) :].partition("-")
    host = rest.partition("-")[0]
    if not pid.isdigit() or host != getattr(blobs, "_HOST", socket.gethostname()):
        return False
    from labledger.store.liveness import pid_alive

    return not pid_alive(int(pid))


def _check_temporary(st: Store, report: FsckReport, repair: bool) -> None:
    now = time.time()
    count = 0
    places = [(st.blobs.root, ".incoming-"), (st.path / "cache" / "dirs", ".")]
    for folder, prefix in places:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            count += 1
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            gone = prefix == ".incoming-" and _writer_gone(entry.name, prefix)
            if age <= GRACE_SECONDS and not gone:
                continue  # a writer may be at work on it
            why = "its writer is gone" if gone else f"unchanged for {age:.0f} s"
            problem = Problem(
                "leftover temporary file", str(Path(entry.path).relative_to(st.path)), why, repairable=True
            )
            report.problems.append(problem)
            if repair:
                problem.repaired = _unlink(Path(entry.path))
    report.checked["temporary"] = count


def _unlink(path: Path) -> bool:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError:
        return False
    return True


def _check_spills(st: Store, report: FsckReport, repair: bool) -> None:
    """Spill files of runs whose process is gone; with ``repair``, what they hold goes into the store."""
    from labledger.errors import RunFinishedError
    from labledger.store.liveness import crashed_ids
    from labledger.store.spill import import_spill, leftover_spills

    conn = st.read_conn
    runs = {r[0]: r[1] for r in _rows(conn, "SELECT id, status FROM runs")}
    alive = {i for i, status in runs.items() if status == "running"} - set(crashed_ids(conn))
    count = 0
    for path, run_id, seq in leftover_spills(st.path, set(runs)):
        count += 1
        if run_id in alive:
            continue  # its process is at work: it writes the batch itself once the store takes it
        what = f"record {seq}" if path.suffix == ".call" else f"metric batch {seq}"
        detail = f"{what} of run {run_id}, spilled while the store refused writes"
        problem = Problem("unwritten record", str(path), detail, repairable=True)
        report.problems.append(problem)
        if not repair:
            continue
        try:
            points = import_spill(st, path, run_id, seq)
        except ValueError as e:
            problem.kind, problem.detail, problem.repairable = "damaged spill file", str(e), False
        except (RunFinishedError, StoreError) as e:
            problem.detail += f"; not written: {e}"
        else:
            problem.repaired = True
            problem.detail += f"; {points:,} points written" if points else "; written"
    report.checked["spills"] = count
