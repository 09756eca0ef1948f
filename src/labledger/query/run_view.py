"""One stored run as read back: :class:`RunView` (returned by :func:`labledger.get_run`).

Attributes load on first access. A field that cannot be read (a damaged row)
does not stop the others: a param's value reads as
:class:`labledger.query.damage.DamagedValue`, a whole JSON field (source,
environment, lineage, an artifact's metadata, a dataset summary...) as an
empty dict, a :class:`labledger.query.damage.DamagedRecordWarning` names the run
and field, and :attr:`RunView.damaged` lists what was found so far.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, overload

from labledger.errors import InvalidValueError
from labledger.query import damage as _damage
from labledger.query.artifacts import ArtifactView
from labledger.store.integrity import is_sha256

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from labledger.store.backend import Backend

__all__ = ["RunView"]


#: A metric summary's fields, as :meth:`labledger.store.backend.Backend.summaries_of` gives them.
_SUMMARY = ("last", "min", "max", "count", "nan_count", "last_step", "last_time")
#: The order :attr:`RunView.summary` gives them in.
_SUMMARY_ORDER = ("count", "nan_count", "last", "last_step", "last_time", "min", "max")


def _sql_order(value: Any) -> tuple[int, Any]:
    """Sorts like the store does: numbers, then text, then bytes (a damaged key never stops a read)."""
    if isinstance(value, int | float):
        return 0, value
    return (1, value) if isinstance(value, str) else (2, bytes(value) if isinstance(value, bytes) else b"")


def _by(rows: list[tuple[Any, ...]], *columns: int) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda r: tuple(_sql_order(r[c]) for c in columns))


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


class RunView:
    """A read-only view of a stored run; attributes load on first access.

    >>> import labledger as ll
    >>> run = ll.get_run("0192f3")               # doctest: +SKIP
    >>> run.status, run.params["C"], run.summary["val/acc"]["last"]  # doctest: +SKIP
    """

    def __init__(self, store: Backend, row: Any) -> None:
        self.store = store
        self._row = dict(row)
        self.id: str = self._row["id"]
        self.name: str = self._row["name"]
        self.experiment: str = self._row["experiment"]
        self.status: str = self._row["status"]
        self.parent_id: str | None = self._row["parent_id"]
        self.kind: str = self._row["kind"]
        self.start_time: float = self._row["start_time"]
        self.end_time: float | None = self._row["end_time"]
        self.heartbeat: float = self._row["heartbeat"]
        self.author: str | None = self._row["author"]
        self.hypothesis: str | None = self._row["hypothesis"]
        self.host: str | None = self._row["host"]
        self.pid: int | None = self._row["pid"]
        self.error: str | None = self._row["error"]
        self.reproduction_of: str | None = self._row.get("reproduction_of")
        self.packages_sha: str | None = self._row.get("packages_sha")
        #: field -> what is wrong with it, for the damaged fields read so far
        self.damaged: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<RunView {self.experiment}/{self.name} {self.id[:12]} {self.status}>"

    def _json(self, text: Any, field: str, default: Any = None) -> Any:
        value = _damage.loads(text, self.id, field, default)
        if value is default and default is not None and text is not None:
            self.damaged[field] = "invalid JSON"
        elif isinstance(value, _damage.DamagedValue):
            self.damaged[field] = value.problem
        return value

    def _object(self, text: str | None, field: str) -> dict[str, Any]:
        """A JSON object field; ``{}`` when absent or damaged."""
        if text is None:
            return {}
        value = self._json(text, field, default={})
        if not isinstance(value, dict):
            self.damaged[field] = "not a JSON object"
            _damage.report(self.id, field, "not a JSON object")
            return {}
        return value

    @cached_property
    def source(self) -> dict[str, Any]:
        """Entry script, argv and working directory of the run's process."""
        return self._object(self._row.get("source"), "source")

    @cached_property
    def environment(self) -> dict[str, Any]:
        """Interpreter, platform, CPU/GPU and relevant environment variables."""
        return self._object(self._row.get("environment"), "environment")

    @property
    def duration(self) -> float:
        """Seconds from start to end (to now for a running run)."""
        return (self.end_time or time.time()) - self.start_time

    @cached_property
    def params(self) -> dict[str, Any]:
        rows = _by(self.store.params_of([self.id]), 1)
        return {key: self._json(value, f"params[{key!r}]") for _, key, value in rows}

    @cached_property
    def tags(self) -> dict[str, str]:
        return {key: value for _, key, value in _by(self.store.tags_of([self.id]), 1)}

    @cached_property
    def tag_history(self) -> list[dict[str, Any]]:
        return self.store.tag_history_rows(self.id)

    @cached_property
    def notes(self) -> list[dict[str, Any]]:
        return self.store.note_rows(self.id)

    @cached_property
    def summary(self) -> dict[str, dict[str, Any]]:
        """Per metric key: ``last``, ``last_step``, ``min``, ``max``, ``count``, ``nan_count``."""
        out = {}
        for _, key, *values in _by(self.store.summaries_of([self.id]), 1):
            given = dict(zip(_SUMMARY, values, strict=True))
            if given["last"] is None:
                given["last"] = float("nan")
            out[key] = {name: given[name] for name in _SUMMARY_ORDER}
        return out

    def metric_keys(self) -> list[str]:
        return list(self.summary)

    def metric_arrays(self, key: str) -> dict[str, np.ndarray]:
        """One key's history as NumPy arrays ``step``, ``epoch`` (-1 = none), ``timestamp``, ``value``."""
        from labledger.query.histories import history_arrays

        return history_arrays(self.store, self.id, key)

    @overload
    def metric(self, key: str, as_: Literal["pandas"] = "pandas") -> pd.DataFrame: ...

    @overload
    def metric(self, key: str, as_: Literal["numpy"]) -> dict[str, np.ndarray]: ...

    def metric(self, key: str, as_: str = "pandas") -> pd.DataFrame | dict[str, np.ndarray]:
        """One key's history, in logging order.

        :param key: the metric's key.
        :param as_: ``"pandas"`` (default): a DataFrame with columns ``step``, ``epoch``
            (nullable ``Int64``), ``timestamp`` (seconds since the epoch) and ``value``.
            ``"numpy"``: the same columns as a dict of NumPy arrays, without building a
            DataFrame (pandas is not imported): ``step`` (int64), ``epoch`` (int64, -1 where
            no epoch was given), ``timestamp`` and ``value`` (float64).
        :raises InvalidValueError: for any other ``as_``.

        >>> loss = ll.get_run("mnist/lr-0.01").metric("loss", as_="numpy")  # doctest: +SKIP
        >>> loss["value"][loss["step"] >= 1000].min()  # doctest: +SKIP
        """
        if as_ not in ("pandas", "numpy"):
            raise InvalidValueError("as_", as_, "choose 'pandas' (a DataFrame) or 'numpy' (a dict of arrays)")
        arrays = self.metric_arrays(key)
        if as_ == "numpy":
            return arrays
        from labledger.query.histories import history_frame

        return history_frame(arrays)

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """Every point logged: columns ``key`` (categorical), ``step``, ``epoch``, ``timestamp``, ``value``.

        Keys come in name order, each key's points in logging order.
        """
        from labledger.query.histories import all_histories

        return all_histories(self.store, self.id)

    @cached_property
    def folds(self) -> pd.DataFrame:
        """Per-fold results: columns ``key``, ``split``, ``fold``, ``value`` (NaN for a failed fold)."""
        import pandas as pd

        rows = self.store.folds_of([self.id])
        return pd.DataFrame(
            {
                "key": pd.Series([r[1] for r in rows], dtype=object),
                "split": pd.Series([r[2] for r in rows], dtype=object),
                "fold": pd.Series([r[3] for r in rows], dtype="int64"),
                "value": pd.Series([_nan(r[4]) for r in rows], dtype="float64"),
            }
        )

    @cached_property
    def fold_stats(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``(key, split)`` -> ``n``, ``mean``, ``std``, ``min``, ``max`` of the logged folds."""
        rows = _by(self.store.fold_stats_of([self.id]), 1, 2)
        return {
            (key, split): {"n": n, "mean": _nan(mean), "std": _nan(std), "min": _nan(lo), "max": _nan(hi)}
            for _, key, split, n, mean, std, lo, hi in rows
        }

    @cached_property
    def artifacts(self) -> list[ArtifactView]:
        """Stored artifacts; their bytes are checked when read (see :class:`ArtifactView`)."""
        out = []
        for r in self.store.artifact_rows(self.id):
            if not is_sha256(r["sha256"]):
                field = f"artifacts[{r['name']!r}].sha256"
                self.damaged[field] = f"{r['sha256']!r} is not a SHA-256 hex digest"
                _damage.report(self.id, field, self.damaged[field])
            out.append(
                ArtifactView(
                    name=r["name"],
                    kind=r["kind"],
                    sha256=r["sha256"],
                    size=r["size"],
                    media_type=r["media_type"],
                    metadata=self._object(r["metadata"], f"artifacts[{r['name']!r}].metadata"),
                    created_at=r["created_at"],
                    store=self.store,
                )
            )
        return out

    def artifact(self, name: str) -> ArtifactView:
        for a in self.artifacts:
            if a.name == name:
                return a
        raise KeyError(f"run {self.id} has no artifact {name!r}; it has {[a.name for a in self.artifacts]}")

    @cached_property
    def datasets(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "role": role,
                "fingerprint": fingerprint,
                "summary": self._object(summary, f"datasets[{name!r}].summary"),
                "created_at": created_at,
            }
            for _, name, role, fingerprint, summary, created_at in self.store.datasets_of([self.id])
        ]

    @cached_property
    def children(self) -> list[RunView]:
        return [RunView(self.store, r) for r in self.store.child_rows(self.id)]

    @cached_property
    def lineage(self) -> dict[str, Any]:
        """Code version, author, seeds and package-set digest; a child run shows its parent's
        code, author and packages (it does not capture its own)."""
        own = self._object(self._row.get("lineage"), "lineage")
        if self.parent_id is None:
            return dict(own)
        parent = self.store.run_row(self.parent_id)
        inherited = self._object(parent.get("lineage"), "lineage (inherited)") if parent else {}
        merged = {k: v for k, v in inherited.items() if k != "seeds"}
        merged.update(own)
        merged.setdefault("inherited_from", self.parent_id)
        return merged

    @cached_property
    def packages(self) -> dict[str, str]:
        """``{distribution: version}`` installed when the run started (shared by identical sets)."""
        sha = self.packages_sha or self.lineage.get("packages_sha256")
        if not sha:
            return {}
        text = self.store.package_set(sha)
        return dict(self._object(text, "packages")) if text is not None else {}

    @cached_property
    def pipelines(self) -> list[dict[str, Any]]:
        """Feature pipelines recorded with ``log_pipeline``: name, version, structure, text."""
        return [
            {**r, "structure": self._object(r["structure"], f"pipelines[{r['name']!r}].structure")}
            for r in self.store.pipeline_rows(self.id)
        ]

    @property
    def model_type(self) -> str | None:
        """The fully qualified class of the run's model, when recorded."""
        model_class = self.params.get("model/class")
        if model_class is not None and not isinstance(model_class, _damage.DamagedValue):
            return str(model_class)
        for a in self.artifacts:
            if a.kind == "model" and a.metadata.get("class"):
                return str(a.metadata["class"])
        return None

    @cached_property
    def completeness(self) -> Any:
        """A :class:`~labledger.lineage.completeness.CompletenessReport` over the nine parts of a run."""
        from labledger.lineage.completeness import assess

        return assess(
            params=self.params,
            datasets=self.datasets,
            pipelines=self.pipelines,
            metric_keys=list(self.summary),
            fold_keys=sorted({k for k, _ in self.fold_stats}),
            artifacts=[{"kind": a.kind, "metadata": a.metadata} for a in self.artifacts],
            seeds=self.lineage.get("seeds"),
            hypothesis=self.hypothesis,
            notes=len(self.notes),
            origin=self.source.get("origin"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything about the run as JSON-compatible data (children as ids; damaged values as
        ``"<damaged>"``, listed under ``damaged``)."""
        data = {
            "id": self.id,
            "name": self.name,
            "experiment": self.experiment,
            "status": self.status,
            "kind": self.kind,
            "parent_id": self.parent_id,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration,
            "author": self.author,
            "hypothesis": self.hypothesis,
            "host": self.host,
            "pid": self.pid,
            "source": self.source,
            "environment": self.environment,
            "error": self.error,
            "params": {
                k: str(v) if isinstance(v, _damage.DamagedValue) else v for k, v in self.params.items()
            },
            "tags": self.tags,
            "summary": self.summary,
            "notes": self.notes,
            "artifacts": [
                {
                    "name": a.name,
                    "kind": a.kind,
                    "sha256": a.sha256,
                    "size": a.size,
                    "media_type": a.media_type,
                    "metadata": a.metadata,
                    "path": str(a.store.blobs.path_for(a.sha256)) if is_sha256(a.sha256) else None,
                }
                for a in self.artifacts
            ],
            "datasets": self.datasets,
            "pipelines": [{k: p[k] for k in ("name", "version", "text")} for p in self.pipelines],
            "model_type": self.model_type,
            "lineage": self.lineage,
            "reproduction_of": self.reproduction_of,
            "completeness": self.completeness.to_dict(),
            "children": [c.id for c in self.children],
        }
        data["damaged"] = dict(self.damaged)
        return data
