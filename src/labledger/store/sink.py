"""The built-in sink: writes every event to the run's store.

It is registered through the same hooks as any third-party plugin (see
:data:`labledger.plugins.DEFAULT_PLUGINS`), ``tryfirst`` so the store has a
batch before any other sink sees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labledger.plugins import hookimpl

if TYPE_CHECKING:
    from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord
    from labledger.run import Run


@hookimpl(tryfirst=True)
def labledger_params_logged(run: Run, params: dict[str, Any]) -> None:
    run.store.insert_params(run.id, params)


@hookimpl(tryfirst=True)
def labledger_metrics_logged(run: Run, batch: MetricBatch) -> None:
    run.store.write_metrics(batch)


@hookimpl(tryfirst=True)
def labledger_folds_logged(
    run: Run, key: str, split: str, values: list[float], stats: dict[str, float | None]
) -> None:
    run.store.insert_folds(run.id, key, split, values, stats)


@hookimpl(tryfirst=True)
def labledger_tags_set(run: Run, tags: dict[str, str]) -> None:
    import time

    run.store.set_tags(run.id, tags, time.time())


@hookimpl(tryfirst=True)
def labledger_note_added(run: Run, text: str, timestamp: float) -> None:
    run.store.add_note(run.id, text, timestamp)


@hookimpl(tryfirst=True)
def labledger_artifact_logged(run: Run, artifact: ArtifactRecord) -> None:
    run.store.insert_artifact(run.id, artifact)


@hookimpl(tryfirst=True)
def labledger_dataset_logged(run: Run, dataset: DatasetRecord) -> None:
    run.store.insert_dataset(run.id, dataset)


@hookimpl(tryfirst=True)
def labledger_lineage_recorded(run: Run, lineage: dict[str, Any], packages: dict[str, str] | None) -> None:
    run.store.record_lineage(run.id, lineage, packages)


@hookimpl(tryfirst=True)
def labledger_pipeline_logged(run: Run, pipeline: PipelineRecord) -> None:
    run.store.insert_pipeline(run.id, pipeline)


@hookimpl(tryfirst=True)
def labledger_run_ended(run: Run, status: str, error: str | None) -> None:
    run.store.end_run(run.id, status, run.end_time or 0.0, error)
