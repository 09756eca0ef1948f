"""Which task predictions are for: the one rule every analysis and every stored table uses.

>>> import numpy as np
>>> infer_task(np.array([0.5, 1.5]), None, None), infer_task(np.arange(100), None, None)
('regression', 'classification')
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from labledger.errors import InvalidValueError

__all__ = ["MAX_CLASSES", "TASKS", "infer_task"]

TASKS = ("classification", "regression")
#: Whole-number float labels with at most this many distinct values are class labels.
MAX_CLASSES = 50


def infer_task(y_pred: np.ndarray, proba: Any, task: str | None, y_true: np.ndarray | None = None) -> str:
    """``task`` checked, or guessed from the predictions (and the truth, when given).

    Classification with probabilities, with labels that are not numbers (bool, text), with
    integer labels (however many classes), or with whole numbers of at most
    :data:`MAX_CLASSES` distinct values; else regression. One rule for every analysis
    and for the task a stored predictions table records; pass ``task=`` to say it.
    """
    if task is not None and task not in TASKS:
        raise InvalidValueError("task", task, "expected 'classification' or 'regression'")
    if task is not None:
        return task
    arrays = [y_pred] if y_true is None else [y_true, y_pred]
    kinds = {a.dtype.kind for a in arrays}
    if proba is not None or kinds & set("bOUSV"):
        return "classification"
    if kinds <= set("iu"):
        return "classification"
    whole = all(bool(np.all(a == np.round(a))) for a in arrays)
    return "classification" if whole and len(pd.unique(arrays[0])) <= MAX_CLASSES else "regression"
