"""``run.log_predictions``: per-example predictions as a ``predictions`` artifact (Parquet).

Mixed into :class:`labledger.Run`; the table and its schema row are built by
:mod:`labledger.predictions.table`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labledger.records import ArtifactRecord

__all__ = ["PredictionsMixin", "artifact_name"]


def artifact_name(name: str, split: str) -> str:
    """``predictions.parquet`` for the test split, ``predictions-<split>.parquet`` for others."""
    return f"{name}.parquet" if split == "test" else f"{name}-{split}.parquet"


class PredictionsMixin:
    def _check_open(self, action: str) -> None:  # provided by Run
        raise NotImplementedError

    def log_artifact(  # provided by AssetsMixin
        self, path: str, kind: str = "other", name: str | None = None, metadata: Any = None
    ) -> ArtifactRecord:
        raise NotImplementedError

    def log_predictions(
        self,
        y_true: Any,
        y_pred: Any,
        *,
        proba: Any = None,
        ids: Any = None,
        features: Any = None,
        split: str = "test",
        name: str = "predictions",
        classes: Sequence[Any] | None = None,
        task: str | None = None,
    ) -> ArtifactRecord:
        """Store per-example predictions for error analysis (``labledger errors``).

        :param proba: class probabilities, ``(n, n_classes)`` (or a binary classifier's
            positive-class column); ``classes`` names the columns (default: the labels seen).
        :param ids: example ids (default: the row position, with the data's fingerprint).
        :param features: a DataFrame of the same length: the columns to slice by.
        :param task: ``classification`` or ``regression`` (inferred when not given).

        Multi-label and ranking predictions are not supported yet.

        >>> run.log_predictions(y_test, model.predict(X_test), proba=model.predict_proba(X_test),
        ...                     features=X_test[["age", "region"]])  # doctest: +SKIP
        """
        from labledger.predictions.table import build_table
        from labledger.tracking import validate

        self._check_open("log predictions")
        validate.check_key(split, "split")
        validate.check_key(name, "predictions name")
        table, meta = build_table(
            y_true, y_pred, proba=proba, ids=ids, features=features, classes=classes, task=task, split=split
        )
        meta["name"] = name
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory(prefix="labledger-predictions-") as tmp:
            path = Path(tmp) / artifact_name(name, split)
            # random-looking floats neither compress nor dictionary-encode: spend the time elsewhere
            text = [f.name for f in table.schema if not str(f.type).startswith(("double", "float"))]
            pq.write_table(table, path, compression="snappy", use_dictionary=text)
            return self.log_artifact(str(path), kind="predictions", name=path.name, metadata=meta)
