"""Per-slice metrics against pandas groupby + sklearn.metrics, on real models trained on bundled data."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    mean_absolute_error,
    precision_recall_fscore_support,
    r2_score,
    root_mean_squared_error,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from labledger.analysis.slices import (
    MISSING,
    bin_columns,
    example_losses,
    hardest_examples,
    overall_summary,
    slice_metrics,
)
from labledger.errors import InvalidValueError


def _fit(loader, model):
    data = loader(as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(data.data, data.target, test_size=0.5, random_state=0)
    model.fit(x_train, y_train)
    return x_test.reset_index(drop=True), y_test.to_numpy(), model


@pytest.fixture(scope="module")
def cancer():
    x, y, model = _fit(load_breast_cancer, make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)))
    return x, y, model.predict(x), model.predict_proba(x), model.classes_


@pytest.fixture(scope="module")
def digits():
    x, y, model = _fit(load_digits, make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)))
    return x, y, model.predict(x), model.predict_proba(x), model.classes_


@pytest.fixture(scope="module")
def diabetes():
    x, y, model = _fit(load_diabetes, Ridge(alpha=0.1))
    return x, y, model.predict(x)


def _by_group(x, by, y, pred, proba=None):
    """The binned slice keys and a frame to group, computed directly with pandas."""
    frame = bin_columns(x[by]).astype(str).assign(y=y, pred=pred, row=np.arange(len(y)))
    return frame.groupby(by, observed=True)


@pytest.mark.parametrize("by", [["mean radius"], ["mean radius", "mean texture"]])
def test_accuracy_and_error_rate_equal_groupby_and_sklearn(cancer, by):
    x, y, pred, _, _ = cancer
    table = slice_metrics(y, pred, x, by)
    overall = accuracy_score(y, pred)
    assert table.attrs["metric"] == "accuracy" and table["overall"].eq(overall).all()
    expected = {
        keys if isinstance(keys, tuple) else (keys,): (len(g), accuracy_score(g["y"], g["pred"]))
        for keys, g in _by_group(x, by, y, pred)
    }
    got = {tuple(r[c] for c in by): (r["support"], r["accuracy"]) for _, r in table.iterrows()}
    assert got.keys() == expected.keys() and table["support"].sum() == len(y)
    for key, (support, accuracy) in expected.items():
        assert got[key][0] == support and got[key][1] == pytest.approx(accuracy, abs=1e-12)
    assert table["gap"].to_numpy() == pytest.approx(table["accuracy"].to_numpy() - overall)
    assert table["impact"].to_numpy() == pytest.approx(table["support"] * (overall - table["accuracy"]))
    assert table["impact"].is_monotonic_decreasing
    errors = slice_metrics(y, pred, x, by, metric="error_rate").set_index(by)
    assert errors["error_rate"].to_numpy() == pytest.approx(
        1 - table.set_index(by).loc[errors.index, "accuracy"]
    )
    assert errors["impact"].to_numpy() == pytest.approx(table.set_index(by).loc[errors.index, "impact"])


def test_wilson_interval_equals_statsmodels(cancer):
    from statsmodels.stats.proportion import proportion_confint

    x, y, pred, _, _ = cancer
    table = slice_metrics(y, pred, x, ["mean area", "mean smoothness"], alpha=0.1)
    hits = np.rint(table["accuracy"] * table["support"])
    low, high = proportion_confint(hits, table["support"], alpha=0.1, method="wilson")
    assert table["ci_low"].to_numpy() == pytest.approx(np.asarray(low), abs=1e-12)
    assert table["ci_high"].to_numpy() == pytest.approx(np.asarray(high), abs=1e-12)


def test_f1_macro_and_log_loss_equal_sklearn_per_slice(digits):
    x, y, pred, proba, classes = digits
    by = ["pixel_2_3"]
    f1 = slice_metrics(y, pred, x, by, metric="f1_macro", n_boot=200).set_index(by)
    losses = slice_metrics(y, pred, x, by, proba=proba, metric="log_loss", classes=classes, n_boot=200)
    losses = losses.set_index(by)
    assert f1.attrs["overall"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert losses.attrs["overall"] == pytest.approx(log_loss(y, proba, labels=classes))
    for key, g in _by_group(x, by, y, pred):
        rows = g["row"].to_numpy()
        assert f1.loc[key[0], "f1_macro"] == pytest.approx(f1_score(g["y"], g["pred"], average="macro"))
        expected = log_loss(y[rows], proba[rows], labels=classes)
        assert losses.loc[key[0], "log_loss"] == pytest.approx(expected, rel=1e-10)
    for table, metric in ((f1, "f1_macro"), (losses, "log_loss")):
        assert (table["ci_low"] <= table[metric] + 1e-12).all() and (
            table[metric] <= table["ci_high"] + 1e-12
        ).all()
    assert losses["impact"].to_numpy() == pytest.approx(losses["support"] * losses["gap"])  # lower is better


def test_regression_metrics_equal_sklearn_per_slice(diabetes):
    x, y, pred = diabetes
    by = ["sex", "bmi"]
    rmse = slice_metrics(y, pred, x, by, n_boot=100)
    assert rmse.attrs["task"] == "regression" and rmse.attrs["metric"] == "rmse"
    assert rmse["overall"].iloc[0] == pytest.approx(root_mean_squared_error(y, pred))
    mae = slice_metrics(y, pred, x, by, metric="mae", n_boot=100).set_index(by)
    mse = slice_metrics(y, pred, x, by, metric="mse", n_boot=100).set_index(by)
    rmse = rmse.set_index(by)
    assert len(rmse) == 2 * 4
    for key, g in _by_group(x, by, y, pred):
        assert rmse.loc[key, "rmse"] == pytest.approx(root_mean_squared_error(g["y"], g["pred"]))
        assert mae.loc[key, "mae"] == pytest.approx(mean_absolute_error(g["y"], g["pred"]))
        assert mse.loc[key, "mse"] == pytest.approx(root_mean_squared_error(g["y"], g["pred"]) ** 2)


def test_bootstrap_interval_is_seeded_and_narrows_with_support(diabetes):
    x, y, pred = diabetes
    first = slice_metrics(y, pred, x, ["sex"], n_boot=300, seed=1)
    again = slice_metrics(y, pred, x, ["sex"], n_boot=300, seed=1)
    other = slice_metrics(y, pred, x, ["sex"], n_boot=300, seed=2)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["ci_low"], other["ci_low"])
    assert ((first["ci_low"] < first["rmse"]) & (first["rmse"] < first["ci_high"])).all()


def test_bin_columns_labels_hold_their_values_and_missing_is_last():
    rng = np.random.default_rng(0)
    age = rng.integers(18, 90, 500).astype(float)
    age[:7] = np.nan
    frame = pd.DataFrame(
        {
            "age": age,
            "score": rng.normal(size=500),
            "city": rng.choice(["paris", "oslo", None], 500),
            "flag": rng.random(500) < 0.3,
            "level": pd.Categorical(rng.choice(["low", "high"], 500), categories=["low", "high"]),
            "grade": rng.integers(1, 4, 500),
        }
    )
    out = bin_columns(frame, bins=4)
    assert list(out["age"].cat.categories)[-1] == MISSING and (out["age"][:7] == MISSING).all()
    for column in ("age", "score"):
        labels = list(out[column].cat.categories.difference([MISSING]))
        assert 2 <= len(labels) <= 4 and out[column].cat.ordered
        for value, label in zip(frame[column], out[column], strict=True):
            if np.isnan(value):
                continue
            low, high = (float(v) for v in re.findall(r"[-+]?[\d.]+(?:e[-+]?\d+)?", label))
            slack = 1e-3 * max(abs(low), abs(high))  # labels show 4 significant digits
            left_ok = value >= low - slack if label.startswith("[") else value > low - slack
            assert left_ok and value <= high + slack, (value, label)
        counts = out[column].value_counts()
        assert counts.drop(MISSING, errors="ignore").min() >= 0.1 * len(frame)  # quantile bins are balanced
    assert list(out["level"].cat.categories) == ["low", "high"]
    assert set(out["city"].cat.categories) == {"oslo", "paris", MISSING}
    assert list(out["flag"].cat.categories) == ["False", "True"]
    assert list(out["grade"].cat.categories) == ["1", "2", "3"]


def test_example_losses_infers_the_task_and_matches_sklearn(digits, diabetes):
    _x, y, pred, proba, classes = digits
    zero_one = example_losses(y, pred)
    assert zero_one["task"] == "classification" and zero_one["loss_name"] == "zero_one"
    assert zero_one["loss"].mean() == pytest.approx(1 - accuracy_score(y, pred))
    logged = example_losses(y, pred, proba)  # classes 0..9 inferred from the labels
    assert logged["loss"].mean() == pytest.approx(log_loss(y, proba))
    frame = pd.DataFrame(proba, columns=classes)
    assert example_losses(y, pred, frame)["loss"] == pytest.approx(logged["loss"])
    _, yr, pr = diabetes
    regression = example_losses(yr, pr)
    assert regression["task"] == "regression" and regression["correct"] is None
    assert regression["loss"].mean() == pytest.approx(root_mean_squared_error(yr, pr) ** 2)
    assert example_losses(["a", "b"], ["a", "a"])["correct"].tolist() == [True, False]
    assert example_losses(np.array([1, 2]), np.array([1, 3]), task="regression")["loss"].tolist() == [0, 1]


def test_overall_summary_equals_sklearn(digits, diabetes):
    _x, y, pred, proba, classes = digits
    summary = overall_summary(y, pred, proba, classes=classes)
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, zero_division=0)
    per_class = summary["per_class"]
    assert per_class["precision"].to_numpy() == pytest.approx(precision)
    assert per_class["recall"].to_numpy() == pytest.approx(recall)
    assert per_class["f1"].to_numpy() == pytest.approx(f1)
    assert per_class["support"].tolist() == support.tolist()
    np.testing.assert_array_equal(summary["confusion"].to_numpy(), confusion_matrix(y, pred))
    assert list(summary["confusion"].index) == list(classes)
    assert summary["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert summary["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert summary["log_loss"] == pytest.approx(log_loss(y, proba))
    _, yr, pr = diabetes
    reg = overall_summary(yr, pr)
    assert reg["rmse"] == pytest.approx(root_mean_squared_error(yr, pr))
    assert reg["mae"] == pytest.approx(mean_absolute_error(yr, pr))
    assert reg["r2"] == pytest.approx(r2_score(yr, pr))
    assert reg["residual_quantiles"].to_numpy() == pytest.approx(
        np.quantile(yr - pr, [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1])
    )
    assert reg["mean_residual"] == pytest.approx(np.mean(yr - pr))


def test_hardest_examples_are_the_largest_losses(digits):
    _x, y, pred, proba, _classes = digits
    ids = np.array([f"img-{i}" for i in range(len(y))])
    top = hardest_examples(y, pred, ids, proba=proba, k=5)
    losses = -np.log(np.clip(proba[np.arange(len(y)), y], 1e-300, 1))
    expected = np.argsort(-losses, kind="stable")[:5]
    assert top["id"].tolist() == ids[expected].tolist()
    assert top["loss"].to_numpy() == pytest.approx(losses[expected])
    assert (
        top["y_true"].tolist() == y[expected].tolist() and top["y_pred"].tolist() == pred[expected].tolist()
    )
    wrong = hardest_examples(y, pred, ids, k=3)
    assert (wrong["loss"] == 1).all() and wrong["id"].tolist() == ids[pred != y][:3].tolist()


def test_invalid_arguments_name_the_argument(cancer):
    x, y, pred, proba, _ = cancer
    cases = {
        "metric": lambda: slice_metrics(y, pred, x, ["mean radius"], metric="rmse"),
        "by": lambda: slice_metrics(y, pred, x, ["no such column"]),
        "features": lambda: slice_metrics(y, pred, x.iloc[:10], ["mean radius"]),
        "y_pred": lambda: slice_metrics(y, pred[:-1], x, ["mean radius"]),
        "proba": lambda: slice_metrics(y, pred, x, ["mean radius"], metric="log_loss"),
        "classes": lambda: example_losses(y, pred, proba, classes=[0, 1, 2]),
        "task": lambda: example_losses(y, pred, task="ranking"),
        "bins": lambda: bin_columns(x, bins=0),
        "k": lambda: hardest_examples(y, pred, np.arange(len(y)), k=0),
    }
    for key, call in cases.items():
        with pytest.raises(InvalidValueError) as error:
            call()
        assert error.value.key == key
