"""Reading runs back: :func:`get_run` (one run, read-only) and :func:`runs` (a DataFrame).

pandas is imported only when a DataFrame is asked for. The filter language
and comparisons build on :func:`run_rows` and :func:`runs`.
"""

from __future__ import annotations

import json
import os
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from labledger.artifacts import ArtifactView
from labledger.errors import RunNotFoundError, StoreError
from labledger.store import Store, open_store
from labledger.store.codec import NO_EPOCH, DamagedChunkError, decode_chunk

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["ArtifactView", "RunView", "experiments", "get_run", "resolve_run", "run_rows", "runs"]


def stale_after() -> float:
    """Seconds without a heartbeat after which a run from another host counts as crashed."""
    try:
        return float(os.environ.get("LABLEDGER_HEARTBEAT_TIMEOUT", "60"))
    except ValueError:
        return 60.0


def _store(store: str | os.PathLike[str] | Store | None) -> Store:
    st = open_store(store)
    st.reap_crashed(stale_after())
    return st


class RunView:
    """A read-only view of a stored run; attributes load on first access.

    >>> import labledger as ll
    >>> run = ll.get_run("0192f3")               # doctest: +SKIP
    >>> run.status, run.params["C"], run.summary["val/acc"]["last"]  # doctest: +SKIP
    """

    def __init__(self, store: Store, row: Any) -> None:
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
        self.source: dict[str, Any] = json.loads(self._row["source"] or "{}")
        self.environment: dict[str, Any] = json.loads(self._row.get("environment") or "{}")
        self.reproduction_of: str | None = self._row.get("reproduction_of")
        self.packages_sha: str | None = self._row.get("packages_sha")

    def __repr__(self) -> str:
        return f"<RunView {self.experiment}/{self.name} {self.id[:12]} {self.status}>"

    @property
    def duration(self) -> float:
        """Seconds from start to end (to now for a running run)."""
        return (self.end_time or time.time()) - self.start_time

    @cached_property
    def params(self) -> dict[str, Any]:
        rows = self.store.query("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (self.id,))
        return {r["key"]: json.loads(r["value"]) for r in rows}

    @cached_property
    def tags(self) -> dict[str, str]:
        rows = self.store.query("SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (self.id,))
        return {r["key"]: r["value"] for r in rows}

    @cached_property
    def tag_history(self) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT key, value, changed_at FROM tag_history WHERE run_id = ? ORDER BY id", (self.id,)
        )
        return [dict(r) for r in rows]

    @cached_property
    def notes(self) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT created_at, text FROM notes WHERE run_id = ? ORDER BY id", (self.id,))
        return [dict(r) for r in rows]

    @cached_property
    def summary(self) -> dict[str, dict[str, Any]]:
        """Per metric key: ``last``, ``last_step``, ``min``, ``max``, ``count``, ``nan_count``."""
        rows = self.store.query(
            "SELECT key, count, nan_count, last, last_step, last_time, min, max "
            "FROM metric_summary WHERE run_id = ? ORDER BY key",
            (self.id,),
        )
        out = {}
        for r in rows:
            d = dict(r)
            d.pop("key")
            if d["last"] is None:
                d["last"] = float("nan")
            out[r["key"]] = d
        return out

    def metric_keys(self) -> list[str]:
        return list(self.summary)

    def metric_arrays(self, key: str) -> dict[str, np.ndarray]:
        """One key's history as NumPy arrays ``step``, ``epoch`` (-1 = none), ``timestamp``, ``value``."""
        import numpy as np

        rows = self.store.query(
            "SELECT c.data FROM metric_chunks c JOIN metric_keys k ON k.id = c.key_id "
            "WHERE c.run_id = ? AND k.name = ? ORDER BY c.seq",
            (self.id, key),
        )
        try:
            parts = [decode_chunk(r["data"]) for r in rows]
        except DamagedChunkError as e:
            raise StoreError(
                str(self.store.db_path),
                f"the history of {key!r} in run {self.id} is damaged ({e}); the other keys and runs are "
                "readable. Restore the store from a backup to recover it.",
            ) from e
        if not parts:
            empty = np.array([], dtype=np.int64)
            return {
                "step": empty,
                "epoch": empty,
                "timestamp": empty.astype(float),
                "value": empty.astype(float),
            }
        if len(parts) == 1:
            return parts[0]
        return {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}

    def metric(self, key: str) -> pd.DataFrame:
        """One key's history: columns ``step``, ``epoch``, ``timestamp``, ``value``."""
        return _history_frame(self.metric_arrays(key))

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """Every point logged: columns ``key``, ``step``, ``epoch``, ``timestamp``, ``value``."""
        import pandas as pd

        frames = []
        for key in self.summary:
            f = self.metric(key)
            f.insert(0, "key", key)
            frames.append(f)
        if not frames:
            return pd.DataFrame(
                {
                    "key": pd.Series(dtype=object),
                    "step": pd.Series(dtype="int64"),
                    "epoch": pd.Series(dtype="Int64"),
                    "timestamp": pd.Series(dtype="float64"),
                    "value": pd.Series(dtype="float64"),
                }
            )
        return pd.concat(frames, ignore_index=True)

    @cached_property
    def folds(self) -> pd.DataFrame:
        """Per-fold results: columns ``key``, ``split``, ``fold``, ``value`` (NaN for a failed fold)."""
        import pandas as pd

        rows = self.store.query(
            "SELECT key, split, fold, value FROM folds WHERE run_id = ? ORDER BY key, split, fold",
            (self.id,),
        )
        return pd.DataFrame(
            {
                "key": pd.Series([r["key"] for r in rows], dtype=object),
                "split": pd.Series([r["split"] for r in rows], dtype=object),
                "fold": pd.Series([r["fold"] for r in rows], dtype="int64"),
                "value": pd.Series([_nan(r["value"]) for r in rows], dtype="float64"),
            }
        )

    @cached_property
    def fold_stats(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``(key, split)`` -> ``n``, ``mean``, ``std``, ``min``, ``max`` of the logged folds."""
        rows = self.store.query(
            "SELECT key, split, n, mean, std, min, max FROM fold_stats WHERE run_id = ? ORDER BY key, split",
            (self.id,),
        )
        return {
            (r["key"], r["split"]): {"n": r["n"], **{c: _nan(r[c]) for c in ("mean", "std", "min", "max")}}
            for r in rows
        }

    @cached_property
    def artifacts(self) -> list[ArtifactView]:
        rows = self.store.query(
            "SELECT name, kind, sha256, size, media_type, metadata, created_at FROM artifacts "
            "WHERE run_id = ? ORDER BY id",
            (self.id,),
        )
        return [
            ArtifactView(
                name=r["name"],
                kind=r["kind"],
                sha256=r["sha256"],
                size=r["size"],
                media_type=r["media_type"],
                metadata=json.loads(r["metadata"]),
                created_at=r["created_at"],
                store=self.store,
            )
            for r in rows
        ]

    def artifact(self, name: str) -> ArtifactView:
        for a in self.artifacts:
            if a.name == name:
                return a
        raise KeyError(f"run {self.id} has no artifact {name!r}; it has {[a.name for a in self.artifacts]}")

    @cached_property
    def datasets(self) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT name, role, fingerprint, summary, created_at FROM datasets WHERE run_id = ? "
            "ORDER BY created_at",
            (self.id,),
        )
        return [{**dict(r), "summary": json.loads(r["summary"])} for r in rows]

    @cached_property
    def children(self) -> list[RunView]:
        rows = self.store.query(_RUN_SELECT + " WHERE r.parent_id = ? ORDER BY r.id", (self.id,))
        return [RunView(self.store, r) for r in rows]

    @cached_property
    def lineage(self) -> dict[str, Any]:
        """Code version, author, seeds and package-set digest; a child run shows its parent's
        code, author and packages (it does not capture its own)."""
        own = json.loads(self._row.get("lineage") or "{}")
        if self.parent_id is None:
            return dict(own)
        rows = self.store.query("SELECT lineage FROM runs WHERE id = ?", (self.parent_id,))
        inherited = json.loads(rows[0]["lineage"] or "{}") if rows else {}
        merged = {k: v for k, v in inherited.items() if k != "seeds"}
        merged.update(own)
        merged.setdefault("inherited_from", self.parent_id)
        return merged

    @cached_property
    def packages(self) -> dict[str, str]:
        """``{distribution: version}`` installed when the run started (shared by identical sets)."""
        sha = self.packages_sha or self.lineage.get("packages_sha256")
        return self.store.packages(sha) if sha else {}

    @cached_property
    def pipelines(self) -> list[dict[str, Any]]:
        """Feature pipelines recorded with ``log_pipeline``: name, version, structure, text."""
        rows = self.store.query(
            "SELECT name, version, structure, text, created_at FROM pipelines WHERE run_id = ? ORDER BY name",
            (self.id,),
        )
        return [{**dict(r), "structure": json.loads(r["structure"])} for r in rows]

    @property
    def model_type(self) -> str | None:
        """The fully qualified class of the run's model, when recorded."""
        if "model/class" in self.params:
            return str(self.params["model/class"])
        for a in self.artifacts:
            if a.kind == "model" and a.metadata.get("class"):
                return str(a.metadata["class"])
        return None

    @cached_property
    def completeness(self) -> Any:
        """A :class:`labledger.completeness.CompletenessReport` over the nine parts of an experiment."""
        from labledger.completeness import assess

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
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything about the run as JSON-compatible data (children as ids)."""
        return {
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
            "params": self.params,
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
                    "path": str(a.store.blobs.path_for(a.sha256)),
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


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _history_frame(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    import pandas as pd

    epoch = pd.array(arrays["epoch"], dtype="Int64")
    epoch[arrays["epoch"] == NO_EPOCH] = pd.NA
    return pd.DataFrame(
        {"step": arrays["step"], "epoch": epoch, "timestamp": arrays["timestamp"], "value": arrays["value"]}
    )


_RUN_SELECT = "SELECT r.*, e.name AS experiment FROM runs r JOIN experiments e ON e.id = r.experiment_id"


def resolve_run(ref: str, store: str | os.PathLike[str] | Store | None = None) -> RunView:
    """Find a run by id, unique id prefix, or ``experiment/name``.

    >>> resolve_run("digits-svm/swift-otter-3")  # doctest: +SKIP
    """
    st = _store(store)
    rows = st.query(_RUN_SELECT + " WHERE r.id = ?", (ref,))
    if not rows and "/" in ref:
        exp, _, name = ref.rpartition("/")
        rows = st.query(_RUN_SELECT + " WHERE e.name = ? AND r.name = ?", (exp, name))
    if not rows and ref and all(c in "0123456789abcdef" for c in ref.lower()):
        rows = st.query(
            _RUN_SELECT + " WHERE r.id >= ? AND r.id < ? ORDER BY r.id LIMIT 6",
            (ref.lower(), ref.lower() + "g"),
        )
        if len(rows) > 1:
            raise RunNotFoundError(ref, [r["id"] for r in rows])
    if not rows:
        raise RunNotFoundError(ref)
    return RunView(st, rows[0])


def get_run(run_id: str, store: str | os.PathLike[str] | Store | None = None) -> RunView:
    """A read-only view of one run (by id, unique id prefix, or ``experiment/name``).

    >>> import labledger as ll
    >>> ll.get_run(run.id).metrics  # doctest: +SKIP
    """
    return resolve_run(run_id, store)


def experiments(store: str | os.PathLike[str] | Store | None = None) -> list[dict[str, Any]]:
    """Every experiment with its run counts."""
    st = _store(store)
    rows = st.query(
        "SELECT e.name, e.description, e.created_at, count(r.id) AS runs, "
        "sum(r.status = 'running') AS running, max(r.start_time) AS last_run "
        "FROM experiments e LEFT JOIN runs r ON r.experiment_id = e.id GROUP BY e.id ORDER BY e.name"
    )
    return [dict(r) for r in rows]


def run_rows(
    experiment: str | None = None,
    store: str | os.PathLike[str] | Store | None = None,
    include_children: bool = True,
    limit: int | None = None,
    where: str | None = None,
    order_by: str | list[str] | tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Runs as plain dicts with ``params``, ``metrics`` (last values), ``folds`` and ``tags`` sub-dicts.

    ``where`` and ``order_by`` take the filter language of :mod:`labledger.filters`.

    >>> run_rows("digits-svm", where="metrics.val_acc > 0.9", order_by="-metrics.val_acc")  # doctest: +SKIP
    """
    from labledger.listing import select_rows

    return select_rows(_store(store), experiment, include_children, limit, where, order_by)


def runs(
    experiment: str | None = None,
    store: str | os.PathLike[str] | Store | None = None,
    include_children: bool = False,
    limit: int | None = None,
    where: str | None = None,
    order_by: str | list[str] | tuple[str, ...] | None = None,
    aggregate: str | list[str] | tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """Runs as a DataFrame: one row per run, newest first unless ``order_by`` says otherwise.

    Columns: ``id``, ``experiment``, ``name``, ``status``, ``parent_id``,
    ``start_time``, ``end_time``, ``duration``, ``author``, ``hypothesis``, then
    ``params.<key>``, ``metrics.<key>`` (last value), ``folds.<key>.mean`` /
    ``folds.<key>.std`` / ``folds.<key>.n`` (cross-validation folds;
    ``<split>/<key>`` for splits other than ``test``) and ``tags.<key>``.

    ``where`` filters with the filter language (:mod:`labledger.filters`),
    ``order_by`` sorts (``"-metrics.val_acc"``: descending; several fields with
    commas or a list), ``limit`` caps the count. ``aggregate`` adds
    ``metrics.<key>.<how>`` columns for ``min``, ``max``, ``count``, ``best``
    (follows :func:`labledger.metric_direction`) or ``mean_last_<N>`` (mean of
    the last N logged values; reads the histories).

    >>> import labledger as ll
    >>> ll.runs("digits-svm", where='params.kernel = "rbf" and folds.accuracy > 0.95',
    ...         order_by="-folds.accuracy", limit=10, aggregate="best")  # doctest: +SKIP
    """
    from labledger.listing import select_frame

    return select_frame(_store(store), experiment, include_children, limit, where, order_by, aggregate)
