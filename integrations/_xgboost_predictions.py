"""The XGBoost callback's predictions on its evaluation sets, read by the booster's objective."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xgboost as xgb

import labledger as ll

__all__ = ["eval_predictions", "log_eval_predictions"]


#: Objectives whose predictions are stored as a regression's values.
_RANKING = ("rank:",)


def _objective(booster: xgb.Booster) -> str:
    try:
        return str(json.loads(booster.save_config())["learner"]["objective"]["name"])
    except (KeyError, TypeError, ValueError, xgb.core.XGBoostError):
        return ""


def _classified(
    labels: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, width: int
) -> dict[str, Any]:
    found: dict[str, Any] = {"y_true": labels, "y_pred": np.asarray(y_pred).astype(np.int64)}
    if proba is not None:
        found.update(proba=proba, classes=list(range(width)))
    return found | {"task": "classification"}


def eval_predictions(booster: xgb.Booster, dmat: xgb.DMatrix) -> dict[str, Any] | None:
    """``log_predictions``'s arguments for ``booster``'s predictions on ``dmat`` (its labels the
    truth), by the booster's objective; ``None`` for ranking and multi-output models.

    With early stopping, the trees up to the best iteration predict (as the scikit-learn
    wrapper's ``predict`` does). ``multi:softprob``: the probabilities and their argmax;
    ``multi:softmax``: the class and the softmax of the margins; ``binary:logistic``: the
    positive class's probability, ``> 0.5``; ``binary:logitraw``: the sigmoid of the score,
    ``> 0``; ``binary:hinge``: the class; any other objective: a regression's values.
    """
    objective = _objective(booster)
    if objective.startswith(_RANKING):
        return None
    truth = np.asarray(dmat.get_label())
    if truth.ndim != 1 or len(truth) != dmat.num_row():
        return None
    best = booster.attr("best_iteration")
    rounds = {"iteration_range": (0, int(best) + 1)} if best is not None else {}
    out = np.asarray(booster.predict(dmat, **rounds))
    labels = truth.astype(np.int64)
    if objective == "multi:softprob" and out.ndim == 2:
        return _classified(labels, out.argmax(axis=1), out, out.shape[1])
    if objective == "multi:softmax" and out.ndim == 1:
        margin = np.asarray(booster.predict(dmat, output_margin=True, **rounds), dtype=np.float64)
        if margin.ndim != 2:
            return None
        e = np.exp(margin - margin.max(axis=1, keepdims=True))
        return _classified(labels, out, e / e.sum(axis=1, keepdims=True), margin.shape[1])
    if out.ndim != 1:
        return None
    if objective == "binary:logistic":
        return _classified(labels, out > 0.5, out, 2)
    if objective == "binary:logitraw":
        return _classified(labels, out > 0, 1.0 / (1.0 + np.exp(-out.astype(np.float64))), 2)
    if objective == "binary:hinge":
        return _classified(labels, out, None, 0)
    return {"y_true": truth, "y_pred": out, "task": "regression"}


def log_eval_predictions(run: ll.Run, booster: xgb.Booster, evals: Any) -> None:
    """The predictions on every eval set (``(DMatrix, name)`` pairs), one table each, split = the name."""
    for dmat, name in list(evals or []):
        if not isinstance(dmat, xgb.DMatrix):
            continue
        found = eval_predictions(booster, dmat)
        if found is not None:
            run.log_predictions(split=str(name), **found)
