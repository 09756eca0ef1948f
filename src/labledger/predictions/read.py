"""Read a run's stored predictions back: truth, predictions, probabilities, ids and features.

>>> p = get_predictions("digits-svm/swift-otter-3")  # doctest: +SKIP
>>> p.task, p.rows, p.features.columns.tolist()  # doctest: +SKIP
('classification', 360, ['region'])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.predictions.table import FEATURE_PREFIX, proba_column

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from labledger.query.run_view import RunView
    from labledger.store.backend import Backend

__all__ = ["NoPredictionsError", "Predictions", "get_predictions"]


class NoPredictionsError(LabledgerError, LookupError):
    """The run has no stored predictions for the split asked for."""

    def __init__(self, run: str, split: str, found: list[str]) -> None:
        where = f"; it has predictions for {', '.join(found)}" if found else ""
        super().__init__(
            f"run {run} has no predictions for split {split!r}{where}. Log them with "
            "run.log_predictions(y_true, y_pred, ...) (or autolog(log_predictions=True))"
        )


@dataclass
class Predictions:
    """One stored predictions table; ``frame`` holds every column as stored."""

    run_id: str
    frame: pd.DataFrame
    meta: dict[str, Any]

    @property
    def task(self) -> str:
        return str(self.meta["task"])

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> np.ndarray:
        return self.frame["id"].to_numpy()

    @property
    def y_true(self) -> np.ndarray:
        return self.frame["y_true"].to_numpy()

    @property
    def y_pred(self) -> np.ndarray:
        return self.frame["y_pred"].to_numpy()

    @property
    def classes(self) -> list[Any]:
        return list(self.meta.get("classes") or [])

    @property
    def proba(self) -> np.ndarray | None:
        import numpy as np

        if not self.classes:
            return None
        return np.column_stack([self.frame[proba_column(c)].to_numpy() for c in self.classes])

    @property
    def features(self) -> pd.DataFrame:
        cols = [c for c in self.frame.columns if c.startswith(FEATURE_PREFIX)]
        out = self.frame[cols]
        out.columns = [c[len(FEATURE_PREFIX) :] for c in cols]
        return out


def get_predictions(
    run: str | RunView,
    split: str = "test",
    name: str | None = None,
    store: str | os.PathLike[str] | Backend | None = None,
) -> Predictions:
    """A run's stored predictions for ``split`` (the newest table when several were logged).

    >>> ll.get_predictions("digits-svm/swift-otter-3").frame.head()  # doctest: +SKIP
    """
    from labledger.query.runs import get_run

    view = get_run(run, store) if isinstance(run, str) else run
    tables = [a for a in view.artifacts if a.kind == "predictions" and isinstance(a.metadata, dict)]
    chosen = [
        a
        for a in tables
        if a.metadata.get("split") == split and (name is None or a.metadata.get("name") == name)
    ]
    if not chosen:
        splits = sorted({str(a.metadata.get("split")) for a in tables})
        raise NoPredictionsError(f"{view.experiment}/{view.name}", split, splits)
    art = max(chosen, key=lambda a: a.created_at)
    import pyarrow.parquet as pq

    frame = pq.read_table(art.path).to_pandas()
    return Predictions(view.id, frame, dict(art.metadata))
