"""``--children`` wherever runs are listed: a search's candidates are child runs.

A real ``GridSearchCV`` tracked by ``labledger.integrations.sklearn.autolog()``
gives one search run and one child run per candidate; ``plot --params``,
``export`` and ``leaderboard`` reach the candidates with ``--children``.
"""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

import labledger as ll
from labledger.analysis.plots import NothingToPlotError, plot_params
from labledger.cli.app import main

GRID = [0.01, 0.1, 1.0]


@pytest.fixture
def search_store(store_path):
    import labledger.integrations.sklearn as llsk

    X, y = load_iris(return_X_y=True)
    with llsk.autolog(experiment="iris-search"):
        search = GridSearchCV(LogisticRegression(max_iter=300), {"C": GRID}, cv=3, scoring="accuracy")
        search.fit(X, y)
    frame = ll.runs("iris-search", include_children=True, store=store_path)
    candidates = frame[frame["parent_id"].notna()]
    assert sorted(candidates["params.C"]) == GRID
    return store_path, search, candidates


def _cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.timeout(60)
def test_plot_params_of_a_search_needs_children(search_store, tmp_path):
    store, _search, candidates = search_store
    out = tmp_path / "c.html"
    refused = _cli(
        "plot", "iris-search", "--params", "C", "-m", "accuracy", "-o", str(out), "--store", str(store)
    )
    assert refused.exit_code == 1 and not out.exists()
    assert "nothing to plot" in refused.output and "3 child runs" in refused.output
    assert "pass --children" in refused.output
    with pytest.raises(NothingToPlotError, match="include_children=True"):
        plot_params("iris-search", ["C"], "accuracy", tmp_path / "c.png", store=store)

    done = _cli(
        "plot",
        "iris-search",
        "--params",
        "C",
        "-m",
        "accuracy",
        "--children",
        "-o",
        str(out),
        "--store",
        str(store),
    )
    assert done.exit_code == 0, done.output
    page = out.read_text()
    for name in candidates["name"]:  # every candidate is a point, named in its hover text
        assert name in page
    png = plot_params(
        "iris-search", ["C"], "accuracy", tmp_path / "c.png", store=store, include_children=True
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(60)
def test_export_and_leaderboard_with_and_without_children(search_store, tmp_path):
    store, search, candidates = search_store
    with_children, without = tmp_path / "all.csv", tmp_path / "top.csv"
    assert _cli("export", "iris-search", "-o", str(with_children), "--store", str(store)).exit_code == 0
    assert (
        _cli("export", "iris-search", "-o", str(without), "--no-children", "--store", str(store)).exit_code
        == 0
    )
    rows = list(csv.DictReader(with_children.read_text().splitlines()))
    top = list(csv.DictReader(without.read_text().splitlines()))
    assert len(rows) == 1 + len(GRID) and len(top) == 1
    assert {r["parent_id"] for r in rows if r["params.C"]} == {top[0]["id"]}
    means = {float(r["params.C"]): float(r["folds.accuracy.mean"]) for r in rows if r["params.C"]}
    expected = dict(zip(search.cv_results_["param_C"], search.cv_results_["mean_test_score"], strict=True))
    assert means == pytest.approx(expected)

    board = _cli(
        "leaderboard", "iris-search", "-m", "accuracy", "--children", "--json", "--store", str(store)
    )
    assert board.exit_code == 0, board.output
    ranked = [e for e in json.loads(board.output)["entries"] if e.get("rank") is not None]
    assert sorted(e["name"] for e in ranked) == sorted(candidates["name"])
    alone = _cli("leaderboard", "iris-search", "-m", "accuracy", "--json", "--store", str(store))
    assert not [e for e in json.loads(alone.output)["entries"] if e.get("rank") is not None]
