"""Error analysis by slice: per-example losses, binned features and metrics per slice of the data.

Pure functions on NumPy arrays and pandas frames (no store, no I/O). A *slice* is the set of
examples sharing the values of some feature columns, numeric ones cut into quantile bins
(:func:`bin_columns`). Vectorised throughout: a million examples take well under a second.

>>> import pandas as pd
>>> table = slice_metrics([0, 1, 1, 0], [0, 1, 0, 1], pd.DataFrame({"site": list("aabb")}), by="site")
>>> table[["site", "support", "accuracy", "impact"]].values.tolist()
[['b', 2, 0.0, 1.0], ['a', 2, 1.0, -1.0]]
"""

from __future__ import annotations

import itertools
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from labledger.analysis.task_rule import infer_task
from labledger.errors import InvalidValueError

__all__ = ["bin_columns", "example_losses", "hardest_examples", "overall_summary", "slice_metrics"]

#: metric → (task it applies to, whether higher is better)
METRICS = {"accuracy": ("classification", True), "error_rate": ("classification", False)}
METRICS |= {"log_loss": ("classification", False), "f1_macro": ("classification", True)}
METRICS |= dict.fromkeys(("rmse", "mae", "mse"), ("regression", False))
#: metrics that are proportions of examples: their interval is Wilson's score interval
PROPORTIONS = frozenset({"accuracy", "error_rate"})
MISSING = "missing"  #: the label of a missing feature value
DEFAULT_BOOT = 1000  #: bootstrap resamples for a metric that is not a proportion (``n_boot=0``)
_QUANTILES = {"min": 0.0, "5%": 0.05, "25%": 0.25, "50%": 0.5, "75%": 0.75, "95%": 0.95, "max": 1.0}


def example_losses(
    y_true: Any, y_pred: Any, proba: Any = None, task: str | None = None, *, classes: Any = None
) -> dict[str, Any]:
    """Each example's loss, and whether it is predicted right.

    ``task`` is guessed unless given: classification when ``proba`` is given or the predictions
    are labels (see :func:`~labledger.analysis.task_rule.infer_task`).
    The loss is the 0/1 loss; with ``proba`` (columns in the order of ``classes``, the model's
    ``classes_``, by default a DataFrame's columns, the sorted labels or ``0..k−1``) the log
    loss of the true class, clipped as ``sklearn.metrics.log_loss``; regression: squared error.
    Returns ``{"task", "loss_name", "loss", "correct", "residual"}``: ``correct`` for
    classification, ``residual = y_true − y_pred`` for regression (else None).

    >>> out = example_losses([1, 0, 1], [1, 1, 1])
    >>> out["task"], out["loss"].tolist(), out["correct"].tolist()
    ('classification', [0.0, 1.0, 0.0], [True, False, True])
    >>> example_losses([2.0, 3.0], [2.5, 1.5])["loss"].tolist()
    [0.25, 2.25]
    """
    yt, yp = _vectors(y_true, y_pred)
    task = infer_task(yp, proba, task, yt)
    if task == "regression":
        truth, predicted = _floats(yt, yp)
        residual = truth - predicted
        return dict(task=task, loss_name="squared_error", loss=residual**2, correct=None, residual=residual)
    correct = _correct(yt, yp)
    name, loss = ("zero_one", ~correct * 1.0) if proba is None else ("log_loss", None)
    loss = true_class_log_loss(yt, yp, proba, classes) if loss is None else loss
    return dict(task=task, loss_name=name, loss=loss, correct=correct, residual=None)


def bin_columns(features: pd.DataFrame, bins: int = 4) -> pd.DataFrame:
    """The columns as ordered categoricals of readable labels, one category per slice value.

    Categorical, bool and text columns keep their values (as strings), as do numeric columns
    with at most ``bins`` distinct values; other numeric columns are cut at quantiles (data
    values; ties merge bins) into intervals like ``[18, 21]``, ``(21, 34]``... Missing values
    become :data:`MISSING`, the last category. Categories are in natural order (sorting sorts
    the intervals).

    >>> frame = pd.DataFrame({"age": [20, 30, 40, 50, 60, None], "smoker": [1, 0, 1, 1, 0, 1]})
    >>> out = bin_columns(frame, bins=2)
    >>> out["age"].tolist(), out["smoker"].tolist()
    (['[20, 40]', '[20, 40]', '[20, 40]', '(40, 60]', '(40, 60]', 'missing'], ['1', '0', '1', '1', '0', '1'])
    """
    if not isinstance(features, pd.DataFrame):
        raise InvalidValueError("features", features, "expected a pandas DataFrame, one column per feature")
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise InvalidValueError("bins", bins, "expected an integer ≥ 1 (quantile bins per numeric column)")
    return pd.DataFrame({c: _bin_one(features[c], int(bins)) for c in features.columns}, index=features.index)


def slice_metrics(
    y_true: Any,
    y_pred: Any,
    features: pd.DataFrame,
    by: list[str] | str,
    *,
    proba: Any = None,
    metric: str | None = None,
    task: str | None = None,
    alpha: float = 0.05,
    bins: int = 4,
    n_boot: int = 0,
    seed: int = 0,
    classes: Any = None,
) -> pd.DataFrame:
    """One row per slice: each combination of values of the ``by`` columns (binned by :func:`bin_columns`).

    Columns: the ``by`` columns, ``support``, the metric named after it (default ``accuracy``
    or ``rmse``; also ``error_rate``, ``log_loss``, ``f1_macro``, ``mae``, ``mse``),
    ``overall`` (on every example), ``gap`` (slice − overall), the ``1 − alpha`` interval
    ``ci_low``/``ci_high`` (Wilson's for accuracy and error rate, else a percentile bootstrap
    of ``n_boot`` resamples, 0 meaning :data:`DEFAULT_BOOT`) and ``impact``, the examples' worth
    of metric lost against the overall level: ``support × (overall − metric)`` when higher is
    better, ``support × (metric − overall)`` otherwise. Sorted by impact, worst slice first.

    >>> frame = pd.DataFrame({"x": [1, 2, 3, 4]})
    >>> slice_metrics([1.5, 2, 3, 4], [1.5, 2, 3, 6], frame, by="x", bins=2)[["x", "rmse"]].values.tolist()
    [['(2, 4]', 1.4142135623730951], ['[1, 2]', 0.0]]
    """
    yt, yp = _vectors(y_true, y_pred)
    task = infer_task(yp, proba, task, yt)
    by, metric = check_features(features, len(yt), by), _check_metric(metric, task, proba, alpha, n_boot)
    values = _metric_inputs(metric, yt, yp, proba, classes)
    group, keys = group_codes(bin_columns(features[by], bins))
    n_groups = len(keys)
    support = np.bincount(group, minlength=n_groups)
    per_slice = _by_group(metric, values, group, n_groups, support)
    overall = float(_by_group(metric, values, np.zeros(len(yt), np.intp), 1, np.array([len(yt)]))[0])
    if metric in PROPORTIONS:
        ci_low, ci_high = wilson_interval(per_slice, support, alpha)
    else:
        ci_low, ci_high = _bootstrap(metric, values, group, n_groups, n_boot or DEFAULT_BOOT, alpha, seed)
    higher, gap = METRICS[metric][1], per_slice - overall
    table = keys.assign(support=support, **{metric: per_slice}, overall=overall, gap=gap)
    table = table.assign(ci_low=ci_low, ci_high=ci_high, impact=support * (-gap if higher else gap))
    table = table.sort_values("impact", ascending=False, kind="stable").reset_index(drop=True)
    table.attrs.update(metric=metric, task=task, overall=overall, higher_is_better=higher)
    return table


def overall_summary(
    y_true: Any, y_pred: Any, proba: Any = None, task: str | None = None, *, classes: Any = None
) -> dict[str, Any]:
    """The whole test set at a glance.

    Classification: ``accuracy``, ``error_rate``, ``f1_macro``, ``per_class`` (precision,
    recall, f1 and support per label, 0 where undefined), ``confusion`` (true labels as rows,
    predicted as columns) and, with ``proba``, ``log_loss``. Regression: ``rmse``, ``mae``,
    ``r2``, ``residual_quantiles`` (min, 5%, 25%, 50%, 75%, 95%, max of ``y_true − y_pred``)
    and ``mean_residual``. Both carry ``task`` and ``n``.

    >>> summary = overall_summary(["cat", "dog", "dog"], ["cat", "cat", "dog"])
    >>> round(summary["accuracy"], 3), int(summary["confusion"].loc["dog", "cat"])
    (0.667, 1)
    """
    yt, yp = _vectors(y_true, y_pred)
    task = infer_task(yp, proba, task, yt)
    n = len(yt)
    if task == "regression":
        truth, predicted = _floats(yt, yp)
        residual = truth - predicted
        ss_res, ss_tot = float(np.sum(residual**2)), float(np.sum((truth - truth.mean()) ** 2))
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
        quantiles = pd.Series(np.quantile(residual, list(_QUANTILES.values())), index=list(_QUANTILES))
        out = dict(task=task, n=n, rmse=float(np.sqrt(ss_res / n)), mae=float(np.mean(np.abs(residual))))
        return out | {"r2": r2, "residual_quantiles": quantiles, "mean_residual": float(residual.mean())}
    labels, t, p = encode_labels(yt, yp)
    k = len(labels)
    confusion = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    hits, truth, predicted = np.diag(confusion).astype(float), confusion.sum(axis=1), confusion.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, truth, out=np.zeros(k), where=truth > 0)
    f1 = np.divide(2 * hits, truth + predicted, out=np.zeros(k), where=truth + predicted > 0)
    per_class = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": truth})
    summary: dict[str, Any] = dict(task=task, n=n, accuracy=float(hits.sum() / n))
    summary["error_rate"], summary["f1_macro"] = 1.0 - summary["accuracy"], float(f1.mean())
    summary["per_class"] = per_class.set_axis(pd.Index(labels, name="label"))
    axes = {"index": pd.Index(labels, name="true"), "columns": pd.Index(labels, name="predicted")}
    summary["confusion"] = pd.DataFrame(confusion, **axes)
    if proba is not None:
        summary["log_loss"] = float(np.mean(true_class_log_loss(yt, yp, proba, classes)))
    return summary


def hardest_examples(
    y_true: Any, y_pred: Any, ids: Any, proba: Any = None, k: int = 10, task: str | None = None
) -> pd.DataFrame:
    """The ``k`` examples with the largest loss (see :func:`example_losses`; a DataFrame ``proba``
    names its classes by its columns).

    Columns ``id``, ``y_true``, ``y_pred``, ``loss``, worst first; ties keep the order given.

    >>> hardest_examples([1.5, 2.5, 3.5], [1.5, 5.5, 2.5], ids=["a", "b", "c"], k=2)["id"].tolist()
    ['b', 'c']
    """
    yt, yp = _vectors(y_true, y_pred)
    ids = _vector("ids", ids, len(yt))
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidValueError("k", k, "expected an integer ≥ 1")
    loss = example_losses(yt, yp, proba, task)["loss"]
    top = np.argsort(-loss, kind="stable")[:k]
    return pd.DataFrame({"id": ids[top], "y_true": yt[top], "y_pred": yp[top], "loss": loss[top]})


def encode_labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, codes of y_true, codes of y_pred)`` over the sorted union of both."""
    both = np.concatenate([_common(y_true, y_pred), _common(y_pred, y_true)])
    try:
        codes, labels = pd.factorize(both, sort=True)
    except TypeError:  # labels of types that do not sort together
        codes, labels = pd.factorize(both)
    return np.asarray(labels), codes[: len(y_true)], codes[len(y_true) :]


def true_class_log_loss(y_true: np.ndarray, y_pred: np.ndarray, proba: Any, classes: Any) -> np.ndarray:
    """``-log p(true class)`` per example, ``p`` clipped to ``[ε, 1−ε]``."""
    matrix = np.asarray(proba, dtype=float)
    matrix = np.column_stack([1.0 - matrix, matrix]) if matrix.ndim == 1 else matrix
    if matrix.ndim != 2 or matrix.shape[0] != len(y_true):
        raise InvalidValueError("proba", f"shape {matrix.shape}", f"expected ({len(y_true)}, n_classes)")
    k = matrix.shape[1]
    classes = proba.columns if classes is None and isinstance(proba, pd.DataFrame) else classes
    if classes is None:
        classes = encode_labels(y_true, y_pred)[0]
        if len(classes) != k and y_true.dtype.kind in "iu" and y_true.min() >= 0 and y_true.max() < k:
            classes = np.arange(k)
    classes = np.asarray(classes)
    if len(classes) != k:
        raise InvalidValueError("classes", classes, f"expected the {k} classes of proba's columns, in order")
    column = pd.Index(classes).get_indexer(y_true)
    if (column < 0).any():
        raise InvalidValueError("y_true", y_true[np.argmax(column < 0)], f"not among the classes {classes}")
    eps = np.finfo(float).eps
    return -np.log(np.clip(matrix[np.arange(len(y_true)), column], eps, 1 - eps))


def group_codes(binned: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Each example's slice number and the slices' values (one row per non-empty slice, in order)."""
    codes = [binned[c].cat.codes.to_numpy(np.int64) for c in binned]
    sizes = [binned[c].cat.categories.size for c in binned]
    combined = np.ravel_multi_index(codes, sizes) if len(codes) > 1 else codes[0]
    group, present = pd.factorize(combined, sort=True)
    positions = np.unravel_index(present, sizes)
    categories = [np.asarray(binned[c].cat.categories, dtype=object) for c in binned.columns]
    keys = {c: cats[pos] for c, cats, pos in zip(binned.columns, categories, positions, strict=True)}
    return group, pd.DataFrame(keys)


def wilson_interval(p: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval for proportions ``p`` of ``n`` trials (vectorised)."""
    z2, n = NormalDist().inv_cdf(1 - alpha / 2) ** 2, np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre, half = p + z2 / (2 * n), np.sqrt(z2 * p * (1 - p) / n + z2**2 / (4 * n**2))
        return np.clip((centre - half) / (1 + z2 / n), 0, 1), np.clip((centre + half) / (1 + z2 / n), 0, 1)


def _vector(name: str, values: Any, n: int | None = None) -> np.ndarray:
    array = values.to_numpy() if isinstance(values, pd.Series | pd.Index) else np.asarray(values)
    if array.ndim != 1 or len(array) != (len(array) if n is None else n) or not len(array):
        raise InvalidValueError(name, f"shape {array.shape}", f"expected one value per example ({n or '≥1'})")
    return array


def _vectors(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    return (yt := _vector("y_true", y_true)), _vector("y_pred", y_pred, len(yt))


def _floats(*arrays: np.ndarray) -> list[np.ndarray]:
    try:
        return [np.asarray(a, dtype=float) for a in arrays]
    except (TypeError, ValueError):
        raise InvalidValueError("y_pred", arrays[-1][:3], "regression needs numbers; pass task=") from None


def _correct(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.asarray(_common(y_true, y_pred) == _common(y_pred, y_true), dtype=bool)


def _common(values: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``values`` as objects when the two arrays' kinds differ (so they concatenate and compare)."""
    return values.astype(object) if values.dtype.kind != other.dtype.kind else values


def check_features(features: Any, n: int, columns: list[str] | str | None) -> list[str]:
    """The slicing columns (all by default) of a frame with one row per example, checked."""
    if not isinstance(features, pd.DataFrame) or len(features) != n:
        raise InvalidValueError("features", type(features), f"expected a DataFrame of {n} rows (examples)")
    names = [columns] if isinstance(columns, str) else list(features.columns if columns is None else columns)
    if not names or any(c not in features.columns for c in names):
        raise InvalidValueError("by", columns, f"expected columns of features: {list(features.columns)}")
    return names


def _check_metric(metric: str | None, task: str, proba: Any, alpha: float, n_boot: int) -> str:
    metric = metric or ("accuracy" if task == "classification" else "rmse")
    if metric not in METRICS or METRICS[metric][0] != task:
        choices = ", ".join(m for m, (t, _) in METRICS.items() if t == task)
        raise InvalidValueError("metric", metric, f"for {task} use one of {choices}")
    if metric == "log_loss" and proba is None:
        raise InvalidValueError("proba", None, "the log_loss metric needs predicted probabilities")
    if not 0.0 < alpha < 1.0 or n_boot < 0:
        raise InvalidValueError("alpha", (alpha, n_boot), "expected 0 < alpha < 1 and n_boot ≥ 0")
    return metric


def _metric_inputs(metric: str, yt: np.ndarray, yp: np.ndarray, proba: Any, classes: Any) -> np.ndarray:
    """Per-example values the metric averages (for f1_macro: label codes as a (2, n) array)."""
    if metric in PROPORTIONS:
        correct = _correct(yt, yp)
        return (correct if metric == "accuracy" else ~correct).astype(float)
    if metric == "log_loss":
        return true_class_log_loss(yt, yp, proba, classes)
    if metric == "f1_macro":
        return np.vstack(encode_labels(yt, yp)[1:])
    truth, predicted = _floats(yt, yp)
    return np.abs(truth - predicted) if metric == "mae" else (truth - predicted) ** 2


def _by_group(metric: str, v: np.ndarray, group: np.ndarray, n_groups: int, size: np.ndarray) -> np.ndarray:
    if metric == "f1_macro":  # macro F1 over the labels present (true or predicted), as sklearn
        t, p = v
        k = int(v.max(initial=0)) + 1
        cells = n_groups * k
        hits = np.bincount(group * k + t, weights=(t == p), minlength=cells)
        present = np.bincount(group * k + t, minlength=cells) + np.bincount(group * k + p, minlength=cells)
        f1 = np.divide(2 * hits, present, out=np.zeros(cells), where=present > 0).reshape(n_groups, k)
        return f1.sum(axis=1) / (present.reshape(n_groups, k) > 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(group, weights=v, minlength=n_groups) / size
    return np.sqrt(mean) if metric == "rmse" else mean


def _bootstrap(
    metric: str, values: np.ndarray, group: np.ndarray, n_groups: int, n_boot: int, alpha: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval per group, resampling examples within the group."""
    rng = np.random.default_rng(seed)
    order, low, high = np.argsort(group, kind="stable"), np.empty(n_groups), np.empty(n_groups)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=n_groups))])
    for g in range(n_groups):
        members = order[bounds[g] : bounds[g + 1]]
        m, stats = len(members), []
        chunk = max(1, 2_000_000 // m)  # resamples drawn at once, bounding memory
        for start in range(0, n_boot, chunk):
            reps = min(chunk, n_boot - start)
            picks = members[rng.integers(0, m, size=reps * m)]
            rows = np.repeat(np.arange(reps), m)
            stats.append(_by_group(metric, values[..., picks], rows, reps, np.full(reps, m)))
        low[g], high[g] = np.quantile(np.concatenate(stats), [alpha / 2, 1 - alpha / 2])
    return low, high


def _bin_one(column: pd.Series, bins: int) -> pd.Categorical:
    """An ordered categorical of labels for one column."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes, labels = np.asarray(column.cat.codes, dtype=np.int64), [str(c) for c in column.cat.categories]
    elif pd.api.types.is_bool_dtype(column.dtype) or not pd.api.types.is_numeric_dtype(column.dtype):
        try:
            codes, found = pd.factorize(column, sort=True)
        except TypeError:  # mixed types that do not sort together
            codes, found = pd.factorize(column)
        labels = [str(u) for u in found]
    else:
        x = np.asarray(column, dtype=float)
        distinct = np.sort(pd.unique(finite := x[~np.isnan(x)]))
        if len(distinct) <= bins:
            codes, labels = np.searchsorted(distinct, x), _numbers(distinct)
        else:  # right-closed bins between quantiles, as pandas.qcut
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1), method="inverted_cdf"))
            codes, shown = np.searchsorted(edges[1:-1], x), _numbers(edges)
            labels = [f"[{shown[0]}, {shown[1]}]"] + [f"({a}, {b}]" for a, b in itertools.pairwise(shown[1:])]
        codes = np.where(np.isnan(x), -1, codes)
    remap, uniques = pd.factorize(np.asarray([*labels, None], dtype=object))  # equal strings merge
    codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    categories = [str(u) for u in uniques]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(categories), codes)
        categories.append(MISSING if MISSING not in categories else f"<{MISSING}>")
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object), ordered=True)


def _numbers(values: np.ndarray) -> list[str]:
    """Shortest readable labels (integers plain, else 4+ significant digits) keeping values distinct."""
    if np.all(values == np.round(values)) and np.all(np.abs(values) < 1e15):
        return [str(int(v)) for v in values]
    shown = [f"{v:.4g}" for v in values]
    return shown if len(set(shown)) == len(shown) else [repr(float(v)) for v in values]
