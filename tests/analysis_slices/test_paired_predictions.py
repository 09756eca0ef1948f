"""Two models on the same examples: alignment, McNemar (against statsmodels), paired loss tests, flips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.contingency_tables import mcnemar

from labledger.analysis.paired_predictions import (
    ALL,
    TestSetMismatchError,
    align,
    flips,
    mcnemar_test,
    paired_loss_test,
)
from labledger.analysis.slices import bin_columns, example_losses
from labledger.errors import InvalidValueError, LabledgerError


@pytest.fixture(scope="module")
def two_models():
    data = load_digits(as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(data.data, data.target, test_size=0.4, random_state=1)
    a = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_train, y_train)
    b = GaussianNB().fit(x_train, y_train)
    y = y_test.to_numpy()
    return x_test.reset_index(drop=True), y, a.predict(x_test), b.predict(x_test), a, b


def test_align_pairs_permuted_ids_and_refuses_mismatches():
    ids_a = np.array([f"ex-{i}" for i in range(100)])
    order = np.random.default_rng(0).permutation(100)
    idx_a, idx_b = align(ids_a, ids_a[order])
    assert (ids_a[idx_a] == ids_a[order][idx_b]).all() and idx_a.tolist() == list(range(100))
    with pytest.raises(TestSetMismatchError) as error:
        align(ids_a, np.concatenate([ids_a[3:], ["new-1", "new-2"]]))
    assert isinstance(error.value, ValueError) and isinstance(error.value, LabledgerError)
    assert len(error.value.only_a) == 3 and len(error.value.only_b) == 2
    assert "3 ids only in A" in str(error.value) and "2 ids only in B" in str(error.value)
    assert "same test set" in str(error.value)
    with pytest.raises(TestSetMismatchError, match="1 id only in A"):
        align(ids_a, ids_a[1:])
    with pytest.raises(TestSetMismatchError, match="repeated in B") as error:
        align(ids_a[:3], ids_a[[0, 1, 1]])
    assert error.value.duplicates_b == ["ex-1"]


def test_mcnemar_equals_statsmodels_on_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(5, 400))
        a = rng.random(n) < rng.uniform(0.2, 0.95)
        b = np.where(rng.random(n) < rng.uniform(0, 0.5), ~a, a)
        if (a != b).sum() == 0:
            continue
        table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
        for exact in (None, True, False):
            result = mcnemar_test(a, b, exact=exact)
            use_exact = (a != b).sum() < 25 if exact is None else exact
            expected = mcnemar(table, exact=use_exact, correction=True)
            assert result.exact == use_exact
            assert result.p_value == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-300)
            assert result.statistic == pytest.approx(float(expected.statistic), rel=1e-12)
            assert (result.n01, result.n10) == (table[0][1], table[1][0])


def test_mcnemar_on_two_real_models(two_models):
    _x, y, pred_a, pred_b, _, _ = two_models
    correct_a, correct_b = pred_a == y, pred_b == y
    result = mcnemar_test(correct_a, correct_b)
    assert result.n01 == np.sum(correct_a & ~correct_b) and result.n10 == np.sum(~correct_a & correct_b)
    assert result.n == len(y) and not result.exact
    cells = pd.crosstab(pd.Series(correct_a, name="a"), pd.Series(correct_b, name="b"))
    table = [[cells.at[True, True], cells.at[True, False]], [cells.at[False, True], cells.at[False, False]]]
    assert result.p_value == pytest.approx(float(mcnemar(table, exact=False, correction=True).pvalue))
    assert result.p_value < 0.05 and "less accurate" in result.describe()  # naive Bayes is worse


def test_paired_loss_test_equals_scipy(two_models):
    x, y, _, _, a, b = two_models
    loss_a = example_losses(y, a.predict(x), a.predict_proba(x))["loss"]
    loss_b = example_losses(y, b.predict(x), b.predict_proba(x))["loss"]
    result = paired_loss_test(loss_a, loss_b, alpha=0.1)
    expected = stats.ttest_rel(loss_a, loss_b)
    ci = expected.confidence_interval(0.9)
    assert result.mean_difference == pytest.approx(np.mean(loss_a - loss_b))
    assert result.p_value == pytest.approx(expected.pvalue) and result.t_statistic == pytest.approx(
        expected.statistic
    )
    assert (result.ci_low, result.ci_high) == pytest.approx((ci.low, ci.high))
    assert result.wilcoxon_p == pytest.approx(stats.wilcoxon(loss_a - loss_b).pvalue)
    assert result.mean_difference < 0 and "A has the lower loss" in result.describe()
    same = paired_loss_test(loss_a, loss_a)
    assert same.p_value == 1.0 and same.wilcoxon_p == 1.0 and same.mean_difference == 0.0


def test_flips_equal_a_direct_pandas_count(two_models):
    x, y, pred_a, pred_b, _, _ = two_models
    correct_a, correct_b = pred_a == y, pred_b == y
    by = ["pixel_3_3", "pixel_5_2"]
    table = flips(correct_a, correct_b, x, by=by)
    overall = table.iloc[0]
    assert (overall[by] == ALL).all() and overall["support"] == len(y)
    assert overall["fixed"] == np.sum(~correct_a & correct_b) and overall["broken"] == np.sum(
        correct_a & ~correct_b
    )
    frame = (
        bin_columns(x[by])
        .astype(str)
        .assign(fixed=~correct_a & correct_b, broken=correct_a & ~correct_b, both=correct_a & correct_b)
    )
    expected = frame.groupby(by).agg(
        support=("fixed", "size"), fixed=("fixed", "sum"), broken=("broken", "sum")
    )
    got = table.iloc[1:].set_index(by)
    assert len(got) == len(expected) and got["support"].sum() == len(y)
    for key, row in expected.iterrows():
        assert got.loc[key, ["support", "fixed", "broken"]].tolist() == row.tolist()
    assert got["net"].is_monotonic_increasing
    assert (got["net"] == got["fixed"] - got["broken"]).all()
    assert got["accuracy_a"].to_numpy() == pytest.approx(
        ((got["both_right"] + got["broken"]) / got["support"]).to_numpy()
    )
    only_overall = flips(correct_a, correct_b)
    assert len(only_overall) == 1 and only_overall["fixed"].iloc[0] == overall["fixed"]


def test_invalid_arguments_name_the_argument():
    with pytest.raises(InvalidValueError) as error:
        mcnemar_test([True, False], [True])
    assert error.value.key == "correct_b"
    with pytest.raises(InvalidValueError) as error:
        flips([True, False], [True, True], by="site")
    assert error.value.key == "features"
    with pytest.raises(InvalidValueError) as error:
        paired_loss_test([0.1, 0.2], [0.1, 0.3], alpha=2)
    assert error.value.key == "alpha"
