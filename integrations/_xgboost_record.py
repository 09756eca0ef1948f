"""What the XGBoost integration records: params, data, configuration, model, importances, folds.

Plain functions of a run and xgboost objects; :mod:`labledger.integrations._xgboost_session`
decides when each is called.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

import labledger as ll
from labledger.errors import InvalidValueError
from labledger.integrations.base import cv_design_params, plain, qualified_name

IMPORTANCE_TYPES = ("gain", "weight", "cover")
CONFIG_ARTIFACT = "xgboost_config.json"


def booster_params(params: Any) -> dict[str, Any]:
    """The params given to ``xgb.train``/``xgb.cv``, by their own names and with their own types.

    A list of ``(name, value)`` pairs (xgboost's way to repeat a key) becomes a dict whose
    repeated keys hold lists: ``[("eval_metric", "auc"), ("eval_metric", "logloss")]`` →
    ``{"eval_metric": ["auc", "logloss"]}``.
    """
    if not params:
        return {}
    items = params.items() if isinstance(params, Mapping) else list(params)
    out: dict[str, Any] = {}
    for key, value in items:
        name, described = str(key), plain(value)
        if name in out:
            previous = out[name] if isinstance(out[name], list) else [out[name]]
            out[name] = [*previous, described]
        else:
            out[name] = described
    return out


def _callable_name(fn: Any) -> str | None:
    return None if fn is None else str(plain(fn))


def train_params(found: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """Params of a direct ``xgb.train``/``xgb.cv`` call, read from its frame's locals."""
    params: dict[str, Any] = {f"xgb/{k}": v for k, v in booster_params(found.get("params")).items()}
    params["xgb/num_boost_round"] = found.get("num_boost_round")
    params["xgb/early_stopping_rounds"] = found.get("early_stopping_rounds")
    params["xgb/maximize"] = found.get("maximize")
    for name in ("custom_metric", "obj"):
        if found.get(name) is not None:
            params[f"xgb/{name}"] = _callable_name(found[name])
    if kind == "train" and found.get("xgb_model") is not None:
        model = found["xgb_model"]
        params["xgb/xgb_model"] = "Booster" if isinstance(model, xgb.Booster) else plain(model)
    if kind == "cv":
        params["cv/stratified"] = found.get("stratified")
        params["cv/metrics"] = plain(found.get("metrics") or None)
    return {k: plain(v) for k, v in params.items()}


# -- xgb.cv's folds -------------------------------------------------------------------------------


def fold_rows(packed: Any) -> list[tuple[int, int]] | None:
    """``(train rows, test rows)`` of every fold ``xgb.cv`` built (its packed folds' DMatrix slices)."""
    try:
        return [(int(f.dtrain.num_row()), int(f.dtest.num_row())) for f in packed.cvfolds]
    except (AttributeError, TypeError, xgb.core.XGBoostError):
        return None


def _nfold_splits(dtrain: Any, nfold: int, seed: Any, stratified: Any, shuffle: Any) -> list[Any] | None:
    """The folds ``xgb.cv`` makes itself from ``nfold`` (``mknfold``): an index range — permuted by
    ``np.random.seed(seed)`` when ``shuffle is True`` — cut by ``np.array_split``, by query group
    for ranking data; stratified, scikit-learn's ``StratifiedKFold(nfold, shuffle=True,
    random_state=seed)``."""
    if not isinstance(dtrain, xgb.DMatrix) or not isinstance(nfold, int) or not isinstance(seed, int):
        return None
    if stratified is not False:
        from xgboost.compat import XGBStratifiedKFold

        labels = dtrain.get_label()
        splitter = XGBStratifiedKFold(n_splits=nfold, shuffle=True, random_state=seed)
        return list(splitter.split(X=labels, y=labels))
    bounds = dtrain.get_uint_info("group_ptr").astype(np.int64)
    n = len(bounds) - 1 if len(bounds) > 1 else dtrain.num_row()
    idx = np.random.RandomState(seed).permutation(n) if shuffle is True else np.arange(n)
    out = np.array_split(idx, nfold)
    pairs = [(np.concatenate([out[i] for i in range(nfold) if i != k]), out[k]) for k in range(nfold)]
    if len(bounds) <= 1:
        return pairs

    def rows(groups: Any) -> Any:
        return np.concatenate([np.arange(bounds[g], bounds[g + 1]) for g in groups] or [np.arange(0)])

    return [(rows(train), rows(test)) for train, test in pairs]


def cv_params(found: Mapping[str, Any], rows: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """The ``cv/*`` design of an ``xgb.cv`` call (:func:`labledger.integrations.base.cv_design_params`);
    ``rows`` are the measured fold sizes, which win over the sizes of the recomputed folds."""
    folds, dtrain = found.get("folds"), found.get("dtrain")
    if folds is not None and not callable(getattr(folds, "split", None)):
        params = cv_design_params(list(folds))
    elif folds is not None:  # a splitter: xgboost splits the labels, without groups
        labels = dtrain.get_label() if isinstance(dtrain, xgb.DMatrix) else None
        params = cv_design_params(folds, X=labels, y=labels)
        params["cv/random_state"] = plain(getattr(folds, "random_state", None))
    else:
        stratified, shuffle = found.get("stratified", False), found.get("shuffle", True)
        seed = found.get("seed", 0)
        splits = _nfold_splits(dtrain, found.get("nfold", 3), seed, stratified, shuffle)
        params = cv_design_params(splits=splits) if splits else {"cv/n_splits": found.get("nfold")}
        params["cv/class"] = "xgboost.nfold"
        params["cv/shuffle"] = True if stratified is not False else shuffle is True
        params["cv/random_state"] = seed
        params.setdefault("cv/fingerprint", None)
    if rows:
        train, test = [r[0] for r in rows], [r[1] for r in rows]
        params.update(
            {
                "cv/n_splits": len(rows),
                "cv/train_sizes": train,
                "cv/test_sizes": test,
                "cv/n_train": sum(train) / len(train),
                "cv/n_test": sum(test) / len(test),
            }
        )
    return {k: plain(v) for k, v in params.items()}


def wrapper_params(estimator: Any, found: Mapping[str, Any]) -> dict[str, Any]:
    """A scikit-learn wrapper's params: ``get_params()`` as ``xgb/*``, what ``fit`` was given as ``fit/*``."""
    given = dict(estimator.get_params(deep=False))
    callbacks = given.pop("callbacks", None)
    params: dict[str, Any] = {f"xgb/{k}": plain(v) for k, v in given.items()}
    params["xgb/callbacks"] = [qualified_name(c) for c in callbacks] if callbacks else None
    eval_set = found.get("eval_set")
    params["fit/eval_set"] = len(eval_set) if eval_set else 0
    params["fit/sample_weight"] = found.get("sample_weight") is not None
    params["fit/xgb_model"] = found.get("xgb_model") is not None
    return params


def _fingerprintable(data: Any) -> bool:
    """A DMatrix keeps its data; a QuantileDMatrix (the scikit-learn wrapper's default) does not."""
    return isinstance(data, xgb.DMatrix) and not isinstance(data, xgb.QuantileDMatrix)


def log_dmatrix_datasets(run: ll.Run, found: Mapping[str, Any]) -> None:
    """Fingerprints of the DMatrix data given to ``xgb.train``/``xgb.cv``: ``dtrain``, ``eval/<name>``."""
    dtrain = found.get("dtrain")
    if _fingerprintable(dtrain):
        run.log_dataset("dtrain", dtrain, role="train")
    for data, name in found.get("evals") or ():
        if _fingerprintable(data) and data is not dtrain:
            run.log_dataset(f"eval/{name}", data, role="evaluation")


def log_wrapper_datasets(run: ll.Run, found: Mapping[str, Any]) -> None:
    """Fingerprints of a wrapper's ``fit(X, y, eval_set=...)``: ``X``, ``y``, ``validation_<i>/X``, ..."""

    def one(name: str, data: Any, role: str) -> None:
        if data is not None:
            with suppress(InvalidValueError):  # a type no plugin fingerprints
                run.log_dataset(name, data, role=role)

    one("X", found.get("X"), "train")
    one("y", found.get("y"), "target")
    for i, pair in enumerate(found.get("eval_set") or ()):
        if isinstance(pair, list | tuple) and len(pair) == 2:
            one(f"validation_{i}/X", pair[0], "evaluation")
            one(f"validation_{i}/y", pair[1], "evaluation")


def log_config(run: ll.Run, booster: xgb.Booster) -> None:
    """The booster's full effective configuration (``save_config()``, defaults included) as JSON."""
    config = json.loads(booster.save_config())
    with tempfile.TemporaryDirectory(prefix="labledger-xgb-") as tmp:
        path = Path(tmp) / CONFIG_ARTIFACT
        path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
        meta = {"format": "json", "source": "xgboost.Booster.save_config"}
        run.log_artifact(path, kind="config", name=CONFIG_ARTIFACT, metadata=meta)


def log_checkpoint(run: ll.Run, booster: xgb.Booster, iteration: int) -> None:
    with tempfile.TemporaryDirectory(prefix="labledger-xgb-") as tmp:
        path = Path(tmp) / f"checkpoint-{iteration:06d}.ubj"
        booster.save_model(path)
        meta = {"iteration": iteration, "format": "ubj"}
        run.log_artifact(path, kind="checkpoint", name=path.name, metadata=meta)


def best(model: Any) -> dict[str, float]:
    """``xgb/best_iteration`` and ``xgb/best_score`` when early stopping set them."""
    out: dict[str, float] = {}
    iteration, score = model.attr("best_iteration"), model.attr("best_score")
    if iteration is not None:
        out["xgb/best_iteration"] = float(int(iteration))
    if score is not None:
        value = _first_number(score)
        if value is not None:
            out["xgb/best_score"] = value
    return out


def _first_number(text: str) -> float | None:
    """A score attribute as a number: ``"0.31"``, or the mean of ``"(0.31, 0.02)"`` (xgb.cv, xgboost 2.0)."""
    try:
        return float(text)
    except ValueError:
        head = text.strip().lstrip("([").split(",")[0].strip()
        try:
            return float(head)
        except ValueError:
            return None


def log_booster(run: ll.Run, booster: xgb.Booster) -> None:
    """The model ``xgb.train`` returns, as ``model.ubj`` (a ``model`` artifact)."""
    with tempfile.TemporaryDirectory(prefix="labledger-xgb-") as tmp:
        path = Path(tmp) / "model.ubj"
        booster.save_model(path)
        meta: dict[str, Any] = {"format": "ubj", "num_boosted_rounds": booster.num_boosted_rounds()}
        found = best(booster)
        if "xgb/best_iteration" in found:
            meta["best_iteration"] = int(found["xgb/best_iteration"])
        if "xgb/best_score" in found:
            meta["best_score"] = found["xgb/best_score"]
        run.log_model(booster, name=path.name, path=path, metadata=meta)


def importance_types(booster: xgb.Booster) -> tuple[str, ...]:
    """The importance types ``booster`` defines: ``gain``, ``weight`` and ``cover`` for trees,
    ``weight`` (its coefficients) alone for ``gblinear``."""
    try:
        name = json.loads(booster.save_config())["learner"]["gradient_booster"]["name"]
    except (KeyError, TypeError, ValueError, xgb.core.XGBoostError):
        name = None
    return ("weight",) if name == "gblinear" else IMPORTANCE_TYPES


def _magnitude(value: Any) -> float:
    """How important a feature is by one score (a multi-class linear booster gives one per class)."""
    if isinstance(value, list | tuple):
        return max((abs(float(v)) for v in value), default=0.0)
    return abs(float(value))


def importance_table(booster: xgb.Booster) -> list[dict[str, Any]]:
    """One row per feature the booster uses: its gain, weight and cover (``Booster.get_score``;
    a ``gblinear`` booster's weight only), most important first."""
    kinds = importance_types(booster)
    scores = {kind: booster.get_score(importance_type=kind) for kind in kinds}
    features = list(dict.fromkeys(f for kind in kinds for f in scores[kind]))
    rows = [{"feature": f, **{kind: scores[kind].get(f, 0.0) for kind in kinds}} for f in features]
    return sorted(rows, key=lambda r: -_magnitude(r[kinds[0]]))


def log_importance(run: ll.Run, booster: xgb.Booster) -> None:
    rows = importance_table(booster)
    if not rows:
        return
    kinds = [k for k in IMPORTANCE_TYPES if k in rows[0]]
    with tempfile.TemporaryDirectory(prefix="labledger-xgb-") as tmp:
        table = Path(tmp) / "feature_importance.csv"
        with open(table, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["feature", *kinds])
            writer.writeheader()
            writer.writerows(rows)
        run.log_artifact(table, kind="feature_importance", name=table.name, metadata={"features": len(rows)})
        plot = Path(tmp) / "feature_importance.png"
        if _plot_importance(rows, kinds[0], plot):
            run.log_artifact(plot, kind="plot", name=plot.name, metadata={"importance_type": kinds[0]})


def _plot_importance(rows: list[dict[str, Any]], kind: str, path: Path, top: int = 20) -> bool:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    shown = rows[:top][::-1]
    labels = [str(r["feature"]) for r in shown]
    width, height = 6.0, 0.3 * len(shown) + 1.2
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    # fixed margins (tight_layout measures every label and costs more than drawing the figure)
    left = min(0.6, (0.3 + 0.075 * max(map(len, labels))) / width)
    fig.subplots_adjust(left=left, right=0.96, bottom=0.55 / height, top=1 - 0.4 / height)
    ax = fig.subplots()
    ax.barh(labels, [_magnitude(r[kind]) for r in shown])
    ax.set_xlabel(kind)
    ax.set_title("XGBoost feature importance")
    fig.savefig(path, dpi=100)
    return True


def parse_fold_scores(lines: list[str]) -> dict[tuple[str, str], list[float]]:
    """``xgb.cv``'s per-fold evaluation lines → ``{(data, metric): [fold 0, fold 1, ...]}``.

    A line reads ``[3]\\ttrain-logloss:0.41\\ttest-logloss:0.45\\ttest-my_metric:0.1``; the
    data name ends at the first ``-``, as in xgboost's own parsing.
    """
    out: dict[tuple[str, str], list[float]] = {}
    for line in lines:
        text = line.decode() if isinstance(line, bytes) else str(line)
        for item in text.split()[1:]:
            name, _, value = item.rpartition(":")
            data, _, metric = name.partition("-")
            out.setdefault((data, metric), []).append(float(value))
    return out


#: xgboost's metrics where higher is better (its early stopping's rule, plus the accuracy it reports).
_MAXIMIZED = frozenset({"auc", "aucpr", "pre", "map", "ndcg", "interval-regression-accuracy"})
_MINIMIZED = frozenset(
    {"rmse", "rmsle", "mae", "mape", "mphe", "logloss", "error", "merror", "mlogloss", "quantile"}
    | {"poisson-nloglik", "gamma-nloglik", "cox-nloglik", "gamma-deviance", "tweedie-nloglik"}
    | {"aft-nloglik", "expectile"}
)


def metric_direction(metric: str, maximize: Any = None) -> str | None:
    """``max`` or ``min`` for an xgboost metric (``ndcg@5-``, ``error@0.7`` by their base name); a
    custom metric follows ``maximize`` when it was given, else ``None`` (unknown)."""
    base = metric.split("@", 1)[0].rstrip("-")
    if base in _MAXIMIZED:
        return "max"
    if base in _MINIMIZED:
        return "min"
    return None if maximize is None else ("max" if maximize else "min")


def log_cv_folds(run: ll.Run, scores: dict[tuple[str, str], list[float]]) -> None:
    """One iteration's per-fold values of every metric as folds (key = metric, split = data), and
    each metric's ``direction/<metric>``."""
    maximize = run.params.get("xgb/maximize")
    directions = {f"direction/{metric}": metric_direction(metric, maximize) for _, metric in scores}
    run.log_params({k: v for k, v in directions.items() if v is not None})
    for (data, metric), values in scores.items():
        run.log_folds(metric, values, split=data)
