"""Per-example predictions as a typed Parquet table: what ``run.log_predictions`` stores.

Columns: ``id`` (the given example ids, else the row position), ``y_true``, ``y_pred``, one
``proba[<class>]`` column per class when probabilities are given, and one ``feature.<name>``
column per slicing feature. The artifact's metadata is the table's schema row: ``split``,
``task`` (``classification`` or ``regression``), ``rows``, ``classes``, ``ids`` (``given`` or
``position``), ``data_fingerprint`` (of truth and features: two runs scored on the same
examples share it), ``features`` and ``columns``.

>>> table, meta = build_table([0, 1, 1], [0, 1, 0], proba=[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
>>> meta["task"], meta["classes"], table.column_names
('classification', [0, 1], ['id', 'y_true', 'y_pred', 'proba[0]', 'proba[1]'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labledger.errors import InvalidValueError, LabledgerError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["FEATURE_PREFIX", "PredictionsExtraMissingError", "build_table", "infer_task", "proba_column"]

FEATURE_PREFIX = "feature."
TASKS = ("classification", "regression")


class PredictionsExtraMissingError(LabledgerError, ImportError):
    """Predictions are stored as Parquet, which needs pyarrow."""

    def __init__(self) -> None:
        super().__init__("predictions are stored as Parquet: pip install 'labledger[parquet]' (pyarrow)")


def proba_column(label: Any) -> str:
    return f"proba[{label}]"


def _array(name: str, values: Any, rows: int | None) -> np.ndarray:
    import numpy as np

    try:
        arr = np.asarray(values)
    except Exception as e:
        raise InvalidValueError(name, type(values).__name__, f"an array-like ({e})") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidValueError(name, arr.shape, "a one-dimensional array, one value per example")
    if rows is not None and len(arr) != rows:
        raise InvalidValueError(name, len(arr), f"{rows} values, one per example of y_true")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InvalidValueError(name, "NaN or infinity", "finite values (drop or impute those examples)")
    if arr.dtype.kind == "O":
        arr = arr.astype(str)
    return arr


def infer_task(y_true: np.ndarray, y_pred: np.ndarray, proba: Any) -> str:
    """``classification`` or ``regression``, by the rule every analysis uses
    (:func:`labledger.analysis.task_rule.infer_task`)."""
    from labledger.analysis.task_rule import infer_task as rule

    return rule(y_pred, proba, None, y_true)


def _classes(y_true: np.ndarray, y_pred: np.ndarray, width: int, given: Sequence[Any] | None) -> list[Any]:
    import numpy as np

    if given is not None:
        labels = list(given)
        if len(labels) != width:
            raise InvalidValueError("classes", labels, f"{width} labels, one per column of proba")
        return [x.item() if hasattr(x, "item") else x for x in labels]
    seen = np.unique(np.concatenate([y_true, y_pred]))
    if len(seen) == width:
        return [x.item() if hasattr(x, "item") else x for x in seen]
    if y_true.dtype.kind in "iu" and seen.min() >= 0 and seen.max() < width:
        return list(range(width))
    raise InvalidValueError(
        "classes", seen[:10].tolist(), f"the {width} class labels of proba's columns (e.g. model.classes_)"
    )


def build_table(
    y_true: Any,
    y_pred: Any,
    *,
    proba: Any = None,
    ids: Any = None,
    features: Any = None,
    classes: Sequence[Any] | None = None,
    task: str | None = None,
    split: str = "test",
) -> tuple[pa.Table, dict[str, Any]]:
    """The Arrow table and its schema row (see the module docstring)."""
    import numpy as np

    try:
        import pyarrow as pa
    except ImportError:
        raise PredictionsExtraMissingError() from None
    truth = _array("y_true", y_true, None)
    rows = len(truth)
    if rows == 0:
        raise InvalidValueError("y_true", 0, "at least one example")
    pred = _array("y_pred", y_pred, rows)
    if task is not None and task not in TASKS:
        raise InvalidValueError("task", task, f"choose {' or '.join(TASKS)}")
    task = task or infer_task(truth, pred, proba)
    columns: dict[str, Any] = {}
    if ids is None:
        columns["id"] = np.arange(rows, dtype=np.int64)
    else:
        id_arr = _array("ids", ids, rows)
        if len(np.unique(id_arr)) != rows:
            raise InvalidValueError("ids", "duplicates", "one unique id per example")
        columns["id"] = id_arr
    columns["y_true"], columns["y_pred"] = truth, pred
    labels: list[Any] = []
    if proba is not None:
        p = np.asarray(proba, dtype=float)
        if p.ndim == 1:  # a binary classifier's positive-class probability
            p = np.column_stack([1 - p, p])
        if p.ndim != 2 or p.shape[0] != rows or p.shape[1] < 2:
            expected = f"({rows}, n_classes): one row of class probabilities per example"
            raise InvalidValueError("proba", p.shape, expected)
        if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
            raise InvalidValueError("proba", "out of [0, 1]", "probabilities in [0, 1]")
        sums = p.sum(axis=1)
        if (np.abs(sums - 1) > 0.01).any():  # scores or a one-vs-rest model's unnormalised columns
            found = f"rows summing to {sums.min():.3g}..{sums.max():.3g}"
            raise InvalidValueError("proba", found, "each row's class probabilities summing to 1")
        labels = _classes(truth, pred, p.shape[1], classes)
        by_class = np.ascontiguousarray(p.T)  # one copy; each class's column is then a contiguous row
        for j, label in enumerate(labels):
            columns[proba_column(label)] = by_class[j]
    names: list[str] = []
    if features is not None:
        names = _add_features(columns, features, rows)
    table = pa.table(columns)
    meta = {
        "split": split,
        "task": task,
        "rows": rows,
        "classes": labels,
        "ids": "position" if ids is None else "given",
        "data_fingerprint": _fingerprint(table, names),
        "features": names,
        "columns": {f.name: str(f.type) for f in table.schema},
    }
    return table, meta


def _add_features(columns: dict[str, Any], features: Any, rows: int) -> list[str]:
    """Each feature column as Arrow data (strings stay Arrow strings: no per-row Python objects)."""
    import pandas as pd
    import pyarrow as pa

    frame = features if isinstance(features, pd.DataFrame) else pd.DataFrame(features)
    if len(frame) != rows:
        raise InvalidValueError("features", len(frame), f"{rows} rows, one per example of y_true")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise InvalidValueError("features", names, "distinct column names")
    for name, col in zip(names, frame.columns, strict=True):
        values = frame[col]
        try:
            columns[FEATURE_PREFIX + name] = pa.Array.from_pandas(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: compared as text
            columns[FEATURE_PREFIX + name] = pa.array(values.astype(str).to_numpy())
    return names


def _fingerprint(table: pa.Table, features: list[str]) -> str:
    """SHA-256 over the ids, the truth and the features: the examples, not the model's outputs."""
    import hashlib

    digest = hashlib.sha256()
    for name in ["id", "y_true", *(FEATURE_PREFIX + f for f in features)]:
        column = table.column(name).combine_chunks()
        digest.update(f"{name}:{column.type}:{len(column)}".encode())
        for buffer in column.buffers():
            if buffer is not None:
                digest.update(memoryview(buffer))
    return digest.hexdigest()
