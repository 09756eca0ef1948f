"""scikit-learn autolog(log_predictions=True): out-of-fold and held-out predictions, checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("pyarrow")

from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_digits
from sklearn.linear_model import Ridge
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ShuffleSplit,
    StratifiedKFold,
    cross_val_predict,
    train_test_split,
)
from sklearn.tree import DecisionTreeClassifier

import labledger as ll
import labledger.integrations.sklearn as llsk
from labledger.predictions.read import NoPredictionsError


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    llsk.autolog(disable=True)


@pytest.fixture(scope="module")
def digits() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    frame = pd.DataFrame(X[:400], columns=[f"px{i}" for i in range(64)])
    frame["region"] = pd.Categorical(np.array(["north", "south", "east"])[np.arange(400) % 3])
    frame["source"] = np.where(np.arange(400) % 2 == 0, "scan", "photo")
    frame.index = pd.Index(np.arange(400) * 7 + 3, name="example")
    return frame, y[:400]


def _search(cv):
    tree = DecisionTreeClassifier(random_state=0)
    return GridSearchCV(tree, {"max_depth": [3, 6], "min_samples_leaf": [1, 4]}, cv=cv)


def _search_run(experiment: str) -> ll.RunView:
    df = ll.runs(experiment, include_children=True)
    return ll.get_run(df[df["parent_id"].isna()].iloc[0]["id"])


def _evaluation_run(search_run: ll.RunView) -> ll.RunView:
    (found,) = [c for c in ll.get_run(search_run.id).children if "evaluation/dataset" in c.params]
    return found


def _numeric(X: pd.DataFrame) -> pd.DataFrame:
    return X.drop(columns=["region", "source"]).assign(
        region=X["region"].cat.codes, source=(X["source"] == "scan").astype(int)
    )


def test_best_candidate_out_of_fold_and_held_out_predictions(digits) -> None:
    X, y = digits
    X_fit, X_eval, y_train, y_test = train_test_split(_numeric(X), y, test_size=0.25, random_state=0)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    llsk.autolog(experiment="preds", log_predictions=True)
    search = _search(cv).fit(X_fit, y_train)
    run = _search_run("preds")

    stored = ll.get_predictions(run, split="cv")
    expected = cross_val_predict(clone(search.best_estimator_), X_fit, y_train, cv=cv, method="predict_proba")
    np.testing.assert_array_equal(stored.proba, expected)
    np.testing.assert_array_equal(stored.y_pred, search.classes_[expected.argmax(axis=1)])
    np.testing.assert_array_equal(stored.y_true, y_train)
    assert stored.classes == list(range(10))
    np.testing.assert_array_equal(stored.ids, X_fit.index.to_numpy())  # the frame's index names the rows
    # every text/categorical column (none here) and the first five numeric ones
    assert stored.features.columns.tolist() == ["px0", "px1", "px2", "px3", "px4"]
    assert stored.meta["task"] == "classification" and stored.meta["split"] == "cv"

    search.score(X_eval, y_test)
    evaluation = _evaluation_run(run)
    held_out = ll.get_predictions(evaluation)  # split "test"
    np.testing.assert_array_equal(held_out.y_pred, search.predict(X_eval))
    np.testing.assert_array_equal(held_out.proba, search.predict_proba(X_eval))
    np.testing.assert_array_equal(held_out.y_true, y_test)
    search.score(X_eval, y_test)  # scored again on the same data: stored once
    assert len([a for a in ll.get_run(evaluation.id).artifacts if a.kind == "predictions"]) == 1


def test_categorical_and_text_columns_are_kept_for_slicing(digits) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = digits
    prep = make_column_transformer((OneHotEncoder(), ["region", "source"]), remainder="passthrough")
    pipe = make_pipeline(prep, DecisionTreeClassifier(random_state=0))
    llsk.autolog(experiment="preds-pipe", log_predictions=True)
    GridSearchCV(pipe, {"decisiontreeclassifier__max_depth": [3, 5]}, cv=KFold(3)).fit(X, y)
    stored = ll.get_predictions(_search_run("preds-pipe"), split="cv")
    features = stored.features
    assert features.columns.tolist() == ["px0", "px1", "px2", "px3", "px4", "region", "source"]
    assert features["region"].tolist() == X["region"].astype(str).tolist()
    assert features["source"].tolist() == X["source"].tolist()


def test_regression_search(digits) -> None:
    X, y = load_diabetes(return_X_y=True)
    llsk.autolog(experiment="preds-ridge", log_predictions=True)
    search = GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=KFold(4)).fit(X, y)
    stored = ll.get_predictions(_search_run("preds-ridge"), split="cv")
    assert stored.meta["task"] == "regression" and stored.proba is None
    np.testing.assert_array_equal(
        stored.y_pred, cross_val_predict(clone(search.best_estimator_), X, y, cv=KFold(4))
    )


def test_a_splitter_drawing_new_folds_is_scored_on_the_folds_the_search_used(digits) -> None:
    X, y = digits
    X = _numeric(X).to_numpy()
    llsk.autolog(experiment="preds-unseeded", log_predictions=True)
    np.random.seed(0)
    search = _search(KFold(3, shuffle=True)).fit(X, y)  # its folds come from NumPy's global generator
    after = np.random.get_state()[1].copy()
    np.random.seed(0)
    folds = list(KFold(3, shuffle=True).split(X))  # the search drew these first
    stored = ll.get_predictions(_search_run("preds-unseeded"), split="cv")
    expected = cross_val_predict(clone(search.best_estimator_), X, y, cv=folds, method="predict_proba")
    np.testing.assert_array_equal(stored.proba, expected)
    np.random.seed(0)
    list(KFold(3, shuffle=True).split(X))
    np.testing.assert_array_equal(after, np.random.get_state()[1])  # the extra pass drew nothing


def test_nothing_is_stored_by_default_or_without_complete_folds(digits) -> None:
    X, y = digits
    X = _numeric(X)
    llsk.autolog(experiment="preds-off")
    search = _search(3).fit(X, y)
    search.score(X, y)
    run = _search_run("preds-off")
    with pytest.raises(NoPredictionsError):
        ll.get_predictions(run, split="cv")
    evaluation = _evaluation_run(run)
    assert not [a for a in evaluation.artifacts if a.kind == "predictions"]

    llsk.autolog(experiment="preds-shuffle", log_predictions=True)
    _search(ShuffleSplit(3, test_size=0.3, random_state=0)).fit(X, y)  # test sets overlap: no out-of-fold
    assert not [a for a in _search_run("preds-shuffle").artifacts if a.kind == "predictions"]


def _summary(search) -> tuple[dict, dict]:
    results = {k: v for k, v in search.cv_results_.items() if "time" not in k}
    return search.best_params_, results


def test_the_search_and_the_global_generators_are_unchanged(digits) -> None:
    X, y = digits
    X = _numeric(X).to_numpy()

    def fit() -> tuple[tuple[dict, dict], np.ndarray]:
        np.random.seed(1)
        tree = DecisionTreeClassifier(random_state=None)  # draws from NumPy's global generator
        search = GridSearchCV(
            tree, {"max_depth": [3, 6], "max_features": [0.3, 0.6]}, cv=KFold(3, shuffle=True)
        )
        search.fit(X, y)
        return _summary(search), np.random.random_sample(5)

    llsk.autolog(experiment="preds-same", log_predictions=True)
    tracked = fit()
    assert ll.get_predictions(_search_run("preds-same"), split="cv").rows == len(y)
    llsk.autolog(disable=True)
    plain = fit()
    assert tracked[0][0] == plain[0][0]
    assert tracked[0][1].keys() == plain[0][1].keys()
    for key, value in plain[0][1].items():
        np.testing.assert_array_equal(np.asarray(tracked[0][1][key]), np.asarray(value), err_msg=key)
    np.testing.assert_array_equal(tracked[1], plain[1])
