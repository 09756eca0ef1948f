"""The built-in SQLite store plugin: serves store folders, keeps their artifact bytes, and
writes every event into the run's store.

It is registered through the same hooks as any third-party plugin (see
:data:`labledger.hooks.manager.DEFAULT_PLUGINS`): it answers ``labledger_open_store``
for folder paths and ``file:`` URIs and ``labledger_artifact_store`` for store
folders, ``trylast`` so a plugin can serve those too; its event hooks are
``tryfirst`` so the store has a batch before any other sink sees it. It cannot
be blocked on its own (:class:`labledger.errors.StorePluginDisabledError`)
unless another plugin serves the store.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from labledger.errors import RunFinishedError, StoreError, StoreWriteError
from labledger.hooks.manager import LabledgerWarning, hookimpl
from labledger.store import open_local
from labledger.store.blobs import BlobStore
from labledger.store.location import local_folder

if TYPE_CHECKING:
    from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord
    from labledger.store.sqlite import Store
    from labledger.tracking.run import Run

_Hook = TypeVar("_Hook", bound=Callable[..., None])
_failed: set[str] = set()
_failed_lock = threading.Lock()
_ended: set[str] = set()  # runs whose store said they had ended (reported once each)


class StoreWriteWarning(LabledgerWarning):
    """The store could not be written (disk full, read-only, file-size limit...); training went on."""


class RunEndedElsewhereWarning(LabledgerWarning):
    """The store holds the run as ended (by another process, or by hand): it takes no more records."""


def _reporting_store_errors(hook: _Hook) -> _Hook:
    """A store that cannot be written is reported once per store, by one warning naming it.

    The record is not lost: the transaction rolled back (the store stays
    consistent and readable) and the hook raises
    :class:`~labledger.errors.StoreWriteError`, so the run keeps the record and
    retries it, in order, until the store takes it. Logging goes on meanwhile:
    the training is not stopped. Once the store takes writes again, a later
    failure is reported again.
    """

    @functools.wraps(hook)
    def wrapper(run: Run, *args: Any, **kwargs: Any) -> None:
        try:
            hook(run, *args, **kwargs)
        except StoreWriteError:
            raise
        except RunFinishedError as e:  # the store will never take it: reported, and not retried
            _warn_ended(run, e)
            return
        except StoreError as e:
            _warn_once(run, e)
            raise StoreWriteError(e.path, e.problem) from e
        if _failed:
            with _failed_lock:
                _failed.discard(run.store.location)

    return wrapper  # type: ignore[return-value]


def _first(seen: set[str], key: str) -> bool:
    """Whether ``key`` is new to ``seen`` (which then holds it)."""
    with _failed_lock:
        new = key not in seen
        seen.add(key)
    return new


def _warn_once(run: Run, e: StoreError) -> None:
    if not _first(_failed, e.path):
        return
    message = (
        f"{e}. Training goes on: what run {run.id} logs is kept and written once the store "
        "takes writes again (run.flush() raises StoreWriteError until then); what was written "
        "before stays readable. Free space or fix the permissions (further write errors for "
        "this store are not reported again)."
    )
    _warn(message, StoreWriteWarning)


def _warn_ended(run: Run, e: RunFinishedError) -> None:
    if not _first(_ended, run.id):
        return
    message = (
        f"{e} The store {run.store.location} holds it as ended (by another process, or by hand) "
        "while this process still logs to it: nothing more it logs is stored (reported once per run)."
    )
    _warn(message, RunEndedElsewhereWarning)


def _warn(message: str, category: type[Warning]) -> None:
    try:
        warnings.warn(message, category, stacklevel=3)
    except Warning:  # warnings turned into errors: never let that reach training
        print(f"labledger: {message}", file=sys.stderr)


@hookimpl(trylast=True)
def labledger_open_store(uri: str) -> Store | None:
    folder = local_folder(uri)
    return None if folder is None else open_local(folder)


@hookimpl(trylast=True)
def labledger_artifact_store(uri: str) -> BlobStore | None:
    folder = local_folder(uri)
    return None if folder is None else BlobStore(folder / "artifacts")


#: Event hook -> the store write that records it: ``(method, arguments)`` of ``(run, event kwargs)``.
_STORE_CALLS: dict[str, Callable[[Run, dict[str, Any]], tuple[str, tuple[Any, ...]]]] = {
    "labledger_params_logged": lambda run, k: ("insert_params", (run.id, k["params"])),
    "labledger_folds_logged": lambda run, k: (
        "insert_folds",
        (run.id, k["key"], k["split"], k["values"], k["stats"]),
    ),
    "labledger_tags_set": lambda run, k: ("set_tags", (run.id, k["tags"], time.time())),
    "labledger_note_added": lambda run, k: ("add_note", (run.id, k["text"], k["timestamp"], run.author)),
    "labledger_artifact_logged": lambda run, k: ("insert_artifact", (run.id, k["artifact"])),
    "labledger_dataset_logged": lambda run, k: ("insert_dataset", (run.id, k["dataset"])),
    "labledger_lineage_recorded": lambda run, k: ("record_lineage", (run.id, k["lineage"], k["packages"])),
    "labledger_pipeline_logged": lambda run, k: ("insert_pipeline", (run.id, k["pipeline"])),
    "labledger_run_ended": lambda run, k: (
        "end_run",
        (run.id, k["status"], run.end_time or 0.0, k["error"]),
    ),
}


def store_call(hook: str, run: Run, kwargs: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The store write (method name and arguments) that records event ``hook`` of ``run``.

    The one mapping from events to store writes: the hooks below make these calls, and a run
    exiting while its store refuses writes keeps them in spill files for ``fsck --repair``.

    >>> store_call("labledger_params_logged", run, {"params": {"C": 1.0}})  # doctest: +SKIP
    ('insert_params', ('0123abcd', {'C': 1.0}))
    """
    return _STORE_CALLS[hook](run, kwargs)


def _write(run: Run, hook: str, **kwargs: Any) -> None:
    method, args = store_call(hook, run, kwargs)
    getattr(run.store, method)(*args)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_params_logged(run: Run, params: dict[str, Any]) -> None:
    _write(run, "labledger_params_logged", params=params)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_metrics_logged(run: Run, batch: MetricBatch) -> None:
    run.store.write_metrics(batch)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_folds_logged(
    run: Run, key: str, split: str, values: list[float], stats: dict[str, float | None]
) -> None:
    _write(run, "labledger_folds_logged", key=key, split=split, values=values, stats=stats)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_tags_set(run: Run, tags: dict[str, str]) -> None:
    _write(run, "labledger_tags_set", tags=tags)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_note_added(run: Run, text: str, timestamp: float) -> None:
    _write(run, "labledger_note_added", text=text, timestamp=timestamp)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_artifact_logged(run: Run, artifact: ArtifactRecord) -> None:
    _write(run, "labledger_artifact_logged", artifact=artifact)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_dataset_logged(run: Run, dataset: DatasetRecord) -> None:
    _write(run, "labledger_dataset_logged", dataset=dataset)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_lineage_recorded(run: Run, lineage: dict[str, Any], packages: dict[str, str] | None) -> None:
    _write(run, "labledger_lineage_recorded", lineage=lineage, packages=packages)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_pipeline_logged(run: Run, pipeline: PipelineRecord) -> None:
    _write(run, "labledger_pipeline_logged", pipeline=pipeline)


@hookimpl(tryfirst=True)
@_reporting_store_errors
def labledger_run_ended(run: Run, status: str, error: str | None) -> None:
    _write(run, "labledger_run_ended", status=status, error=error)
