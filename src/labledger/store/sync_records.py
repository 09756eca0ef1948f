"""Copying one run's records from a store to another, each record once (see :mod:`labledger.store.sync`).

Every function reads what the target holds first and writes only what it lacks, so a second
copy (or one after an interrupted copy) writes nothing twice, whatever the target's own writes
would do with a repeat. Metric histories travel as batches of one key's stored chunk each, the
batch's sequence number the chunk's place in that key's history: a batch written before is one
the target skips.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord, Series

if TYPE_CHECKING:
    from labledger.store.backend import Backend

__all__ = [
    "copy_artifacts",
    "copy_datasets",
    "copy_folds",
    "copy_lineage",
    "copy_metrics",
    "copy_notes",
    "copy_params",
    "copy_pipelines",
    "copy_tags",
]


def _moment(t: Any) -> float:
    """A time as stores keep it (PostgreSQL: to the microsecond)."""
    return round(float(t), 6) if t is not None else 0.0


def copy_params(source: Backend, target: Backend, run_id: str) -> int:
    held = {key for _, key, _ in target.params_of([run_id])}
    missing = {key: json.loads(value) for _, key, value in source.params_of([run_id]) if key not in held}
    if missing:
        target.insert_params(run_id, missing)
    return len(missing)


def _held(times: dict[Any, list[float]], what: Any, when: Any) -> bool:
    """Whether ``what`` is held at ``when``, to the microsecond a store keeps (its rounding of the
    last digit may differ from Python's, so one microsecond either way is the same moment)."""
    t = _moment(when)
    return any(abs(t - h) <= 1.5e-6 for h in times.get(what, ()))


def copy_tags(source: Backend, target: Backend, run_id: str) -> int:
    """Tag changes in their order (the last one of a key is its value)."""
    held: dict[Any, list[float]] = {}
    for r in target.tag_history_rows(run_id):
        held.setdefault((r["key"], r["value"]), []).append(_moment(r["changed_at"]))
    written = 0
    for r in source.tag_history_rows(run_id):
        if not _held(held, (r["key"], r["value"]), r["changed_at"]):
            target.set_tags(run_id, {r["key"]: r["value"]}, float(r["changed_at"]))
            written += 1
    return written


def copy_notes(source: Backend, target: Backend, run_id: str) -> int:
    held: dict[Any, list[float]] = {}
    for r in target.note_rows(run_id):
        held.setdefault(r["text"], []).append(_moment(r["created_at"]))
    written = 0
    for r in source.note_rows(run_id):
        if not _held(held, r["text"], r["created_at"]):
            target.add_note(run_id, r["text"], float(r["created_at"]), r.get("author"))
            written += 1
    return written


def copy_folds(source: Backend, target: Backend, run_id: str) -> int:
    held = {(key, split) for _, key, split, *_ in target.fold_stats_of([run_id])}
    values: dict[tuple[str, str], list[float]] = {}
    for _, key, split, _, value in source.folds_of([run_id]):
        values.setdefault((key, split), []).append(float("nan") if value is None else float(value))
    written = 0
    for _, key, split, _, mean, std, low, high in source.fold_stats_of([run_id]):
        if (key, split) in held:
            continue
        stats = {"mean": mean, "std": std, "min": low, "max": high}
        target.insert_folds(run_id, key, split, values.get((key, split), []), stats)
        written += 1
    return written


def copy_datasets(source: Backend, target: Backend, run_id: str) -> int:
    held = {(name, role, fp) for _, name, role, fp, *_ in target.datasets_of([run_id])}
    written = 0
    for _, name, role, fingerprint, summary, created_at in source.datasets_of([run_id]):
        if (name, role, fingerprint) in held:
            continue
        record = DatasetRecord(name, role, fingerprint, json.loads(summary) if summary else {}, created_at)
        target.insert_dataset(run_id, record)
        written += 1
    return written


def copy_lineage(source: Backend, target: Backend, row: dict[str, Any], held: dict[str, Any] | None) -> int:
    """The run's lineage sections and package set (``held``: the target's run row)."""
    text = row.get("lineage")
    if not text:
        return 0
    lineage = json.loads(text)
    mine = json.loads(held["lineage"]) if held and held.get("lineage") else {}
    sha = row.get("packages_sha")
    if lineage == mine and (not sha or (held or {}).get("packages_sha") == sha):
        return 0
    packages = None
    if sha:
        found = source.package_set(sha)
        packages = json.loads(found) if found else None
        if packages is not None:
            lineage = {**lineage, "packages_sha256": sha}
    target.record_lineage(row["id"], lineage, packages)
    return 1


def copy_pipelines(source: Backend, target: Backend, run_id: str) -> int:
    held = {r["name"] for r in target.pipeline_rows(run_id)}
    written = 0
    for r in source.pipeline_rows(run_id):
        if r["name"] in held:
            continue
        structure = json.loads(r["structure"]) if r.get("structure") else {}
        target.insert_pipeline(
            run_id, PipelineRecord(r["name"], r["version"], structure, r["text"], r["created_at"])
        )
        written += 1
    return written


def copy_artifacts(source: Backend, target: Backend, run_id: str) -> tuple[int, int]:
    """Artifacts the target lacks, bytes first (each content once); ``(artifacts, bytes copied)``."""
    held = {r["name"] for r in target.artifact_rows(run_id)}
    count = copied = 0
    for r in source.artifact_rows(run_id):
        if r["name"] in held:
            continue
        sha = r["sha256"]
        if r.get("media_type") == "inode/directory":
            for _, file_sha, size in source.blobs.read_manifest(sha):
                target.blobs.put_file(source.blobs.path_for(file_sha))
                copied += size
            target.blobs.put_bytes(source.blobs.path_for(sha).read_bytes())
        else:
            target.blobs.put_file(source.blobs.path_for(sha))
            copied += int(r.get("size") or 0)
        metadata = json.loads(r["metadata"]) if r.get("metadata") else {}
        record = ArtifactRecord(
            name=r["name"],
            kind=r["kind"],
            sha256=sha,
            size=int(r.get("size") or 0),
            media_type=r.get("media_type") or "application/octet-stream",
            metadata=metadata,
            local_path="",
            created_at=float(r["created_at"]),
        )
        target.insert_artifact(run_id, record)
        count += 1
    return count, copied


def copy_metrics(source: Backend, target: Backend, run_id: str) -> int:
    """Metric chunks the target lacks, each as a one-key batch; returns the points written."""
    from labledger.store.codec import decode_chunk_lists

    with source.snapshot():
        chunks = list(source.metric_chunks(run_id))
    held = dict(target.metric_sizes(run_id))
    by_key: dict[str, list[tuple[int, bytes]]] = {}
    for key, points, data in chunks:
        by_key.setdefault(key, []).append((int(points), data))
    written = 0
    for key, parts in by_key.items():
        have = int(held.get(key, 0))
        covered = 0
        for seq, (points, data) in enumerate(parts):
            if covered + points <= have:
                covered += points
                continue  # stored by an earlier copy
            cols = decode_chunk_lists(data)
            series = Series(cols["step"], cols["epoch"], cols["timestamp"], cols["value"])
            target.write_metrics(MetricBatch(run_id, seq, {key: series}))
            covered += points
            written += points
    return written
