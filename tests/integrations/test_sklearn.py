"""scikit-learn autolog: searches and cross-validation recorded exactly as scikit-learn reports them."""

from __future__ import annotations

import joblib
import numpy as np
import pytest

pytest.importorskip("sklearn")

import sklearn.model_selection as ms
import sklearn.model_selection._search as search_module
import sklearn.model_selection._validation as validation
from sklearn.datasets import load_digits
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    KFold,
    RandomizedSearchCV,
    StratifiedKFold,
)
from sklearn.model_selection._search import BaseSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import labledger as ll
import labledger.integrations.sklearn as llsk
from labledger.hooks.manager import LabledgerWarning


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    llsk.autolog(disable=True)


def _tree_search(**kwargs):
    grid = {"max_depth": [2, 4], "min_samples_leaf": [1, 8]}
    defaults = dict(cv=3, scoring=["accuracy", "f1_macro"], refit="accuracy", return_train_score=True)
    return GridSearchCV(DecisionTreeClassifier(random_state=0), grid, **{**defaults, **kwargs})


def _only_run(experiment: str, parent_id: str | None = None) -> ll.RunView:
    df = ll.runs(experiment, include_children=True)
    rows = df[df["parent_id"].isna()] if parent_id is None else df[df["parent_id"] == parent_id]
    assert len(rows) == 1, rows
    return ll.get_run(rows.iloc[0]["id"])


def _folds(view: ll.RunView) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = {}
    for row in view.folds.sort_values("fold").itertuples():
        out.setdefault((row.key, row.split), []).append(row.value)
    return out


def _assert_candidates_match(parent: ll.RunView, results: dict, keys: dict[str, str], n_splits: int) -> None:
    children = {c.params["candidate/index"]: c for c in parent.children}
    assert sorted(children) == list(range(len(results["params"])))
    for i, child in children.items():
        for name, value in results["params"][i].items():
            assert child.params[name] == value
        folds = _folds(child)
        for sk_name, key in keys.items():
            for split in ("test", "train"):
                if f"split0_{split}_{sk_name}" not in results:
                    continue
                expected = [results[f"split{k}_{split}_{sk_name}"][i] for k in range(n_splits)]
                assert folds[(key, split)] == pytest.approx(expected, abs=0, rel=0)
                stats = child.fold_stats[(key, split)]
                assert stats["mean"] == pytest.approx(results[f"mean_{split}_{sk_name}"][i], rel=1e-12)
                assert stats["std"] == pytest.approx(
                    results[f"std_{split}_{sk_name}"][i], rel=1e-9, abs=1e-15
                )
            assert child.summary[f"rank/{key}"]["last"] == results[f"rank_test_{sk_name}"][i]
        assert child.summary["fit_time/mean"]["last"] == pytest.approx(results["mean_fit_time"][i])


def test_grid_search_records_every_candidate_and_fold(digits):
    X, y = digits
    llsk.autolog(experiment="grid")
    search = _tree_search().fit(X, y)

    parent = _only_run("grid")
    assert parent.status == "finished"
    p = parent.params
    assert p["search/class"] == "sklearn.model_selection._search.GridSearchCV"
    assert p["estimator/class"] == "sklearn.tree._classes.DecisionTreeClassifier"
    assert p["estimator/random_state"] == 0
    assert p["search/space/max_depth"] == [2, 4]
    assert p["cv/class"] == "sklearn.model_selection._split.StratifiedKFold"
    assert (p["cv/n_splits"], p["cv/shuffle"], p["cv/random_state"]) == (3, False, None)
    assert p["scoring/accuracy"] == "accuracy" and p["scoring/f1_macro"] == "f1_macro"
    assert p["search/refit"] == "accuracy"
    assert {f"best/{k}": v for k, v in search.best_params_.items()}.items() <= p.items()
    assert parent.summary["best_score"]["last"] == search.best_score_
    std = search.cv_results_["std_test_accuracy"][search.best_index_]
    assert parent.summary["best_score/std"]["last"] == pytest.approx(std)
    assert parent.summary["refit_time"]["last"] == pytest.approx(search.refit_time_)
    assert {d["name"] for d in parent.datasets} == {"X", "y"}

    arts = {a.name: a for a in parent.artifacts}
    assert arts["cv_results.parquet"].kind == "table"
    import pandas as pd

    table = pd.read_parquet(arts["cv_results.parquet"].path)
    assert table["mean_test_accuracy"].tolist() == search.cv_results_["mean_test_accuracy"].tolist()
    model = arts["best_estimator.joblib"]
    assert model.kind == "model" and model.metadata["class"].endswith("DecisionTreeClassifier")
    restored = joblib.load(model.path)
    assert (restored.predict(X) == search.best_estimator_.predict(X)).all()

    _assert_candidates_match(parent, search.cv_results_, {"accuracy": "accuracy", "f1_macro": "f1_macro"}, 3)
    fingerprint = p["cv/fingerprint"]
    assert all(c.params["cv/fingerprint"] == fingerprint for c in parent.children)
    best = [c for c in parent.children if c.tags.get("best") == "true"]
    assert [c.params["candidate/index"] for c in best] == [search.best_index_]


def test_autolog_leaves_the_search_unchanged(digits):
    X, y = digits
    plain = _tree_search().fit(X, y).cv_results_
    with llsk.autolog(experiment="same"):
        tracked = _tree_search().fit(X, y).cv_results_
    assert sorted(plain) == sorted(tracked)
    for key in plain:
        if "time" in key:
            continue
        if key == "params":
            assert plain[key] == tracked[key]
        else:
            np.testing.assert_array_equal(np.asarray(plain[key]), np.asarray(tracked[key]))


def test_disable_and_context_manager_restore_scikit_learn_exactly():
    originals = (
        BaseSearchCV.__dict__["fit"],
        ms.cross_validate,
        validation.cross_validate,
        ms.cross_val_score,
        validation.cross_val_score,
        search_module._fit_and_score,
        validation._fit_and_score,
    )

    def current():
        return (
            BaseSearchCV.__dict__["fit"],
            ms.cross_validate,
            validation.cross_validate,
            ms.cross_val_score,
            validation.cross_val_score,
            search_module._fit_and_score,
            validation._fit_and_score,
        )

    with llsk.autolog() as handle:
        assert handle.enabled
        assert all(a is not b for a, b in zip(current(), originals, strict=True))
    assert all(a is b for a, b in zip(current(), originals, strict=True))
    llsk.autolog()
    llsk.autolog()  # idempotent
    llsk.autolog(disable=True)
    assert all(a is b for a, b in zip(current(), originals, strict=True))


def test_search_inside_an_active_run_is_its_child(digits):
    X, y = digits
    llsk.autolog()
    with ll.start_run("outer") as outer:
        _tree_search(scoring=None, refit=True).fit(X, y)
    search_run = _only_run("outer", parent_id=outer.id)
    assert search_run.params["scoring/accuracy"] == "accuracy"  # the classifier's own score, by its name
    assert search_run.params["direction/accuracy"] == "max"
    assert len(search_run.children) == 4
    assert {("accuracy", "test"), ("accuracy", "train")} <= set(search_run.children[0].fold_stats)


def test_randomized_and_halving_searches(digits):
    X, y = digits
    llsk.autolog(experiment="searches")
    rnd = RandomizedSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": list(range(1, 12)), "min_samples_leaf": [1, 2, 4, 8]},
        n_iter=5,
        cv=KFold(3, shuffle=True, random_state=7),
        scoring="accuracy",
        random_state=0,
    ).fit(X, y)
    halving = HalvingGridSearchCV(
        DecisionTreeClassifier(random_state=0), {"max_depth": [1, 2, 3, 4, 6, 8]}, cv=3, random_state=0
    ).fit(X, y)
    df = ll.runs("searches", include_children=True)
    parents = [ll.get_run(i) for i in df[df["parent_id"].isna()]["id"]]
    by_class = {p.params["search/class"].rsplit(".", 1)[1]: p for p in parents}

    r = by_class["RandomizedSearchCV"]
    assert r.params["cv/class"] == "sklearn.model_selection._split.KFold"
    assert (r.params["cv/shuffle"], r.params["cv/random_state"]) == (True, 7)
    assert r.params["scoring/accuracy"] == "accuracy"
    _assert_candidates_match(r, rnd.cv_results_, {"score": "accuracy"}, 3)

    h = by_class["HalvingGridSearchCV"]
    results = halving.cv_results_
    _assert_candidates_match(h, results, {"score": "accuracy"}, 3)
    for child in h.children:
        i = child.params["candidate/index"]
        assert child.params["halving/iter"] == results["iter"][i]
        assert child.params["halving/n_resources"] == results["n_resources"][i]
    assert h.params["search/factor"] == 3
    assert h.params["cv/fingerprint"] is None  # the folds were subsampled at random


def test_cross_validate_and_cross_val_score(digits):
    X, y = digits
    llsk.autolog(experiment="cv")
    cv = StratifiedKFold(4, shuffle=True, random_state=1)
    scores = ms.cross_val_score(
        DecisionTreeClassifier(max_depth=4, random_state=0), X, y, cv=cv, scoring="accuracy"
    )
    results = ms.cross_validate(
        make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=3, random_state=0)),
        X,
        y,
        cv=cv,
        scoring={"acc": "accuracy", "f1": "f1_macro"},
        return_train_score=True,
    )
    assert "indices" not in results  # only when asked for
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [3]}, cv=cv).fit(X, y)

    df = ll.runs("cv", include_children=True).sort_values("start_time")
    runs = [ll.get_run(i) for i in df[df["parent_id"].isna()]["id"]]
    score_run, validate_run, search_run = runs
    assert _folds(score_run) == {("accuracy", "test"): pytest.approx(scores.tolist(), rel=0, abs=0)}
    assert score_run.params["scoring/accuracy"] == "accuracy"
    folds = _folds(validate_run)
    assert folds[("acc", "test")] == results["test_acc"].tolist()
    assert folds[("f1", "train")] == results["train_f1"].tolist()
    assert validate_run.params["estimator/class"] == "sklearn.pipeline.Pipeline"
    assert validate_run.params["cv/class"] == "sklearn.model_selection._split.StratifiedKFold"
    # the same splitter on the same data: the same fold fingerprint everywhere
    fingerprints = {r.params["cv/fingerprint"] for r in (score_run, validate_run, search_run)}
    assert len(fingerprints) == 1 and None not in fingerprints
    assert search.best_index_ == 0


def test_search_nested_in_cross_validate_gives_nested_runs(digits):
    X, y = digits
    llsk.autolog(experiment="nested")
    inner = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [2, 3]}, cv=2)
    results = ms.cross_validate(inner, X, y, cv=2, return_estimator=True)
    outer = _only_run("nested")
    assert len(outer.children) == 2
    for search_run, fitted in zip(
        sorted(outer.children, key=lambda r: r.start_time), results["estimator"], strict=True
    ):
        assert search_run.params["search/class"].endswith("GridSearchCV")
        _assert_candidates_match(search_run, fitted.cv_results_, {"score": "accuracy"}, 2)
    assert _folds(outer)[("accuracy", "test")] == results["test_score"].tolist()


def test_parallel_search_is_recorded_by_the_calling_process_only(digits):
    X, y = digits
    llsk.autolog(experiment="parallel")
    search = _tree_search(n_jobs=2).fit(X, y)
    df = ll.runs("parallel", include_children=True)
    assert len(df) == 1 + len(search.cv_results_["params"])
    _assert_candidates_match(_only_run("parallel"), search.cv_results_, {"accuracy": "accuracy"}, 3)


def test_a_failing_fit_fails_the_run_and_propagates_unchanged(digits):
    X, y = digits
    llsk.autolog(experiment="failing")
    search = GridSearchCV(DecisionTreeClassifier(), {"max_depth": [2, -1]}, cv=2, error_score="raise")
    with pytest.raises(Exception) as caught:
        search.fit(X, y)
    llsk.autolog(disable=True)
    with pytest.raises(type(caught.value)) as untracked:
        GridSearchCV(DecisionTreeClassifier(), {"max_depth": [2, -1]}, cv=2, error_score="raise").fit(X, y)
    assert str(untracked.value) == str(caught.value)
    run = _only_run("failing")
    assert run.status == "failed"
    assert type(caught.value).__name__ in run.error


def test_tracking_failure_never_breaks_fit(digits, monkeypatch):
    X, y = digits
    monkeypatch.setenv("LABLEDGER_TESTING", "0")  # what users get: a warning, not an error
    llsk.autolog(experiment="Not A Valid Experiment Name!")
    with pytest.warns(LabledgerWarning, match="could not record") as seen:
        search = _tree_search().fit(X, y)
    assert search.best_score_ > 0
    assert [w.message.integration for w in seen] == ["sklearn"]


def test_in_testing_mode_a_tracking_failure_raises(digits):
    X, y = digits
    llsk.autolog(experiment="Not A Valid Experiment Name!")
    with pytest.raises(ll.errors.InvalidExperimentNameError) as caught:
        _tree_search().fit(X, y)
    assert "LABLEDGER_TESTING" in "".join(caught.value.__notes__)


def test_log_search_records_a_fitted_search_without_patching(digits):
    X, y = digits
    search = _tree_search(scoring="f1_macro", refit=True).fit(X, y)
    with ll.start_run("manual") as run:
        llsk.log_search(search, X, y, run=run)
    view = ll.get_run(run.id)
    assert view.params["scoring/f1_macro"] == "f1_macro"
    _assert_candidates_match(view, search.cv_results_, {"score": "f1_macro"}, 3)
    with pytest.raises(ll.errors.LabledgerError, match="not fitted"):
        llsk.log_search(_tree_search(), run=run)

    capped = llsk.log_search(search, max_candidate_runs=2, experiment="capped")  # starts and ends its run
    view = ll.get_run(capped.id)
    assert view.status == "finished"
    ranks = search.cv_results_["rank_test_score"]
    best_two = sorted(range(len(ranks)), key=lambda i: (ranks[i], i))[:2]
    assert sorted(c.params["candidate/index"] for c in view.children) == sorted(best_two)


class _FirstTwo(BaseSearchCV):
    """A third-party search: evaluates the first two values of one parameter."""

    def __init__(self, estimator, param, values, **kwargs):
        super().__init__(estimator, **kwargs)
        self.param, self.values = param, values

    def _run_search(self, evaluate_candidates):
        evaluate_candidates([{self.param: v} for v in self.values[:2]])


def test_third_party_search_subclass_is_tracked(digits):
    X, y = digits
    llsk.autolog(experiment="custom")
    search = _FirstTwo(DecisionTreeClassifier(random_state=0), "max_depth", [3, 5, 7], cv=2).fit(X, y)
    parent = _only_run("custom")
    assert parent.params["search/class"].endswith("_FirstTwo")
    _assert_candidates_match(parent, search.cv_results_, {"score": "accuracy"}, 2)
