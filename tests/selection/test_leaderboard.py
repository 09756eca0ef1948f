"""The leaderboard on real cross-validated runs: every run listed, ties with the leader marked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

import labledger as ll
from labledger.analysis.compare import fold_values
from labledger.analysis.leaderboard import leaderboard
from labledger.cli.app import main
from labledger.query.aggregation import metric_direction


def test_every_run_is_listed_ranked_by_mean_with_significance(cv_store):
    board = leaderboard(cv_store.experiment, "accuracy", store=cv_store.path)
    df = board.to_frame()
    assert set(df["name"]) == set(cv_store.ids)  # all runs, never only the best
    ranked = df[df["rank"].notna()]
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert ranked["mean"].tolist() == sorted(ranked["mean"], reverse=True)
    assert set(ranked["name"]) == {"svc-rbf", "svc-rbf-c1", "logreg", "knn", "tree", "gnb"}
    assert (ranked["n"] == 5).all() and ranked["std"].notna().all()
    leader = ranked.iloc[0]
    views = {n: ll.get_run(i, store=cv_store.path) for n, i in cv_store.ids.items()}
    assert leader["mean"] == pytest.approx(views[leader["name"]].fold_stats[("accuracy", "test")]["mean"])
    # p-values against the leader are the Nadeau–Bengio ones, computed here by hand
    lv = np.array(fold_values(views[leader["name"]], "accuracy"))
    for _, row in ranked.iloc[1:].iterrows():
        view = views[row["name"]]
        d = lv - np.array(fold_values(view, "accuracy"))
        ratio = view.params["cv/n_test"] / view.params["cv/n_train"]
        t = d.mean() / np.sqrt((1 / 5 + ratio) * d.var(ddof=1))
        assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 4), rel=1e-9)
    # "≈ leader" uses the Holm-adjusted p-values of the tests against the leader
    tested = ranked.iloc[1:]
    raw = tested["p_value"].to_numpy()
    order, m, running, holm = np.argsort(raw), len(raw), 0.0, np.empty(len(raw))
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * raw[i]))
        holm[i] = running
    assert tested["p_adjusted"].tolist() == pytest.approx(holm.tolist(), rel=1e-12)
    assert tested["tie_with_leader"].tolist() == (holm >= 0.05).tolist()
    assert (tested["p_adjusted"] >= tested["p_value"]).all()
    assert not ranked.set_index("name").loc["tree", "tie_with_leader"]
    assert ranked["tie_with_leader"].iloc[1:].any()  # the close SVMs/kNN are not separable on 5 folds
    # runs scored on other data, folds or metric definitions are listed, not ranked
    rest = df[df["rank"].isna()].set_index("name")
    assert rest.loc["svc-half-data", "note"].startswith("not comparable: different train data")
    assert rest.loc["svc-kfold", "note"].startswith("not comparable: different CV folds")
    assert rest.loc["svc-balanced", "note"].startswith("not comparable: different metric definition")
    assert rest.loc["mlp", "note"] == "no accuracy value"
    # the failed run is last, with its status
    assert df.iloc[-1]["name"] == "svc-bad-c" and df.iloc[-1]["status"] == "failed"
    assert "InvalidParameterError" in df.iloc[-1]["note"]


def test_direction_and_tests_are_respected(cv_store):
    board = leaderboard(cv_store.experiment, "fit_time", store=cv_store.path)
    assert board.direction == "max"  # no declaration: higher is better by default
    paired = leaderboard(cv_store.experiment, "accuracy", test="paired-t", store=cv_store.path).to_frame()
    corrected = leaderboard(cv_store.experiment, "accuracy", store=cv_store.path).to_frame()
    tree = lambda df: df.set_index("name").loc["tree", "p_value"]  # noqa: E731
    assert tree(paired) < tree(corrected)
    filtered = leaderboard(cv_store.experiment, "accuracy", where="params.model = 'svc'", store=cv_store.path)
    assert {e.run.name for e in filtered.entries} == {
        "svc-rbf",
        "svc-rbf-c1",
        "svc-half-data",
        "svc-kfold",
        "svc-balanced",
        "svc-bad-c",
    }


def test_leaderboard_cli(cv_store, store_path):
    runner = CliRunner()
    out = runner.invoke(
        main, ["leaderboard", cv_store.experiment, "--metric", "accuracy", "--store", str(cv_store.path)]
    )
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert "accuracy (higher is better)" in lines[0]
    body = "\n".join(lines)
    assert "leader" in body and "≈ leader" in body and "worse" in body
    assert "NOT COMPARABLE" in body and "failed" in body
    first_ranked = lines[3].split()
    assert first_ranked[0] == "1" and "±" in lines[3]
    out = runner.invoke(
        main, ["leaderboard", cv_store.experiment, "-m", "accuracy", "--json", "--store", str(cv_store.path)]
    )
    data = json.loads(out.output)
    assert data["direction"] == "max" and len(data["entries"]) == len(cv_store.ids)
    out = runner.invoke(main, ["leaderboard", "empty-exp", "-m", "accuracy", "--store", str(store_path)])
    assert out.exit_code == 0 and "no runs" in out.output
    out = runner.invoke(main, ["leaderboard", cv_store.experiment, "-m", "accuracy", "--test", "anova"])
    assert out.exit_code == 2
    out = runner.invoke(main, ["metric-direction", "val_perplexity", "min", "--store", str(store_path)])
    assert out.exit_code == 0 and "val_perplexity: min" in out.output
    assert metric_direction("val_perplexity", store=store_path) == "min"
