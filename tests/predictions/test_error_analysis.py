"""Error analysis on stored predictions: ll.errors, labledger errors, paired runs, compare."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("statsmodels")

from click.testing import CliRunner
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.tree import DecisionTreeClassifier
from statsmodels.stats.contingency_tables import mcnemar

import labledger as ll
from labledger.analysis.paired_predictions import TestSetMismatchError
from labledger.cli import main
from labledger.predictions.analysis import paired, paired_verdicts

REGIONS = np.array(["north", "south", "east", "west"])


def _cancer(seed: int = 0):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.4, random_state=seed)
    region = REGIONS[np.random.default_rng(seed).integers(0, 4, len(X_te))]
    features = pd.DataFrame({"region": region, "radius": X_te["mean radius"].to_numpy()})
    return X_tr, X_te, y_tr, y_te, features


def _two_runs():
    """A logistic regression and a tree that is wrong on half of the north examples."""
    X_tr, X_te, y_tr, y_te, features = _cancer()
    rng = np.random.default_rng(1)
    runs = {}
    for name, model in (
        ("logreg", LogisticRegression(max_iter=5000)),
        ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
    ):
        model.fit(X_tr, y_tr)
        pred = model.predict(X_te)
        if name == "tree":
            pred = np.where((features["region"] == "north") & (rng.random(len(pred)) < 0.5), 1 - pred, pred)
        with ll.start_run("cancer", name=name) as run:
            run.log_folds("accuracy", cross_val_score(model, X_tr, y_tr, cv=5))
            run.log_predictions(y_te, pred, features=features, ids=X_te.index.to_numpy())
        runs[name] = (run, pred)
    return runs, y_te.to_numpy(), features


def _other_split_run():
    """A logistic regression scored on another test split than _two_runs' models."""
    X_tr, X_te, y_tr, y_te, _ = _cancer(seed=5)
    model = LogisticRegression(max_iter=5000).fit(X_tr, y_tr)
    with ll.start_run("cancer", name="other-split") as other:
        other.log_predictions(y_te, model.predict(X_te), ids=X_te.index.to_numpy())
    return other


def test_per_slice_metrics_equal_pandas_and_ll_errors_is_callable():
    runs, truth, features = _two_runs()
    run, pred = runs["tree"]
    got = ll.errors(run.id, by=["region"]).set_index("region")
    direct = pd.Series(pred == truth).groupby(features["region"].to_numpy()).agg(["mean", "size"])
    for region, row in direct.iterrows():
        assert got.loc[region, "accuracy"] == pytest.approx(row["mean"])
        assert got.loc[region, "support"] == row["size"]
    assert got["overall"].iloc[0] == pytest.approx((pred == truth).mean())
    assert got.index[0] == "north"  # the worst impact first
    weak = ll.errors(run.id, auto=True)
    assert weak["slice"].iloc[0] == "region=north"
    assert ll.errors(runs["logreg"][0].id, auto=True).empty or "region=north" not in set(
        ll.errors(runs["logreg"][0].id, auto=True)["slice"]
    )


def test_regression_slices_use_rmse():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(X[:300], y[:300])
    sex = np.where(X["sex"][300:] > 0, "a", "b")
    with ll.start_run("diabetes") as run:
        run.log_predictions(y[300:], model.predict(X[300:]), features=pd.DataFrame({"sex": sex}))
    got = ll.errors(run.id, by="sex").set_index("sex")
    for value in ("a", "b"):
        mask = sex == value
        rmse = mean_squared_error(y[300:][mask], model.predict(X[300:][mask])) ** 0.5
        assert got.loc[value, "rmse"] == pytest.approx(rmse)


def test_paired_runs_use_mcnemar_and_count_the_flips():
    runs, truth, features = _two_runs()
    (a, pred_a), (b, pred_b) = runs["logreg"], runs["tree"]
    report = paired(a.id, b.id, by=["region"])
    right_a, right_b = pred_a == truth, pred_b == truth
    table = [
        [np.sum(right_a & right_b), np.sum(right_a & ~right_b)],
        [np.sum(~right_a & right_b), np.sum(~right_a & ~right_b)],
    ]
    expected = mcnemar(
        table, exact=min(table[0][1], table[1][0]) + max(table[0][1], table[1][0]) < 25, correction=True
    )
    assert report.mcnemar.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    flips = report.flips.set_index("region")
    assert flips.loc["(all)", "broken"] == np.sum(right_a & ~right_b)
    assert flips.loc["(all)", "fixed"] == np.sum(~right_a & right_b)
    north = features["region"].to_numpy() == "north"
    assert flips.loc["north", "broken"] == np.sum(right_a & ~right_b & north)


def test_predictions_on_other_examples_are_refused_loudly():
    runs, _, _ = _two_runs()
    other = _other_split_run()
    with pytest.raises(TestSetMismatchError, match="only in"):
        paired(runs["logreg"][0].id, other.id)
    result = CliRunner().invoke(main, ["errors", runs["logreg"][0].id, other.id])
    assert result.exit_code == 1 and "only in" in result.output and "Traceback" not in result.output


def test_the_errors_command_and_compare_on_the_same_examples():
    runs, _, _ = _two_runs()
    a, b = runs["logreg"][0], runs["tree"][0]
    runner = CliRunner()
    one = runner.invoke(main, ["errors", "cancer/tree", "--by", "region", "--auto", "--top", "3"])
    assert one.exit_code == 0, one.output
    assert "confusion matrix" in one.output and "by region" in one.output and "region=north" in one.output
    assert "hardest examples" in one.output
    data = json.loads(runner.invoke(main, ["errors", "cancer/tree", "--by", "region", "--json"]).output)
    assert data["slices"]["region"][0]["region"] == "north"
    two = runner.invoke(main, ["errors", a.id, b.id, "--by", "region"])
    assert two.exit_code == 0 and "McNemar" in two.output and "north" in two.output
    compared = runner.invoke(main, ["compare", a.id, b.id])
    assert compared.exit_code == 0, compared.output
    assert "paired on the same examples" in compared.output and "McNemar" in compared.output
    missing = runner.invoke(main, ["errors", a.id, "--split", "val"])
    assert missing.exit_code == 1 and "no predictions for split 'val'" in missing.output


def test_paired_verdicts_name_each_pair_by_the_labels_given():
    runs, _, _ = _two_runs()
    other = _other_split_run()
    refs = [runs["logreg"][0].id, runs["tree"][0].id, other.id]
    plain = paired_verdicts(refs)
    named = paired_verdicts(refs, labels=["X", "Y", "Z"])
    assert [line.split(": ", 1)[0] for line in plain] == [line.split(": ", 1)[0] for line in named]
    assert "Y fixes" in named[0] and "X gets wrong" in named[0] and "B fixes" in plain[0]
    assert "only in X" in named[1] and "only in Z" in named[1] and "only in A" in plain[1]
    assert "only in Y" in named[2] and "only in Z" in named[2]
