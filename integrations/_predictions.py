"""Per-example predictions the integrations store (``run.log_predictions``): shared rules.

- :func:`from_outputs`: a network's outputs as predictions. Two or more columns are class
  scores: ``y_pred`` is the argmax, ``proba`` the outputs as they are when every row is a
  probability distribution (in ``[0, 1]``, summing to 1 within 1e-4), else their softmax.
  One column (or a flat vector) in ``[0, 1]`` with a truth of 0s and 1s is a binary
  classifier's positive-class probability: ``y_pred`` is ``output > 0.5``. Anything else is
  a regression.
- :func:`slicing_features`: the columns of a DataFrame worth slicing errors by, bounded.

This module imports no framework.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from labledger.errors import InvalidValueError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MAX_FEATURES",
    "MAX_NUMERIC_FEATURES",
    "Outputs",
    "check_data",
    "frame_ids",
    "from_outputs",
    "slicing_features",
    "unchanged_randomness",
]

#: At most this many feature columns are stored with the predictions.
MAX_FEATURES = 20
#: Of which at most this many numeric ones (the first, in column order).
MAX_NUMERIC_FEATURES = 5


class Outputs:
    """``y_true``, ``y_pred``, ``proba``, ``classes`` and ``task``, ready for ``log_predictions``."""

    def __init__(
        self, y_true: Any, y_pred: Any, proba: Any = None, classes: list[Any] | None = None, task: str = ""
    ) -> None:
        self.y_true, self.y_pred, self.proba, self.classes, self.task = y_true, y_pred, proba, classes, task

    def log(self, run: Any, *, split: str, name: str = "predictions", features: Any = None) -> Any:
        """``run.log_predictions(...)`` with these values (``run`` may be a stand-in with that method)."""
        return run.log_predictions(
            self.y_true,
            self.y_pred,
            proba=self.proba,
            classes=self.classes,
            task=self.task or None,
            features=features,
            split=split,
            name=name,
        )


def check_data(value: Any, what: str = "predictions") -> tuple[Any, Any, Any] | None:
    """``(x, y, features)`` from ``None``, ``(x, y)`` or ``(x, y, features)``; else raise."""
    if value is None:
        return None
    if not isinstance(value, tuple | list) or len(value) not in (2, 3):
        raise InvalidValueError(
            what, type(value).__name__, "give (x_val, y_val) or (x_val, y_val, features_df), or None"
        )
    x, y = value[0], value[1]
    features = value[2] if len(value) == 3 else None
    if x is None or y is None:
        raise InvalidValueError(what, "None", "give both the inputs and the truth: (x_val, y_val)")
    return x, y, features


def _labels(y: np.ndarray, width: int) -> np.ndarray:
    """The truth as class indices: a one-hot (or soft) ``(n, width)`` truth by its argmax."""
    import numpy as np

    if y.ndim == 2 and y.shape[1] == width and width > 1:
        return np.asarray(y.argmax(axis=1), dtype=np.int64)
    flat = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if flat.dtype.kind == "f" and np.array_equal(flat, np.round(flat)):
        return flat.astype(np.int64)
    return flat


def _softmax(scores: np.ndarray) -> np.ndarray:
    import numpy as np

    shifted = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def from_outputs(outputs: Any, y_true: Any) -> Outputs:
    """Predictions from a network's outputs on examples whose truth is ``y_true`` (see the module)."""
    import numpy as np

    out = np.asarray(outputs)
    y = np.asarray(y_true)
    if out.ndim == 0 or out.ndim > 2:
        raise InvalidValueError("the model's outputs", out.shape, "one row of outputs per example (n, k)")
    if out.ndim == 2 and out.shape[1] >= 2:
        scores = out.astype(np.float64)
        sums = scores.sum(axis=1)
        is_proba = bool(((scores >= 0) & (scores <= 1)).all() and np.allclose(sums, 1.0, atol=1e-4))
        proba = scores if is_proba else _softmax(scores)
        width = scores.shape[1]
        truth = _labels(y, width)
        return Outputs(truth, proba.argmax(axis=1), proba, list(range(width)), "classification")
    column = out.reshape(-1)
    truth = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    binary_truth = truth.ndim == 1 and bool(np.isin(truth, (0, 1)).all())
    if column.dtype.kind == "f" and binary_truth and bool(((column >= 0) & (column <= 1)).all()):
        p = column.astype(np.float64)
        return Outputs(truth.astype(np.int64), (p > 0.5).astype(np.int64), p, [0, 1], "classification")
    return Outputs(truth, column, None, None, "regression")


def slicing_features(frame: Any) -> Any:
    """The columns of a DataFrame to slice errors by: every categorical, text and boolean column,
    then the first :data:`MAX_NUMERIC_FEATURES` numeric ones, :data:`MAX_FEATURES` at most, in
    the frame's order; ``None`` when ``frame`` is not a DataFrame or has none."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame) or frame.shape[1] == 0:
        return None
    chosen: list[Any] = []
    numeric: list[Any] = []
    for column in frame.columns:
        kind = frame[column].dtype
        labels = isinstance(kind, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(kind)
        if labels or pd.api.types.is_object_dtype(kind) or pd.api.types.is_string_dtype(kind):
            chosen.append(column)
        elif pd.api.types.is_numeric_dtype(kind) and len(numeric) < MAX_NUMERIC_FEATURES:
            numeric.append(column)
    keep = set(chosen[:MAX_FEATURES])
    keep.update(numeric[: max(0, MAX_FEATURES - len(keep))])
    columns = [c for c in frame.columns if c in keep]
    return frame[columns].reset_index(drop=True) if columns else None


def frame_ids(frame: Any) -> Any:
    """A DataFrame's (or Series') index as example ids when it names the rows (unique and not
    the default ``0..n-1``); else ``None`` (the row position is the id)."""
    import pandas as pd

    index = getattr(frame, "index", None)
    if not isinstance(frame, pd.DataFrame | pd.Series) or index is None:
        return None
    if isinstance(index, pd.RangeIndex | pd.MultiIndex) or not index.is_unique:
        return None
    return index.to_numpy()


@contextmanager
def unchanged_randomness() -> Iterator[None]:
    """Put the global ``random``, NumPy and (when imported) torch generators back after the block:
    predicting for the record draws nothing the training program would see."""
    import numpy as np

    py_state, np_state = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = torch.get_rng_state() if torch is not None else None
    cuda = torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
    cuda_states = torch.cuda.get_rng_state_all() if cuda and torch is not None else None
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if torch is not None and torch_state is not None:
            torch.set_rng_state(torch_state)
            if cuda_states is not None:
                torch.cuda.set_rng_state_all(cuda_states)
