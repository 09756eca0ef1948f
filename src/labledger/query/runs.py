"""Reading runs back: :func:`get_run` (one run, read-only) and :func:`runs` (a DataFrame).

pandas is imported only when a DataFrame is asked for. The filter language
and comparisons build on :func:`run_rows` and :func:`runs`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from labledger.errors import RunNotFoundError
from labledger.store import open_store

if TYPE_CHECKING:
    import pandas as pd

    from labledger.query.artifacts import ArtifactView
    from labledger.query.run_view import RunView
    from labledger.store.backend import Backend

__all__ = ["ArtifactView", "RunView", "experiments", "get_run", "resolve_run", "run_rows", "runs"]


def __getattr__(name: str) -> object:
    """The view classes load with the first view (a listing needs neither)."""
    if name == "RunView":
        from labledger.query.run_view import RunView

        return RunView
    if name == "ArtifactView":
        from labledger.query.artifacts import ArtifactView

        return ArtifactView
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _store(store: str | os.PathLike[str] | Backend | None) -> Backend:
    """The store to read (never created, never written)."""
    return open_store(store, create=False)


def resolve_run(ref: str, store: str | os.PathLike[str] | Backend | None = None) -> RunView:
    """Find a run by id, unique id prefix, or ``experiment/name``.

    >>> resolve_run("digits-svm/swift-otter-3")  # doctest: +SKIP
    """
    from labledger.query.run_view import RunView

    st = _store(store)
    row = st.run_row(ref)
    if row is None and "/" in ref:
        exp, _, name = ref.rpartition("/")
        row = st.run_row_by_name(exp, name)
    if row is None and ref and all(c in "0123456789abcdef" for c in ref.lower()):
        rows = st.run_rows_by_prefix(ref.lower(), 6)
        if len(rows) > 1:
            raise RunNotFoundError(ref, [r["id"] for r in rows])
        row = rows[0] if rows else None
    if row is None:
        raise RunNotFoundError(ref)
    return RunView(st, row)


def get_run(run_id: str, store: str | os.PathLike[str] | Backend | None = None) -> RunView:
    """A read-only view of one run (by id, unique id prefix, or ``experiment/name``).

    >>> import labledger as ll
    >>> ll.get_run(run.id).metrics  # doctest: +SKIP
    """
    return resolve_run(run_id, store)


def experiments(store: str | os.PathLike[str] | Backend | None = None) -> list[dict[str, Any]]:
    """Every experiment with its run counts."""
    return _store(store).experiment_rows()


def run_rows(
    experiment: str | None = None,
    store: str | os.PathLike[str] | Backend | None = None,
    include_children: bool = True,
    limit: int | None = None,
    where: str | None = None,
    order_by: str | list[str] | tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Runs as plain dicts with ``params``, ``metrics`` (last values), ``folds`` and ``tags`` sub-dicts.

    ``where`` and ``order_by`` take the filter language of :mod:`labledger.query.filters`.

    >>> run_rows("digits-svm", where="metrics.val_acc > 0.9", order_by="-metrics.val_acc")  # doctest: +SKIP
    """
    from labledger.query.listing import select_rows

    return select_rows(_store(store), experiment, include_children, limit, where, order_by)


def runs(
    experiment: str | None = None,
    store: str | os.PathLike[str] | Backend | None = None,
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

    ``where`` filters with the filter language (:mod:`labledger.query.filters`),
    ``order_by`` sorts (``"-metrics.val_acc"``: descending; several fields with
    commas or a list), ``limit`` caps the count. ``aggregate`` adds
    ``metrics.<key>.<how>`` columns for ``min``, ``max``, ``count``, ``best``
    (follows :func:`labledger.metric_direction`) or ``mean_last_<N>`` (mean of
    the last N logged values; reads the histories).

    >>> import labledger as ll
    >>> ll.runs("digits-svm", where='params.kernel = "rbf" and folds.accuracy > 0.95',
    ...         order_by="-folds.accuracy", limit=10, aggregate="best")  # doctest: +SKIP
    """
    from labledger.query.listing import select_frame

    return select_frame(_store(store), experiment, include_children, limit, where, order_by, aggregate)
