"""Params never hold memory addresses: the same search run twice records the same params."""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from scipy import stats
from sklearn.feature_selection import SelectKBest, chi2, f_classif
from sklearn.svm import SVC

from labledger.integrations._sklearn_values import param_value, remembered_seeds
from labledger.integrations.base import plain

SEARCH = """
    import json
    import os

    import numpy as np
    from scipy.stats import randint, uniform
    from sklearn.datasets import load_digits
    from sklearn.feature_selection import SelectKBest, chi2, f_classif
    from sklearn.model_selection import KFold, RandomizedSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeClassifier

    import labledger as ll
    import labledger.integrations.sklearn as llsk


    def simplest(cv_results):  # a refit callable
        return int(np.argmax(cv_results["mean_test_score"]))


    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    llsk.autolog(experiment="again")
    tree = DecisionTreeClassifier(random_state=np.random.RandomState(0))
    pipe = make_pipeline(SelectKBest(score_func=chi2), tree)
    RandomizedSearchCV(
        pipe,
        {
            "selectkbest__k": randint(5, 40),
            "selectkbest__score_func": [f_classif, chi2],
            "decisiontreeclassifier__min_impurity_decrease": uniform(0, 0.01),
        },
        n_iter=3,
        cv=KFold(3, shuffle=True, random_state=np.random.RandomState(2)),
        random_state=np.random.RandomState(1),
        refit=simplest,
    ).fit(X, y)
    df = ll.runs("again", include_children=True)
    views = [ll.get_run(i) for i in df["id"]]
    views.sort(key=lambda v: (v.parent_id is not None, v.params.get("candidate/index", -1)))
    print("PARAMS " + json.dumps([v.params for v in views], sort_keys=True, default=repr))
"""


def _params(run_script, store: Path) -> list[dict]:
    result = run_script(SEARCH, env={"LABLEDGER_STORE": str(store)}, timeout=120)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("PARAMS "))
    return json.loads(line[len("PARAMS ") :])


@pytest.mark.timeout(180)
def test_the_same_search_in_two_processes_records_identical_params(run_script, tmp_path):
    with ThreadPoolExecutor(2) as pool:  # two processes at once
        first, second = pool.map(lambda folder: _params(run_script, tmp_path / folder), ["one", "two"])
    assert len(first) == 4  # the search and its three candidates
    assert first == second
    assert "0x" not in json.dumps(first)
    search = first[0]
    assert search["search/space/selectkbest__k"] == "scipy.stats.randint(low=5, high=40)"
    assert search["search/space/decisiontreeclassifier__min_impurity_decrease"] == (
        "scipy.stats.uniform(loc=0, scale=0.01)"
    )
    assert search["search/space/selectkbest__score_func"] == [
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.chi2",
    ]
    assert (
        search["estimator/selectkbest__score_func"] == "sklearn.feature_selection._univariate_selection.chi2"
    )
    # seeded generators by their seeds, read before the search drew from them
    assert search["estimator/decisiontreeclassifier__random_state"] == "numpy.random.RandomState(0)"
    assert search["search/random_state"] == "numpy.random.RandomState(1)"
    assert search["cv/random_state"] == "numpy.random.RandomState(2)"
    assert search["search/refit"] == "__main__.simplest"
    for candidate in first[1:]:
        assert candidate["selectkbest__score_func"].startswith(
            "sklearn.feature_selection._univariate_selection."
        )


@pytest.mark.timeout(60)
def test_values_are_described_without_memory_addresses():
    assert plain(stats.uniform(0, 1)) == "scipy.stats.uniform(loc=0, scale=1)"
    assert plain(stats.loguniform(1e-3, 10)) == "scipy.stats.loguniform(a=0.001, b=10)"
    assert plain(stats.norm(loc=3)) == "scipy.stats.norm(loc=3)"
    assert plain(stats.poisson(4)) == "scipy.stats.poisson(mu=4)"
    assert plain(np.random.default_rng(7)) == "numpy.random.default_rng(7)"
    state = np.random.RandomState(5)
    assert plain(state) == "numpy.random.RandomState(5)"
    with remembered_seeds([{"random_state": state}]):
        state.rand()
        assert param_value(state) == "numpy.random.RandomState(5)"  # as it was when the fit began
        assert param_value([{"seed": state}]) == [{"seed": "numpy.random.RandomState(5)"}]  # at any depth
    assert param_value(state) == "numpy.random.RandomState"  # drawn from: its seed is no longer known
    assert plain(np.random.RandomState()) == "numpy.random.RandomState"  # seeded by the OS
    assert plain(f_classif) == "sklearn.feature_selection._univariate_selection.f_classif"
    assert plain(functools.partial(chi2)) == (
        "functools.partial(sklearn.feature_selection._univariate_selection.chi2)"
    )
    assert plain(SelectKBest(chi2, k=4)) == (
        "SelectKBest(k=4, score_func=sklearn.feature_selection._univariate_selection.chi2)"
    )
    assert plain([SVC(C=2.0, kernel="linear")]) == ["SVC(C=2.0, kernel='linear')"]
    assert plain({3, 1, 2}) == [1, 2, 3]
    assert "0x" not in plain(object())
