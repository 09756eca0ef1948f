"""A store as one caller of a labledger server may see it: :class:`ScopedBackend`.

It wraps any :class:`~labledger.store.backend.Backend` and answers as the principal of the
current request (:func:`~labledger.server.api_access.acting_as`) may see and change the
store: reads give only the runs and experiments they may ``read`` (the others are absent,
never an error that reveals them); writes to a run need ``write`` on its experiment, else
:class:`~labledger.errors.RunNotFoundError` (they may not read it) or
:class:`~labledger.server.api_access.PermissionDeniedError`. Creating an experiment grants
its creator ``admin`` on it. The same wrapper serves the API and the dashboard.

Without accounts (``accounts=None``: a server started with ``--no-auth``) everything is allowed.
With accounts and no principal bound, nothing is (it fails closed).

>>> from labledger.server.api_access import Access, acting_as
>>> scoped = ScopedBackend(store, accounts)                    # doctest: +SKIP
>>> with acting_as(Access(principal)):                         # doctest: +SKIP
...     [e["name"] for e in scoped.experiment_rows()]
['vision-a']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.errors import RunNotFoundError, StoreError
from labledger.server.accounts import allowed
from labledger.server.api_access import (
    Access,
    AccessError,
    Accounts,
    ExperimentIndex,
    ExperimentNotFoundError,
    PermissionDeniedError,
    RunIdTakenError,
    current_access,
    denied,
)

if TYPE_CHECKING:
    from labledger.query.filter_syntax import Field
    from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord
    from labledger.store.backend import Backend, RunSelection
    from labledger.store.blobs import BlobStore

__all__ = ["ScopedBackend"]


class ScopedBackend:
    """A :class:`~labledger.store.backend.Backend` showing the current principal only what they may see.

    :param store: the store served.
    :param accounts: the server's accounts; ``None``: no accounts, everything is allowed.
    """

    def __init__(self, store: Backend, accounts: Accounts | None) -> None:
        self.store = store
        self.accounts = accounts
        self.index = ExperimentIndex()
        if hasattr(store, "keys_of"):
            self.keys_of = self._keys_of

    def __repr__(self) -> str:
        return f"<labledger ScopedBackend {self.store!r}>"

    # -- what the store is ---------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def blobs(self) -> BlobStore:
        return self.store.blobs

    @property
    def uri(self) -> str:
        return self.store.uri

    @property
    def location(self) -> str:
        return self.store.location

    def create(self) -> None:
        self.store.create()

    def transaction(self) -> AbstractContextManager[object]:
        return self.store.transaction()

    def in_transaction(self) -> bool:
        return self.store.in_transaction()

    def snapshot(self) -> AbstractContextManager[None]:
        return self.store.snapshot()

    # -- who may do what -----------------------------------------------------------------

    def _access(self) -> Access | None:
        """The caller; None when everything is allowed. Raises when accounts exist but nobody is bound."""
        if self.accounts is None:
            return None
        access = current_access()
        if access is None:
            raise AccessError("no authenticated caller: the request reached the store outside the server")
        return access

    def _sees_all(self) -> bool:
        access = self._access()
        return access is None or access.principal.is_admin

    def may(self, experiment: str, action: str = "read") -> bool:
        """Whether the current caller may ``action`` the experiment. A refusal is checked once per
        request against the accounts themselves (a role granted since the principal was cached,
        in this process or another, counts at once)."""
        access = self._access()
        if access is None or allowed(access.principal, experiment, action):
            return True
        return access.renewed() and allowed(access.principal, experiment, action)

    def _require(self, experiment: str, action: str, run_id: str | None = None) -> None:
        access = self._access()
        if access is None or self.may(experiment, action):
            return
        if not allowed(access.principal, experiment, "read"):
            raise RunNotFoundError(run_id) if run_id is not None else ExperimentNotFoundError(experiment)
        raise denied(access.principal, experiment, action)

    # -- runs and their experiments ------------------------------------------------------

    def experiment_of(self, run_id: str) -> str | None:
        """The experiment of run ``run_id`` (remembered once known), or None when there is no such run."""
        known = self.index.run(run_id)
        if known is not None:
            return known
        row = self.store.run_row(run_id)
        if row is None:
            return None
        self.index.learn([row])
        return str(row["experiment"])

    def _readable_run(self, run_id: str) -> bool:
        if self._sees_all():
            return True
        experiment = self.experiment_of(run_id)
        return experiment is not None and self.may(experiment)

    def _readable_ids(self, run_ids: Sequence[str]) -> list[str]:
        if self._sees_all():
            return list(run_ids)
        return [r for r in run_ids if self._readable_run(r)]

    def _visible(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.index.learn(rows)
        if self._sees_all():
            return rows
        return [row for row in rows if self.may(str(row["experiment"]))]

    def _limited(
        self, fetch: Callable[[int | None], list[dict[str, Any]]], limit: int | None
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` visible rows of ``fetch(n)`` (asking for more when some were hidden)."""
        ask = limit
        while True:
            rows = fetch(ask)
            shown = self._visible(rows)
            if limit is None or len(shown) >= limit or ask is None or len(rows) < ask:
                return shown[:limit] if limit is not None else shown
            ask = ask * 4 if ask < 10_000 else None

    def _run_write(self, run_id: str, action: str = "write") -> None:
        experiment = self.experiment_of(run_id) if self.accounts is not None else ""
        if experiment is None:
            raise RunNotFoundError(run_id)
        self._require(experiment, action, run_id)

    def _experiment_name(self, experiment_id: int) -> str:
        known = self.index.experiment(experiment_id)
        if known is not None:
            return known
        for row in self.store.experiment_rows():  # once per experiment and process: ids never change
            name = str(row["name"])
            if self.may(name, "write") and self.store.ensure_experiment(name) == experiment_id:
                self.index.name(experiment_id, name)
                return name
        raise ExperimentNotFoundError(f"#{experiment_id}")

    # -- writes ------------------------------------------------------------------------

    def ensure_experiment(self, name: str, description: str | None = None) -> int:
        access = self._access()
        if access is None or allowed(access.principal, name, "write"):
            experiment_id = self.store.ensure_experiment(name, description)
        elif (
            self.accounts is not None
            and access.principal.scope in ("write", "admin")
            and self.accounts.create_experiment(name, description, access.principal.user)
        ):  # created now, its creator made its admin in the same transaction
            experiment_id = self.store.ensure_experiment(name, description)
            roles = {**access.principal.roles, name: "admin"}
            access.principal = replace(access.principal, roles=roles)
        else:
            self._require(name, "write")
            experiment_id = self.store.ensure_experiment(name, description)
        self.index.name(experiment_id, name)
        return experiment_id

    def insert_run(self, row: dict[str, Any]) -> str:
        run_id, experiment_id = str(row["id"]), int(row["experiment_id"])
        if self.accounts is not None:
            self._require(self._experiment_name(experiment_id), "write")
        existing = self.store.run_row(run_id)
        if existing is None:
            try:
                return self.store.insert_run(row)
            except StoreError:
                existing = self.store.run_row(run_id)  # created meanwhile by a replay of this call?
                if existing is None:
                    raise
        self.index.learn([existing])
        if int(existing["experiment_id"]) != experiment_id:
            raise RunIdTakenError(run_id)
        return str(existing["name"])  # a replay: the run is there already

    def end_run(self, run_id: str, status: str, end_time: float, error: str | None) -> None:
        self._run_write(run_id)
        self.store.end_run(run_id, status, end_time, error)

    def heartbeat(self, run_id: str) -> None:
        self._run_write(run_id)
        self.store.heartbeat(run_id)

    def insert_params(self, run_id: str, params: dict[str, Any]) -> None:
        self._run_write(run_id)
        self.store.insert_params(run_id, params)

    def set_tags(self, run_id: str, tags: dict[str, str], when: float) -> None:
        self._run_write(run_id)
        self.store.set_tags(run_id, tags, when)

    def add_note(self, run_id: str, text: str, when: float, author: str | None = None) -> None:
        self._run_write(run_id)
        self.store.add_note(run_id, text, when, author)

    def write_metrics(self, batch: MetricBatch) -> None:
        self._run_write(batch.run_id)
        self.store.write_metrics(batch)

    def insert_folds(
        self, run_id: str, key: str, split: str, values: list[float], stats: dict[str, float | None]
    ) -> None:
        self._run_write(run_id)
        self.store.insert_folds(run_id, key, split, values, stats)

    def insert_dataset(self, run_id: str, ds: DatasetRecord) -> None:
        self._run_write(run_id)
        self.store.insert_dataset(run_id, ds)

    def record_lineage(self, run_id: str, lineage: dict[str, Any], packages: dict[str, str] | None) -> None:
        self._run_write(run_id)
        self.store.record_lineage(run_id, lineage, packages)

    def insert_pipeline(self, run_id: str, pipe: PipelineRecord) -> None:
        self._run_write(run_id)
        self.store.insert_pipeline(run_id, pipe)

    def insert_artifact(self, run_id: str, art: ArtifactRecord) -> None:
        self._run_write(run_id)
        self.store.insert_artifact(run_id, art)

    def set_setting(self, key: str, value: str) -> None:
        access = self._access()
        if access is not None and access.principal.scope != "admin":
            raise PermissionDeniedError(
                f"cannot set {key!r}: store-wide settings need a token of scope admin "
                f"(this one's is {access.principal.scope})"
            )
        self.store.set_setting(key, value)

    # -- reads: runs and experiments -----------------------------------------------------

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        row = self.store.run_row(run_id)
        return None if row is None or not self._visible([row]) else row

    def run_row_by_name(self, experiment: str, name: str) -> dict[str, Any] | None:
        return self.store.run_row_by_name(experiment, name) if self.may(experiment) else None

    def run_rows_by_prefix(self, prefix: str, limit: int) -> list[dict[str, Any]]:
        return self._limited(
            lambda n: self.store.run_rows_by_prefix(prefix, 2**62 if n is None else n), limit
        )

    def child_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self._visible(self.store.child_rows(run_id)) if self._readable_run(run_id) else []

    def select_runs(self, selection: RunSelection) -> list[dict[str, Any]]:
        if selection.experiment is not None and not self.may(selection.experiment):
            return []
        return self._limited(lambda n: self.store.select_runs(replace(selection, limit=n)), selection.limit)

    def field_values(self, run_ids: Sequence[str], field: Field) -> dict[str, Any]:
        return self.store.field_values(self._readable_ids(run_ids), field)

    def experiment_rows(self) -> list[dict[str, Any]]:
        rows = self.store.experiment_rows()
        return rows if self._sees_all() else [r for r in rows if self.may(str(r["name"]))]

    def run_ids(self) -> list[str]:
        if self._sees_all():
            return self.store.run_ids()
        from labledger.store.backend import RunSelection

        ids: list[str] = []
        for experiment in self.experiment_rows():
            rows = self.store.select_runs(RunSelection(experiment=str(experiment["name"]), brief=True))
            self.index.learn(rows)
            ids += [str(r["id"]) for r in rows]
        return sorted(ids)

    def runs_version(self) -> int:
        return self.store.runs_version()

    def latest_reproduction(self, run_id: str, since: float) -> str | None:
        if not self._readable_run(run_id):
            return None
        found = self.store.latest_reproduction(run_id, since)
        return found if found is not None and self._readable_run(found) else None

    # -- reads: records of many runs -----------------------------------------------------

    def params_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self.store.params_of(self._readable_ids(run_ids))

    def tags_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self.store.tags_of(self._readable_ids(run_ids))

    def summaries_of(self, run_ids: Sequence[str], brief: bool = False) -> list[tuple[Any, ...]]:
        return self.store.summaries_of(self._readable_ids(run_ids), brief)

    def fold_stats_of(self, run_ids: Sequence[str], brief: bool = False) -> list[tuple[Any, ...]]:
        return self.store.fold_stats_of(self._readable_ids(run_ids), brief)

    def folds_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self.store.folds_of(self._readable_ids(run_ids))

    def datasets_of(self, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        return self.store.datasets_of(self._readable_ids(run_ids))

    def _keys_of(self, run_ids: Sequence[str]) -> list[tuple[str, str, str | None]]:
        keys: list[tuple[str, str, str | None]] = self.store.keys_of(self._readable_ids(run_ids))  # type: ignore[attr-defined]
        return keys

    # -- reads: one run's records --------------------------------------------------------

    def tag_history_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self.store.tag_history_rows(run_id) if self._readable_run(run_id) else []

    def note_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self.store.note_rows(run_id) if self._readable_run(run_id) else []

    def artifact_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self.store.artifact_rows(run_id) if self._readable_run(run_id) else []

    def pipeline_rows(self, run_id: str) -> list[dict[str, Any]]:
        return self.store.pipeline_rows(run_id) if self._readable_run(run_id) else []

    def artifact_sha(self, run_id: str, name: str) -> str | None:
        return self.store.artifact_sha(run_id, name) if self._readable_run(run_id) else None

    def artifact_by_content(self, sha256: str, name: str) -> tuple[str, str] | None:
        found = self.store.artifact_by_content(sha256, name)
        return found if found is not None and self._readable_run(found[0]) else None

    def package_set(self, sha256: str) -> str | None:
        return self.store.package_set(sha256)

    def setting(self, key: str) -> str | None:
        return self.store.setting(key)

    def settings(self, prefix: str) -> dict[str, str]:
        return self.store.settings(prefix)

    def metric_sizes(self, run_id: str, key: str | None = None) -> list[tuple[str, int]]:
        return self.store.metric_sizes(run_id, key) if self._readable_run(run_id) else []

    def metric_chunks(self, run_id: str, key: str | None = None) -> Iterator[tuple[str, int, bytes]]:
        if self._readable_run(run_id):
            yield from self.store.metric_chunks(run_id, key)
