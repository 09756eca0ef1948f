"""The built-in sink: writes every event to the run's store.

It is registered through the same hooks as any third-party plugin (see
:data:`labledger.plugins.DEFAULT_PLUGINS`), ``tryfirst`` so the store has a
batch before any other sink sees it.
"""

from __future__ import annotations

import functools
import sys
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from labledger.errors import StoreError
from labledger.plugins import LabledgerWarning, hookimpl

if TYPE_CHECKING:
    from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord
    from labledger.run import Run

_Hook = TypeVar("_Hook", bound=Callable[..., None])
_failed: set[str] = set()
_failed_lock = threading.Lock()


class StoreWriteWarning(LabledgerWarning):
    """The store could not be written (disk full, read-only, file-size limit...); training went on."""


def _reporting_store_errors(hook: _Hook) -> _Hook:
    """A store that cannot be written is reported once per store, by one warning naming it.

    The hook's record is lost (the transaction rolled back: the store stays
    consistent and readable); logging goes on, so the training is not stopped.
    """

    @functools.wraps(hook)
    def wrapper(run: Run, *args: Any, **kwargs: Any) -> None:
        try:
            hook(run, *args, **kwargs)
        except StoreError as e:
            run.plugin_errors.append(e)
            with _failed_lock:
                first = e.path not in _failed
                _failed.add(e.path)
            if not first:
                return
            message = (
                f"{e}. Training goes on, but what run {run.id} logs is lost for as long as the "
                "store cannot be written; what was written before stays readable. Free space or fix "
                "the permissions (further write errors for this store are not reported again)."
            )
            try:
                warnings.warn(message, StoreWriteWarning, stacklevel=2)
            except Warning:  # warnings turned into errors: never let that reach training
                print(f"labledger: {message}", file=sys.stderr)

    return wrapper  # type: ignore[return-value]


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_params_logged(run: Run, params: dict[str, Any]) -> None:
    run.store.insert_params(run.id, params)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_metrics_logged(run: Run, batch: MetricBatch) -> None:
    run.store.write_metrics(batch)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_folds_logged(
    run: Run, key: str, split: str, values: list[float], stats: dict[str, float | None]
) -> None:
    run.store.insert_folds(run.id, key, split, values, stats)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_tags_set(run: Run, tags: dict[str, str]) -> None:
    import time

    run.store.set_tags(run.id, tags, time.time())


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_note_added(run: Run, text: str, timestamp: float) -> None:
    run.store.add_note(run.id, text, timestamp)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_artifact_logged(run: Run, artifact: ArtifactRecord) -> None:
    run.store.insert_artifact(run.id, artifact)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_dataset_logged(run: Run, dataset: DatasetRecord) -> None:
    run.store.insert_dataset(run.id, dataset)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_lineage_recorded(run: Run, lineage: dict[str, Any], packages: dict[str, str] | None) -> None:
    run.store.record_lineage(run.id, lineage, packages)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_pipeline_logged(run: Run, pipeline: PipelineRecord) -> None:
    run.store.insert_pipeline(run.id, pipeline)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_run_ended(run: Run, status: str, error: str | None) -> None:
    run.store.end_run(run.id, status, run.end_time or 0.0, error)
