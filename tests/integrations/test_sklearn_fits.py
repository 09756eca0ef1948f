"""scikit-learn autolog beyond searches: plain fits, post-training metrics on held-out data and
their plots, and the run settings autolog passes on (what MLflow's autolog records)."""

from __future__ import annotations

import warnings

import joblib
import numpy as np
import pytest

pytest.importorskip("sklearn")

import sklearn.metrics
import sklearn.model_selection as ms
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import BaggingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import labledger as ll
import labledger.integrations.sklearn as llsk
from labledger.lineage.completeness import CompletenessWarning

from ..seeded import assert_same_randomness, run_variants


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, ...]:
    X, y = load_digits(return_X_y=True)
    return X[:500], y[:500], X[500:700], y[500:700]


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    llsk.autolog(disable=True)


def _views(experiment: str) -> list[ll.RunView]:
    df = ll.runs(experiment, include_children=True).sort_values("start_time")
    return [ll.get_run(i) for i in df["id"]]


@pytest.mark.timeout(60)
def test_a_plain_fit_is_one_run_with_params_data_training_score_and_model(digits):
    X, y, _, _ = digits
    llsk.autolog(experiment="plain")
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    (run,) = _views("plain")
    assert run.status == "finished" and run.parent_id is None
    assert run.params["estimator/class"] == "sklearn.tree._classes.DecisionTreeClassifier"
    assert (run.params["estimator/max_depth"], run.params["estimator/random_state"]) == (3, 0)
    assert run.params["scoring/training/score"] == "accuracy"
    assert run.summary["training/score"]["last"] == tree.score(X, y)
    assert {(d["name"], d["role"]) for d in run.datasets} == {("X", "train"), ("y", "target")}
    (model,) = [a for a in run.artifacts if a.kind == "model"]
    np.testing.assert_array_equal(joblib.load(model.path).predict(X), tree.predict(X))

    with pytest.raises(ValueError, match="max_depth") as caught:  # the user's error, unchanged
        DecisionTreeClassifier(max_depth=-1).fit(X, y)
    failed = [v for v in _views("plain") if v.status == "failed"]
    assert len(failed) == 1 and type(caught.value).__name__ in failed[0].error


@pytest.mark.timeout(60)
def test_a_pipeline_fit_is_one_run_and_fits_inside_tracked_calls_are_none(digits):
    X, y, _, _ = digits
    llsk.autolog(experiment="one-run")
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    (run,) = _views("one-run")
    assert run.params["estimator/steps"] == ["standardscaler", "logisticregression"]
    assert [p["name"] for p in run.pipelines] == ["pipeline"]
    llsk.autolog(disable=True)
    assert run.summary["training/score"]["last"] == pipe.score(X, y)
    llsk.autolog(experiment="one-run")

    BaggingClassifier(DecisionTreeClassifier(), n_estimators=3, random_state=0).fit(X, y)  # fits 3 clones
    assert len(_views("one-run")) == 2

    search = GridSearchCV(
        make_pipeline(StandardScaler(), DecisionTreeClassifier()),
        {"decisiontreeclassifier__max_depth": [2, 4]},
        cv=2,
    )
    with joblib.parallel_backend("threading", n_jobs=2):  # candidates fitted in other threads
        search.fit(X, y)
    ms.cross_validate(DecisionTreeClassifier(max_depth=2), X, y, cv=2)
    # the search with its 2 candidates and the cross-validation: no run for any fit inside them
    assert len(_views("one-run")) == 2 + 3 + 1

    llsk.autolog(experiment="no-plain", log_plain_fits=False)
    DecisionTreeClassifier().fit(X, y)
    assert ll.runs("no-plain").empty


@pytest.mark.timeout(60)
def test_held_out_score_and_metrics_go_to_one_evaluation_run_with_plots(digits):
    X_train, y_train, X_test, y_test = digits
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [4, 8]}, cv=2)
    untracked = search.fit(X_train, y_train).score(X_test, y_test)
    with llsk.autolog(experiment="held-out"):
        search.fit(X_train, y_train)
        score = search.score(X_test, y_test)
        y_pred = search.predict(X_test)
        f1 = sklearn.metrics.f1_score(y_test, y_pred, average="macro")
        accuracy = sklearn.metrics.accuracy_score(y_test, y_pred)
        runs = {v.name: v for v in _views("held-out")}
        (evaluation,) = [v for v in runs.values() if v.params.get("evaluation/dataset")]
        assert evaluation.status == "running"  # while the model is evaluated on this data
    assert score == untracked

    evaluation = ll.get_run(evaluation.id)
    search_run = ll.get_run(evaluation.parent_id)
    assert search_run.params["search/class"].endswith("GridSearchCV")
    assert evaluation.status == "finished" and evaluation.name.endswith("-eval-X_test")
    assert evaluation.params["evaluation/dataset"] == "X_test"
    values = {k: s["last"] for k, s in evaluation.summary.items()}
    assert values == {"X_test/score": score, "X_test/f1_score": f1, "X_test/accuracy_score": accuracy}
    assert evaluation.params["scoring/X_test/score"] == "accuracy"
    assert evaluation.params["scoring/X_test/f1_score"] == "f1_score(average='macro')"
    fingerprints = {d["role"]: d["fingerprint"] for d in evaluation.datasets}
    assert fingerprints == {
        "test": ll.fingerprint(X_test).digest,
        "test_target": ll.fingerprint(y_test).digest,
    }
    plots = {a.name: a for a in evaluation.artifacts if a.kind == "plot"}
    assert set(plots) == {"confusion_matrix.png", "roc_curve.png", "precision_recall_curve.png"}
    for plot in plots.values():
        with plot.open() as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(60)
def test_a_plain_fits_metrics_on_a_probability_column_and_the_off_switch():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, y_train, X_holdout, y_holdout = X[:400], y[:400], X[400:], y[400:]
    llsk.autolog(experiment="binary")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_train, y_train)
    auc = sklearn.metrics.roc_auc_score(y_holdout, model.predict_proba(X_holdout)[:, 1])
    sklearn.metrics.roc_auc_score(y_holdout, y_holdout * 0.5)  # not a tracked model's predictions
    llsk.autolog(disable=True)
    fit_run, evaluation = _views("binary")
    assert evaluation.parent_id == fit_run.id
    assert {k: s["last"] for k, s in evaluation.summary.items()} == {"X_holdout/roc_auc_score": auc}
    assert {a.name for a in evaluation.artifacts} >= {"confusion_matrix.png", "roc_curve.png"}

    llsk.autolog(experiment="binary-off", log_post_training_metrics=False)
    model = DecisionTreeClassifier(max_depth=3).fit(X_train, y_train)
    model.score(X_holdout, y_holdout)
    llsk.autolog(disable=True)
    assert len(_views("binary-off")) == 1


@pytest.mark.timeout(60)
def test_name_hypothesis_and_tags_reach_every_run_autolog_and_log_search_start(digits, monkeypatch):
    X, y, _, _ = digits
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "warn")
    with pytest.warns(
        CompletenessWarning, match=r"labledger\.integrations\.sklearn\.autolog\(\.\.\., hypothesis="
    ):
        llsk.autolog(experiment="unsaid")
        DecisionTreeClassifier().fit(X, y)
    llsk.autolog(experiment="said", name="tree", hypothesis="depth 3 is enough", tags={"team": "vision"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DecisionTreeClassifier(max_depth=3).fit(X, y)
        GridSearchCV(DecisionTreeClassifier(), {"max_depth": [2, 3]}, cv=2).fit(X, y)
    assert not [w for w in caught if "has no hypothesis" in str(w.message)]
    top = [v for v in _views("said") if v.parent_id is None]
    assert [v.name for v in top] == ["tree", "tree-2"]
    for view in top:
        assert view.hypothesis == "depth 3 is enough" and view.tags["team"] == "vision"
    llsk.autolog(disable=True)

    fitted = GridSearchCV(DecisionTreeClassifier(), {"max_depth": [2, 3]}, cv=2).fit(X, y)
    run = llsk.log_search(fitted, X, y, experiment="logged", name="grid", hypothesis="h", tags={"k": "v"})
    view = ll.get_run(run.id)
    assert (view.name, view.hypothesis, view.tags["k"]) == ("grid", "h", "v")


SEEDED = """
    import random

    import numpy as np
    import sklearn.metrics
    from sklearn.datasets import load_digits
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if VARIANT == "ledger":
        import labledger.integrations.sklearn as llsk

        llsk.autolog(experiment="rng-plain")
    random.seed(0)
    np.random.seed(0)
    X, y = load_digits(return_X_y=True)
    X_train, y_train, X_test, y_test = X[:300], y[:300], X[300:450], y[300:450]
    # random_state=None: they draw from NumPy's global generator when fitting and predicting
    dummy = DummyClassifier(strategy="stratified").fit(X_train, y_train)
    forest = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5)).fit(X_train, y_train)
    out = {
        "dummy": dummy.score(X_test, y_test),
        "forest": forest.score(X_test, y_test),
        "f1": sklearn.metrics.f1_score(y_test, forest.predict(X_test), average="macro"),
        "proba": forest.predict_proba(X_test),
    }
    tracked = None
    if VARIANT == "ledger":
        import labledger as ll

        llsk.autolog(disable=True)
        tracked = len(ll.runs("rng-plain", include_children=True))
    report(out, tracked)
"""


@pytest.mark.timeout(120)
def test_plain_fits_and_evaluations_leave_results_and_global_draws_unchanged(run_script, tmp_path):
    results = run_variants(run_script, tmp_path, SEEDED, ["plain", "ledger"])
    assert results["ledger"]["tracked"] == 4  # two fits and their evaluations on X_test
    assert_same_randomness(results, "plain")


@pytest.mark.timeout(60)
def test_a_model_that_cannot_be_pickled_is_not_stored_and_the_run_says_why(digits):
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Majority(ClassifierMixin, BaseEstimator):  # defined in a function: pickle cannot find it
        def fit(self, X, y):
            self.classes_, counts = np.unique(y, return_counts=True)
            self.majority_ = self.classes_[counts.argmax()]
            return self

        def predict(self, X):
            return np.full(len(X), self.majority_)

    X, y, *_ = digits
    llsk.autolog(experiment="unpicklable")
    make_pipeline(StandardScaler(), Majority()).fit(X, y)  # no error, in testing mode too
    (view,) = _views("unpicklable")
    assert view.status == "finished" and "training/score" in view.summary
    assert not [a for a in view.artifacts if a.kind == "model"]
    (note,) = view.notes
    assert note["text"].startswith("model.joblib was not stored:") and "module level" in note["text"]
