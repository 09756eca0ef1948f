"""run.log_predictions stores what the model predicted, typed, and reads back exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyarrow")

from sklearn.datasets import load_diabetes, load_digits, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split

import labledger as ll
from labledger.errors import InvalidValueError, RunFinishedError
from labledger.predictions.read import NoPredictionsError


def _digits(seed: int = 0):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=seed)
    model = LogisticRegression(max_iter=300).fit(X_train, y_train)
    features = pd.DataFrame({"ink": X_test.sum(axis=1), "corner": np.where(X_test[:, 0] > 0, "yes", "no")})
    return model, X_test, y_test, features


def test_classification_round_trip_with_probabilities_and_features():
    model, X_test, y_test, features = _digits()
    proba = model.predict_proba(X_test)
    with ll.start_run("preds") as run:
        record = run.log_predictions(y_test, model.predict(X_test), proba=proba, features=features)
    assert record.kind == "predictions" and record.name == "predictions.parquet"
    p = ll.get_predictions(run.id)
    assert p.task == "classification" and p.rows == len(y_test) and p.classes == list(range(10))
    np.testing.assert_array_equal(p.y_true, y_test)
    np.testing.assert_array_equal(p.y_pred, model.predict(X_test))
    np.testing.assert_array_equal(p.proba, proba)
    np.testing.assert_array_equal(p.ids, np.arange(len(y_test)))
    pd.testing.assert_frame_equal(p.features, features, check_dtype=False)
    assert (
        p.meta["ids"] == "position" and p.meta["split"] == "test" and p.meta["features"] == ["ink", "corner"]
    )


def test_the_data_fingerprint_says_whether_two_runs_saw_the_same_examples():
    model, X_test, y_test, features = _digits(0)
    other, X2, y2, f2 = _digits(1)
    fingerprints = []
    for m, X, y, f in (
        (model, X_test, y_test, features),
        (other, X_test, y_test, features),
        (other, X2, y2, f2),
    ):
        with ll.start_run("fp") as run:
            run.log_predictions(y, m.predict(X), features=f)
        fingerprints.append(ll.get_predictions(run.id).meta["data_fingerprint"])
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]


def test_string_labels_given_ids_and_several_splits():
    X, y = load_iris(return_X_y=True, as_frame=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = LogisticRegression(max_iter=500).fit(X, names)
    ids = [f"flower-{i}" for i in range(len(X))]
    with ll.start_run("iris") as run:
        run.log_predictions(
            names, model.predict(X), proba=model.predict_proba(X), ids=ids, classes=model.classes_
        )
        run.log_predictions(names[:50], model.predict(X[:50]), split="val")
    test, val = ll.get_predictions(run.id), ll.get_predictions(run.id, split="val")
    assert test.classes == ["setosa", "versicolor", "virginica"] and test.ids[3] == "flower-3"
    assert val.rows == 50 and val.proba is None and val.meta["ids"] == "position"
    with pytest.raises(NoPredictionsError, match="test, val"):
        ll.get_predictions(run.id, split="holdout")


def test_regression_is_recognised():
    X, y = load_diabetes(return_X_y=True)
    model = Ridge().fit(X[:300], y[:300])
    with ll.start_run("diabetes") as run:
        run.log_predictions(y[300:], model.predict(X[300:]))
    p = ll.get_predictions(run.id)
    assert p.task == "regression" and p.proba is None
    np.testing.assert_allclose(p.y_pred, model.predict(X[300:]))


def test_bad_input_names_the_argument():
    with ll.start_run("bad") as run:
        with pytest.raises(InvalidValueError, match="y_pred"):
            run.log_predictions([0, 1, 1], [0, 1])
        with pytest.raises(InvalidValueError, match="y_true"):
            run.log_predictions([0.5, np.nan], [0.1, 0.2])
        with pytest.raises(InvalidValueError, match="ids"):
            run.log_predictions([0, 1], [0, 1], ids=[7, 7])
        with pytest.raises(InvalidValueError, match="proba"):
            run.log_predictions([0, 1], [0, 1], proba=[[0.5, 0.5]])
        with pytest.raises(InvalidValueError, match="features"):
            run.log_predictions([0, 1], [0, 1], features=pd.DataFrame({"a": [1, 2, 3]}))
        with pytest.raises(InvalidValueError, match="classes"):
            run.log_predictions(["a", "b"], ["a", "b"], proba=[[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    with pytest.raises(RunFinishedError):
        run.log_predictions([0, 1], [0, 1])


def test_many_predictions_with_ten_classes_log_and_read_back():
    rng = np.random.default_rng(0)
    n = 200_000
    proba = rng.dirichlet(np.ones(10), n)
    y_pred = proba.argmax(axis=1)
    features = pd.DataFrame({"region": rng.choice(["n", "s", "e", "w"], n), "age": rng.integers(18, 90, n)})
    with ll.start_run("big") as run:
        run.log_predictions(y_pred, y_pred, proba=proba, features=features)
    p = ll.get_predictions(run.id)
    assert p.rows == n and p.proba is not None and p.proba.shape == (n, 10)
    assert (p.features["region"].to_numpy() == features["region"].to_numpy()).all()


@pytest.mark.parametrize(
    ("y_true", "y_pred", "task"),
    [
        (np.arange(200) % 100, (np.arange(200) + 1) % 100, "classification"),  # 100 integer classes
        (np.arange(200) % 100 * 1.0, (np.arange(200) + 1) % 100 * 1.0, "regression"),  # whole floats, many
        (np.arange(20) % 4 * 1.0, np.arange(20) % 4 * 1.0, "classification"),  # whole floats, few
        (np.linspace(0, 1, 20), np.linspace(0, 1, 20) + 0.1, "regression"),
        (np.array(["a", "b"] * 10), np.array(["a"] * 20), "classification"),
    ],
)
def test_the_stored_task_and_every_analysis_follow_one_rule(run, y_true, y_pred, task):
    """The task a table records is the one ll.errors guesses from the same arrays."""
    from labledger.analysis.slices import overall_summary

    run.log_predictions(y_true, y_pred)
    stored = ll.get_predictions(run.id)
    assert stored.task == task
    assert overall_summary(y_true, y_pred)["task"] == task
    assert ll.errors(run.id).attrs["metric"] == ("accuracy" if task == "classification" else "rmse")


def test_probabilities_whose_rows_do_not_sum_to_one_are_refused(run):
    with pytest.raises(InvalidValueError, match="summing to 1") as e:
        run.log_predictions([1, 0, 1], [1, 0, 1], proba=np.ones((3, 2)))
    assert e.value.key == "proba"
    run.log_predictions([1, 0, 1], [1, 0, 1], proba=np.float16([[0.3, 0.7], [0.8, 0.2], [0.1, 0.9]]))
    assert ll.get_predictions(run.id).proba.shape == (3, 2)
