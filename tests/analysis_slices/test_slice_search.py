"""Automatic slice search: a planted weak slice is found first; under the global null almost nothing is."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from labledger.analysis.multiple_testing import adjust_p_values
from labledger.analysis.slice_search import find_weak_slices
from labledger.errors import InvalidValueError

COLUMNS = ["slice", "support", "gap", "effect", "p_value", "p_adjusted", "test"]


@pytest.fixture(scope="module")
def cancer():
    data = load_breast_cancer(as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    y = data.target.to_numpy()
    proba = cross_val_predict(model, data.data, y, cv=5, method="predict_proba")
    rng = np.random.default_rng(7)
    features = data.data[["mean radius", "mean texture"]].assign(
        region=rng.choice(["north", "south", "east", "west"], len(y))
    )
    return features, y, proba.argmax(axis=1), proba


def _corrupt(features, y, pred, rate=0.4, seed=0):
    """The predictions made wrong on ``rate`` of the region=north examples."""
    rng = np.random.default_rng(seed)
    north = np.flatnonzero(features["region"].to_numpy() == "north")
    flipped = rng.choice(north, int(rate * len(north)), replace=False)
    pred = pred.copy()
    pred[flipped] = 1 - y[flipped]
    return pred


def test_planted_weak_category_is_the_top_slice(cancer):
    features, y, pred, _ = cancer
    found = find_weak_slices(y, _corrupt(features, y, pred), features)
    assert not found.empty and found["slice"].iloc[0] == "region=north"
    top = found.iloc[0]
    assert top["region"] == "north" and pd.isna(top["mean radius"]) and top["p_adjusted"] <= 0.05
    north = features["region"] == "north"
    corrupted = _corrupt(features, y, pred)
    errors = corrupted != y
    assert top["support"] == north.sum()
    assert top["error_rate"] == pytest.approx(errors[north].mean())
    assert top["gap"] == pytest.approx(errors[north].mean() - errors.mean())
    assert top["effect"] == pytest.approx(errors[north].mean() - errors[~north].mean())
    # minimal: no conjunction with region=north whose effect north alone already explains
    for _, row in found.iloc[1:].iterrows():
        if row["region"] == "north":
            assert row["effect"] > top["effect"]
    assert list(found.columns) == ["slice", "mean radius", "mean texture", "region", "support", "error_rate",
                                   "gap", "effect", "p_value", "p_adjusted", "test"]  # fmt: skip
    assert found["p_adjusted"].le(0.05).all() and found.attrs["n_tested"] > len(found)


def test_planted_weak_category_found_with_log_loss_and_regression(cancer):
    features, y, pred, proba = cancer
    north = (features["region"] == "north").to_numpy()
    worse = proba.copy()
    worse[north] = 0.5 * worse[north][:, ::-1] + 0.5 * worse[north]  # much less confident on north
    found = find_weak_slices(y, pred, features, proba=worse)
    assert found["slice"].iloc[0] == "region=north" and found.attrs["metric"] == "log_loss"
    assert set(found["test"]) == {"welch"}
    data = load_diabetes(as_frame=True)
    yr = data.target.to_numpy()
    predicted = cross_val_predict(Ridge(alpha=0.1), data.data, yr, cv=5)
    regions = np.random.default_rng(3).choice(["north", "south", "east"], len(yr))
    predicted[regions == "north"] += 60.0
    frame = data.data[["bmi", "sex"]].assign(region=regions)
    found = find_weak_slices(yr, predicted, frame)
    assert found["slice"].iloc[0] == "region=north" and found.attrs["metric"] == "mse"


def test_p_values_equal_scipy_and_statsmodels(cancer):
    features, y, pred, proba = cancer
    corrupted = _corrupt(features, y, pred)
    north = (features["region"] == "north").to_numpy()
    errors = corrupted != y
    row = find_weak_slices(y, corrupted, features[["region"]], correction="none").iloc[0]
    table = [[errors[north].sum(), (~errors[north]).sum()], [errors[~north].sum(), (~errors[~north]).sum()]]
    assert row["test"] == "fisher" and row["slice"] == "region=north"
    assert row["p_value"] == pytest.approx(stats.fisher_exact(table, alternative="greater").pvalue, rel=1e-9)
    # a small slice with few errors: the same exact test
    small = np.zeros(len(y), dtype=bool)
    small[np.flatnonzero(~errors)[:35]] = True
    small[np.flatnonzero(errors)[:6]] = True
    frame = pd.DataFrame({"group": np.where(small, "small", "rest")})
    fisher_row = find_weak_slices(y, corrupted, frame, correction="none", alpha=0.5)
    fisher_row = fisher_row[fisher_row["slice"] == "group=small"].iloc[0]
    table = [[errors[small].sum(), (~errors[small]).sum()], [errors[~small].sum(), (~errors[~small]).sum()]]
    assert fisher_row["test"] == "fisher"
    assert fisher_row["p_value"] == pytest.approx(stats.fisher_exact(table, alternative="greater").pvalue)
    # log losses: Welch's t-test
    worse = proba.copy()
    worse[north] = 0.7 * worse[north][:, ::-1] + 0.3 * worse[north]
    losses = -np.log(np.clip(worse[np.arange(len(y)), y], 1e-15, 1))
    welch_row = find_weak_slices(y, pred, features[["region"]], proba=worse, correction="none").iloc[0]
    expected = stats.ttest_ind(losses[north], losses[~north], equal_var=False, alternative="greater").pvalue
    assert welch_row["p_value"] == pytest.approx(expected, rel=1e-6)


def test_benjamini_hochberg_equals_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.uniform(0, 0.2, rng.integers(1, 40)) ** rng.uniform(0.5, 3)
        assert adjust_p_values(p, "fdr_bh") == pytest.approx(multipletests(p, method="fdr_bh")[1], rel=1e-12)


@pytest.mark.parametrize("correction", ["fdr_bh", "holm"])
def test_global_null_reports_a_slice_in_at_most_alpha_of_seeds(correction):
    alpha, seeds, n = 0.05, 200, 2000
    reported = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 3, n)
        wrong = rng.random(n) < 0.15
        pred = np.where(wrong, (y + 1) % 3, y)
        features = pd.DataFrame(
            {
                "region": rng.choice(["north", "south", "east", "west"], n),
                "device": rng.choice(["ios", "android", "web"], n),
                "age": rng.normal(40, 12, n),
            }
        )
        found = find_weak_slices(y, pred, features, alpha=alpha, correction=correction)
        reported += not found.empty
    tolerance = 3 * math.sqrt(alpha * (1 - alpha) / seeds)
    assert reported / seeds <= alpha + tolerance


def test_nothing_significant_gives_an_empty_frame_with_the_columns(cancer):
    features, y, _pred, _ = cancer
    found = find_weak_slices(y, y, features)  # no error anywhere
    assert found.empty and set(COLUMNS) <= set(found.columns) and "error_rate" in found.columns


def test_invalid_options_name_the_argument(cancer):
    features, y, pred, _ = cancer
    for key, kwargs in {
        "correction": {"correction": "fdr_by"},
        "max_features": {"max_features": 0},
        "min_support": {"min_support": -1},
        "alpha": {"alpha": 1.5},
    }.items():
        with pytest.raises(InvalidValueError) as error:
            find_weak_slices(y, pred, features, **kwargs)
        assert error.value.key == key
