"""Run methods about lineage and completeness: seeds, the start-up capture, the end-of-run report.

Mixed into :class:`labledger.Run`.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.hooks import manager as plugins
from labledger.tracking import validate as _validate

if TYPE_CHECKING:
    from labledger.store import Store


class LineageMixin:
    """Lineage sections (code, seeds, packages) and the completeness report of a run."""

    experiment: str
    name: str
    hypothesis: str | None
    store: Store
    lineage: dict[str, Any]
    source: dict[str, Any]
    _lock: threading.Lock
    _params: dict[str, str]
    _datasets: list[dict[str, Any]]
    _pipelines: list[dict[str, Any]]
    _metric_keys: set[str]
    _folds: dict[tuple[str, str], list[float]]
    _assets: list[tuple[str, dict[str, Any]]]
    _notes: int

    def _notify(self, hook: str, **kwargs: Any) -> None:  # provided by Run
        raise NotImplementedError

    def completeness(self) -> Any:
        """The :class:`labledger.lineage.completeness.CompletenessReport` of what was logged so far."""
        from labledger.lineage import completeness

        return completeness.assess(
            params={k: json.loads(v) for k, v in self._params.items()},
            datasets=self._datasets,
            pipelines=self._pipelines,
            metric_keys=sorted(self._metric_keys),
            fold_keys=sorted({k for k, _ in self._folds}),
            artifacts=[{"kind": k, "metadata": m} for k, m in self._assets],
            seeds=self.lineage.get("seeds"),
            hypothesis=self.hypothesis,
            notes=self._notes,
            origin=self.source.get("origin"),
        )

    def _completeness_at_end(self) -> LabledgerError | None:
        from labledger.lineage import completeness

        report = self.completeness()
        if completeness.policy() == "strict" and "dataset version" in report.missing:
            return completeness.CompletenessError(
                f"run {self.experiment}/{self.name} has no dataset version; the strict completeness "
                "policy records it as failed. Call run.log_dataset(name, data) before it ends."
            )
        if report.missing:
            plugins.warn_once(
                ("completeness-end", str(self.store.path), self.experiment, tuple(report.missing)),
                completeness.missing_message(self.experiment, self.name, report),
                completeness.CompletenessWarning,
            )
        return None

    def _finish_lineage(self) -> None:
        """Record the seeds that can be observed now (the start-up capture finishes on its own)."""
        from labledger.lineage.seeds import observed_seeds

        observed = observed_seeds()
        if observed:
            self._record_lineage({"seeds": {"observed": observed}})

    def _record_lineage(self, sections: dict[str, Any], packages: dict[str, str] | None = None) -> None:
        """Merge lineage sections in memory and hand them to the sinks."""
        clean = _validate.json_value("lineage", sections)
        with self._lock:
            _merge(self.lineage, clean)
        self._notify("labledger_lineage_recorded", lineage=clean, packages=packages)


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)
