"""The run endpoint's data: everything a run page shows, from one :class:`~labledger.query.run_view.RunView`.

>>> import labledger as ll
>>> run_detail(ll.get_run("digits/swift-otter-3"))["overview"]["status"]  # doctest: +SKIP
'finished'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labledger.query.damage import DamagedValue
from labledger.ui.encoding import iso
from labledger.ui.listing import error_summary
from labledger.ui.online_section import online_section
from labledger.ui.prediction_section import prediction_section

if TYPE_CHECKING:
    from labledger.query.run_view import RunView

__all__ = ["artifact_list", "run_detail"]


def _overview(run: RunView) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "experiment": run.experiment,
        "status": run.status,
        "kind": run.kind,
        "start_time": iso(run.start_time),
        "end_time": iso(run.end_time),
        "heartbeat": iso(run.heartbeat),
        "duration": run.duration,
        "author": run.author,
        "host": run.host,
        "pid": run.pid,
        "hypothesis": run.hypothesis,
        "notes": [{**n, "created_at": iso(n.get("created_at"))} for n in run.notes],
        "error": run.error,
        "error_summary": error_summary(run.error) if run.status != "finished" else None,
        "parent_id": run.parent_id,
        "children": [{"id": c.id, "name": c.name, "status": c.status} for c in run.children],
        "reproduction_of": run.reproduction_of,
    }


def _metrics(run: RunView) -> dict[str, dict[str, Any]]:
    return {key: {**s, "last_time": iso(s.get("last_time"))} for key, s in run.summary.items()}


def _folds(run: RunView) -> list[dict[str, Any]]:
    """Per ``(key, split)``: the statistics and the fold values in fold order (None: a failed fold)."""
    values: dict[tuple[str, str], list[float | None]] = {}
    for _, key, split, _fold, value in run.store.folds_of([run.id]):
        values.setdefault((key, split), []).append(value)
    return [
        {"key": key, "split": split, **stats, "values": values.get((key, split), [])}
        for (key, split), stats in run.fold_stats.items()
    ]


def artifact_list(run: RunView) -> list[dict[str, Any]]:
    """The run's artifacts: name, kind, size, media type, metadata, sha256, created_at, is_dir."""
    return [
        {
            "name": a.name,
            "kind": a.kind,
            "size": a.size,
            "media_type": a.media_type,
            "metadata": a.metadata,
            "sha256": a.sha256,
            "created_at": iso(a.created_at),
            "is_dir": a.is_dir,
        }
        for a in run.artifacts
    ]


def _lineage(run: RunView) -> dict[str, Any]:
    return {
        "code": run.lineage,
        "source": run.source,
        "environment": run.environment,
        "packages": run.packages,
        "datasets": [{**d, "created_at": iso(d.get("created_at"))} for d in run.datasets],
        "pipelines": run.pipelines,
        "model_type": run.model_type,
    }


def run_detail(run: RunView, *, analyses: bool = True) -> dict[str, Any]:
    """Overview, params, tags, metric summaries, folds, artifacts, lineage and completeness of a run,
    for an online run its report (``online``, see :func:`~labledger.ui.online_section.online_section`),
    and for a run that logged predictions their error analysis (``predictions``, see
    :func:`~labledger.ui.prediction_section.prediction_section`). ``analyses=False`` leaves those
    two out (a live page's poll every second needs neither).

    Damaged values read as ``"<damaged: ...>"`` text and the fields are listed under ``damaged``.
    """
    params = {k: str(v) if isinstance(v, DamagedValue) else v for k, v in run.params.items()}
    data = {
        "overview": _overview(run),
        "params": params,
        "tags": run.tags,
        "metrics": _metrics(run),
        "folds": _folds(run),
        "artifacts": artifact_list(run),
        "lineage": _lineage(run),
        "completeness": run.completeness.to_dict(),
    }
    if analyses and run.kind == "online":
        data["online"] = online_section(run)
    predictions = prediction_section(run) if analyses else None
    if predictions is not None:
        data["predictions"] = predictions
    data["damaged"] = dict(run.damaged)
    return data
