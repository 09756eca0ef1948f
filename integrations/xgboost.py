"""XGBoost: a ``TrainingCallback`` that records a boosting run.

>>> import labledger as ll
>>> from labledger.integrations.xgboost import LedgerCallback
>>> with ll.start_run("churn-xgb") as run:                                    # doctest: +SKIP
...     booster = xgb.train(params, dtrain, 500, evals=[(dtrain, "train"), (dvalid, "valid")],
...                         early_stopping_rounds=20, callbacks=[LedgerCallback(run)])
>>> clf = xgb.XGBClassifier(n_estimators=300, callbacks=[LedgerCallback()])    # doctest: +SKIP

Recorded: the booster's full effective configuration (``xgb/config/...`` params),
every eval set's metrics per iteration (``valid/logloss`` at step = iteration),
the best iteration and score with early stopping, checkpoints every
``checkpoint_every`` iterations (UBJSON ``checkpoint`` artifacts), the final model
(``model`` artifact), feature importances (gain, weight, cover) as a
``feature_importance`` table and a PNG plot, and fingerprints of the DMatrix
data passed to ``xgb.train``. Under ``xgb.cv`` the curves are the mean over folds
with their std (``test/logloss/std``), and the last iteration's per-fold values
are logged as folds. Inside a tracked scikit-learn search, each candidate's
child run gets its folds' curves instead.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import xgboost as xgb
from xgboost.callback import TrainingCallback

import labledger as ll
from labledger.errors import LabledgerError
from labledger.integrations import _sklearn_capture
from labledger.integrations._training import RunBinding
from labledger.plugins import warn_once

__all__ = ["LedgerCallback"]

IMPORTANCE_TYPES = ("gain", "weight", "cover")


class LedgerCallback(TrainingCallback):
    """Record an XGBoost training (``xgb.train``, ``xgb.cv`` or the scikit-learn wrapper) in a run.

    :param run: the run to log to; default the active run, else a run started
        (and ended after training) with ``start_run_kwargs``.
    :param checkpoint_every: store the model every N iterations as a ``checkpoint`` artifact.
    :param log_model: store the final model as a ``model`` artifact (UBJSON).
    :param log_importance: store feature importances as a table and a PNG plot.
    :param log_datasets: record fingerprints of the training and evaluation DMatrix data.

    >>> xgb.train(params, dtrain, 100, evals=[(dvalid, "valid")],
    ...           callbacks=[LedgerCallback(run, checkpoint_every=25)])   # doctest: +SKIP
    """

    def __init__(
        self,
        run: ll.Run | None = None,
        *,
        checkpoint_every: int | None = None,
        log_model: bool = True,
        log_importance: bool = True,
        log_datasets: bool = True,
        **start_run_kwargs: Any,
    ) -> None:
        super().__init__()
        if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
            raise ll.errors.InvalidValueError(
                "checkpoint_every", checkpoint_every, "give a positive number of iterations, or None"
            )
        self.run = run
        self.checkpoint_every = checkpoint_every
        self.log_model = log_model
        self.log_importance = log_importance
        self.log_datasets = log_datasets
        self.start_run_kwargs = start_run_kwargs
        self._origin_pid = os.getpid()
        self._reset()

    def __repr__(self) -> str:  # stable: it appears in the estimator's recorded params
        return f"LedgerCallback(checkpoint_every={self.checkpoint_every})"

    def _reset(self) -> None:
        self._target: ll.Run | None = None
        self._binding: RunBinding | None = None  # says whether this callback started the run
        self._fit: _sklearn_capture.FitCurves | None = None

    # scikit-learn's clone deep-copies callbacks: the copy shares the run, not a copy of it.
    def __deepcopy__(self, memo: dict[int, Any]) -> LedgerCallback:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)  # not copy.copy: that would go through __getstate__
        new.start_run_kwargs = copy.deepcopy(self.start_run_kwargs, memo)
        new._reset()
        return new

    # Sent to a worker process (n_jobs > 1): the copy there writes nothing.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(run=None, _target=None, _binding=None, _fit=None)
        return state

    @property
    def _inert(self) -> bool:
        return os.getpid() != self._origin_pid

    # -- TrainingCallback ------------------------------------------------------------

    def before_training(self, model: Any) -> Any:
        self._reset()
        if self._inert:
            return model
        self._fit = _sklearn_capture.current_fit()
        if self._fit is not None:  # inside a tracked search: the candidate's child run gets the curves
            return model
        binding = RunBinding(self.run, self.start_run_kwargs)  # the given run, the active one, or a new one
        try:
            self._target = binding.get()
        except (LabledgerError, OSError) as error:
            _report("start a run", error)
            return model
        self._binding = binding
        self._guard("the booster configuration", self._log_config, model)
        if self.log_datasets:
            self._guard("dataset fingerprints", self._log_datasets)
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: TrainingCallback.EvalsLog) -> bool:
        if self._fit is None and self._target is None:
            return False
        metrics: dict[str, float] = {}
        for data, per_metric in evals_log.items():
            for metric, history in per_metric.items():
                if not history:
                    continue
                last = history[-1]
                if isinstance(last, tuple):  # xgb.cv: (mean, std) over folds
                    metrics[f"{data}/{metric}"] = float(last[0])
                    metrics[f"{data}/{metric}/std"] = float(last[1])
                else:
                    metrics[f"{data}/{metric}"] = float(last)
        if self._fit is not None:
            self._fit.log_metrics(metrics, step=epoch)
            return False
        if metrics:
            self._guard("per-iteration metrics", self._target_run().log_metrics, metrics, step=epoch)
        every = self.checkpoint_every
        if every and (epoch + 1) % every == 0 and isinstance(model, xgb.Booster):
            self._guard("a checkpoint", self._log_checkpoint, model, epoch)
        return False

    def after_training(self, model: Any) -> Any:
        if self._fit is not None:
            self._fit.summary.update(_best(model))
            self._reset()
            return model
        if self._target is None:
            return model
        run = self._target
        try:
            best = _best(model)
            if best:
                self._guard("the best iteration", run.log_metrics, best)
            if hasattr(model, "cvfolds"):
                self._guard("per-fold results", _log_cv_folds, run, model)
            elif isinstance(model, xgb.Booster):
                if self.log_model:
                    self._guard("the model", _log_booster, run, model, best)
                if self.log_importance:
                    self._guard("feature importances", _log_importance, run, model)
        finally:
            if self._binding is not None and self._binding.owned:
                try:
                    run.end("finished")
                except (LabledgerError, OSError) as error:
                    _report("end the run", error)
            self._reset()
        return model

    # -- pieces ------------------------------------------------------------------------

    def _target_run(self) -> ll.Run:
        assert self._target is not None
        return self._target

    def _guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # tracking must never break training
            _report(what, error)
            return None

    def _log_config(self, model: Any) -> None:
        booster = model.cvfolds[0].bst if hasattr(model, "cvfolds") else model
        config = json.loads(booster.save_config())
        self._target_run().log_params({"xgb": {"config": config}})

    def _log_datasets(self) -> None:
        frame = _training_frame()
        if frame is None:
            return
        run = self._target_run()
        dtrain = frame.get("dtrain")
        if _fingerprintable(dtrain):
            run.log_dataset("dtrain", dtrain, role="train")
        for data, name in frame.get("evals") or ():
            if _fingerprintable(data) and data is not dtrain:
                run.log_dataset(f"eval/{name}", data, role="evaluation")

    def _log_checkpoint(self, booster: xgb.Booster, epoch: int) -> None:
        with tempfile.TemporaryDirectory(prefix="labledger-xgb-") as tmp:
            path = Path(tmp) / f"checkpoint-{epoch:06d}.ubj"
            booster.save_model(path)
            self._target_run().log_artifact(
                path, kind="checkpoint", name=path.name, metadata={"iteration": epoch, "format": "ubj"}
            )


def _best(model: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    iteration, score = model.attr("best_iteration"), model.attr("best_score")
    if iteration is not None:
        out["best_iteration"] = float(int(iteration))
    if score is not None:
        out["best_score"] = float(score)
    return out


def _fingerprintable(data: Any) -> bool:
    """A DMatrix keeps its data; a QuantileDMatrix (the scikit-learn wrapper's default) does not."""
    return isinstance(data, xgb.DMatrix) and not isinstance(data, xgb.QuantileDMatrix)


def _training_frame() -> dict[str, Any] | None:
    """The locals of the ``xgboost.training`` call running this callback (its DMatrix data)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "xgboost.training" and frame.f_code.co_name in ("train", "cv"):
            return dict(frame.f_locals)
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _log_booster(run: ll.Run, booster: xgb.Booster, best: dict[str, float]) -> None:
    with tempfile.TemporaryDirectory(prefix="labledger-xgb-") as tmp:
        path = Path(tmp) / "model.ubj"
        booster.save_model(path)
        meta: dict[str, Any] = {"format": "ubj", "num_boosted_rounds": booster.num_boosted_rounds()}
        meta.update({k: int(v) if k == "best_iteration" else v for k, v in best.items()})
        if hasattr(run, "log_model"):
            run.log_model(booster, name=path.name, path=path, metadata=meta)
        else:
            meta["class"] = "xgboost.core.Booster"
            run.log_artifact(path, kind="model", name=path.name, metadata=meta)


def importance_table(booster: xgb.Booster) -> list[dict[str, Any]]:
    """One row per feature used in a split: its gain, weight and cover (``Booster.get_score``)."""
    scores = {kind: booster.get_score(importance_type=kind) for kind in IMPORTANCE_TYPES}
    features = list(dict.fromkeys(f for kind in IMPORTANCE_TYPES for f in scores[kind]))
    rows = [{"feature": f, **{kind: scores[kind].get(f, 0.0) for kind in IMPORTANCE_TYPES}} for f in features]
    return sorted(rows, key=lambda r: -float(r["gain"]))


def _log_importance(run: ll.Run, booster: xgb.Booster) -> None:
    rows = importance_table(booster)
    if not rows:
        return
    with tempfile.TemporaryDirectory(prefix="labledger-xgb-") as tmp:
        table = Path(tmp) / "feature_importance.csv"
        with open(table, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["feature", *IMPORTANCE_TYPES])
            writer.writeheader()
            writer.writerows(rows)
        run.log_artifact(table, kind="feature_importance", name=table.name, metadata={"features": len(rows)})
        plot = Path(tmp) / "feature_importance.png"
        if _plot_importance(rows, plot):
            run.log_artifact(plot, kind="plot", name=plot.name, metadata={"importance_type": "gain"})


def _plot_importance(rows: list[dict[str, Any]], path: Path, top: int = 20) -> bool:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    shown = rows[:top][::-1]
    fig = Figure(figsize=(6, 0.3 * len(shown) + 1.2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.barh([str(r["feature"]) for r in shown], [float(r["gain"]) for r in shown])
    ax.set_xlabel("gain")
    ax.set_title("XGBoost feature importance")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def _log_cv_folds(run: ll.Run, packed: Any) -> None:
    """The last iteration's value of every metric in every fold (``xgb.cv``)."""
    iteration = packed.num_boosted_rounds() - 1
    per_key: dict[tuple[str, str], list[float]] = {}
    for fold in packed.cvfolds:
        text = fold.eval(iteration, None, False)
        for item in text.split("\t")[1:]:
            name, _, value = item.partition(":")
            data, _, metric = name.partition("-")
            per_key.setdefault((metric, data), []).append(float(value))
    for (metric, data), values in per_key.items():
        run.log_folds(metric, values, split=data)


def _report(what: str, error: BaseException) -> None:
    """Warn once per kind of failure; tracking never breaks the user's training."""
    warn_once(
        ("xgboost", what),
        f"labledger could not record {what} ({type(error).__name__}: {error}); training went on",
    )
