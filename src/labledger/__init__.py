"""labledger: experiment tracking for machine learning.

>>> import labledger as ll
>>> with ll.start_run("digits-svm", hypothesis="RBF beats linear") as run:  # doctest: +SKIP
...     run.log_params({"C": 1.0, "kernel": "rbf"})
...     run.log_metrics({"train/loss": 0.3, "val/acc": 0.9}, step=0, epoch=0)
>>> ll.runs("digits-svm")  # doctest: +SKIP

Importing labledger is light: pandas, NumPy and ML frameworks load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from labledger import errors, plugins
    from labledger.analysis.compare import compare
    from labledger.analysis.journal import journal
    from labledger.analysis.leaderboard import leaderboard
    from labledger.lineage.fingerprint import fingerprint
    from labledger.lineage.reproduce import diff_runs, reproduction_plan, verify
    from labledger.lineage.seeds import seed_everything
    from labledger.online.abtest import Moments
    from labledger.online.interleaving import interleave
    from labledger.online.start import start_online
    from labledger.plugins import hookimpl
    from labledger.predictions.read import get_predictions
    from labledger.query.aggregation import metric_direction
    from labledger.query.runs import ArtifactView, RunView, experiments, get_run, runs
    from labledger.records import ArtifactRecord, DatasetRecord, Fingerprint, MetricBatch, PipelineRecord
    from labledger.store import Store, open_store
    from labledger.store.schema import ARTIFACT_KINDS, RUN_STATUSES
    from labledger.tracking.notes import add_note
    from labledger.tracking.run import NoActiveRunError, Run
    from labledger.tracking.start import active_run, start_run

__version__ = "0.1.0"

__all__ = [
    "ARTIFACT_KINDS",
    "RUN_STATUSES",
    "ArtifactRecord",
    "ArtifactView",
    "DatasetRecord",
    "Fingerprint",
    "MetricBatch",
    "Moments",
    "NoActiveRunError",
    "PipelineRecord",
    "Run",
    "RunView",
    "Store",
    "__version__",
    "active_run",
    "add_note",
    "compare",
    "diff_runs",
    "errors",
    "experiments",
    "fingerprint",
    "get_predictions",
    "get_run",
    "hookimpl",
    "interleave",
    "journal",
    "leaderboard",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "metric_direction",
    "note",
    "open_store",
    "plugins",
    "reproduction_plan",
    "runs",
    "seed_everything",
    "set_tags",
    "start_online",
    "start_run",
    "verify",
]


#: Where each public name is defined: imported on first use (PEP 562), so ``import labledger``
#: loads neither the store nor the plugin machinery, and a name costs only what it needs.
_LAZY: dict[str, str] = {
    "ARTIFACT_KINDS": "labledger.store.schema",
    "RUN_STATUSES": "labledger.store.schema",
    "ArtifactRecord": "labledger.records",
    "ArtifactView": "labledger.query.artifacts",
    "DatasetRecord": "labledger.records",
    "Fingerprint": "labledger.records",
    "MetricBatch": "labledger.records",
    "Moments": "labledger.online.abtest",
    "NoActiveRunError": "labledger.tracking.run",
    "PipelineRecord": "labledger.records",
    "Run": "labledger.tracking.run",
    "RunView": "labledger.query.run_view",
    "Store": "labledger.store.sqlite",
    "active_run": "labledger.tracking.start",
    "add_note": "labledger.tracking.notes",
    "compare": "labledger.analysis.compare",
    "diff_runs": "labledger.lineage.reproduce",
    "experiments": "labledger.query.runs",
    "fingerprint": "labledger.lineage.fingerprint",
    "get_predictions": "labledger.predictions.read",
    "get_run": "labledger.query.runs",
    "interleave": "labledger.online.interleaving",
    "journal": "labledger.analysis.journal",
    "hookimpl": "labledger.hooks.manager",
    "leaderboard": "labledger.analysis.leaderboard",
    "metric_direction": "labledger.query.aggregation",
    "open_store": "labledger.store",
    "reproduction_plan": "labledger.lineage.reproduce",
    "runs": "labledger.query.runs",
    "seed_everything": "labledger.lineage.seeds",
    "start_online": "labledger.online.start",
    "start_run": "labledger.tracking.start",
    "verify": "labledger.lineage.reproduce",
}
_SUBMODULES = ("errors", "plugins")


def __getattr__(name: str) -> object:
    from importlib import import_module

    if name in _SUBMODULES:
        return import_module(f"labledger.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'labledger' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


_active_run: Callable[[], Run | None] | None = None


def _active(action: str) -> Run:
    global _active_run
    if _active_run is None:
        from labledger.tracking.lifecycle import active_run

        _active_run = active_run
    run = _active_run()
    if run is None:
        from labledger.tracking.run import NoActiveRunError

        raise NoActiveRunError(action)
    return run


def log_param(key: str, value: Any) -> None:
    """Log a param to the active run. ``ll.log_param("seed", 42)``"""
    _active("log a param").log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log params to the active run. ``ll.log_params({"C": 1.0})``"""
    _active("log params").log_params(params)


def log_metric(key: str, value: Any, step: int | None = None, epoch: int | None = None) -> None:
    """Log a metric to the active run. ``ll.log_metric("val/acc", 0.9, step=3)``"""
    _active("log a metric").log_metric(key, value, step=step, epoch=epoch)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None, epoch: int | None = None) -> None:
    """Log metrics to the active run. ``ll.log_metrics({"loss": 0.2}, step=3)``"""
    _active("log metrics").log_metrics(metrics, step=step, epoch=epoch)


def log_artifact(
    path: str, kind: str = "other", name: str | None = None, metadata: Mapping[str, Any] | None = None
) -> ArtifactRecord:
    """Log a file or directory to the active run. ``ll.log_artifact("model.pt", kind="model")``"""
    return _active("log an artifact").log_artifact(path, kind=kind, name=name, metadata=metadata)


def log_dataset(
    name: str, data: Any = None, *, role: str = "train", fingerprint: str | None = None, **summary: Any
) -> str:
    """Record a dataset on the active run. ``ll.log_dataset("digits", fingerprint="ab12")``"""
    return _active("log a dataset").log_dataset(name, data, role=role, fingerprint=fingerprint, **summary)


def set_tags(tags: Mapping[str, str]) -> None:
    """Set tags on the active run. ``ll.set_tags({"team": "vision"})``"""
    _active("set tags").set_tags(tags)


def note(text: str) -> None:
    """Add a note to the active run. ``ll.note("plateaus after epoch 6")``"""
    _active("add a note").note(text)
