"""Odd params and fold values: a typed error naming the key, never a RecursionError, a
TypeError from deep inside, or a value silently dropped."""

from __future__ import annotations

import numpy as np
import pytest

import labledger as ll
from labledger import errors


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One store for the module: every test here refuses input, so the runs stay small."""
    return tmp_path_factory.mktemp("bad-input") / "store"


@pytest.fixture
def run(shared_store):
    with ll.start_run("bad-input", store=shared_store) as run:
        yield run


def _nested_dicts(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


def _nested_lists(depth: int) -> list:
    value: list = [1]
    for _ in range(depth):
        value = [value]
    return value


def test_two_spellings_of_one_param_with_different_values_are_refused(run):
    with pytest.raises(errors.ParamConflictError) as info:
        run.log_params({"opt/lr": 0.1, "opt": {"lr": 0.5}})
    error = info.value
    assert type(error).__name__ == "ParamSpellingConflictError"
    assert error.key == "opt/lr" and (error.old, error.new) == (0.1, 0.5)
    assert "['opt/lr']" in str(error) and "['opt']['lr']" in str(error)
    assert run.params == {}, "nothing of the call is logged"
    assert ll.get_run(run.id, store=run.store).params == {}


def test_deeper_spellings_and_the_other_order_are_refused_too(run):
    with pytest.raises(errors.ParamConflictError, match=r"\['a'\]\['b/c'\].*\['a/b'\]\['c'\]"):
        run.log_params({"a": {"b/c": 1}, "a/b": {"c": 2}})
    with pytest.raises(errors.ParamConflictError, match=r"\['opt'\]\['lr'\] = 0.5.*\['opt/lr'\] = 0.1"):
        run.log_params({"opt": {"lr": 0.5}, "opt/lr": 0.1})


def test_two_spellings_of_one_param_with_equal_values_give_one_key(run):
    run.log_params({"opt/lr": 0.5, "opt": {"lr": 0.5, "name": "adam"}})
    assert run.params == {"opt/lr": 0.5, "opt/name": "adam"}
    run.flush()
    assert ll.get_run(run.id, store=run.store).params == {"opt/lr": 0.5, "opt/name": "adam"}
    with pytest.raises(errors.ParamConflictError):  # 1 and 1.0 are different values
        run.log_params({"n": 1, "n/": {}, "x/y": 1, "x": {"y": 1.0}})


def _self_dict() -> dict:
    d: dict = {"x": 1}
    d["self"] = d
    return d


def _self_list() -> list:
    items: list = [1]
    items.append(items)
    return items


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (_self_dict(), "contains itself"),
        (_self_list(), "contains itself"),
        ([_self_dict()], "contains itself"),
        (_nested_dicts(5000), "nested more than 100 levels"),
        (_nested_lists(5000), "nested more than 100 levels"),
        ({"k": _nested_lists(5000)}, "nested more than 100 levels"),
    ],
    ids=[
        "self-dict",
        "self-list",
        "self-dict-in-list",
        "5000-deep-dict",
        "5000-deep-list",
        "deep-list-in-dict",
    ],
)
@pytest.mark.timeout(30)
def test_self_referencing_and_very_deep_params_name_the_key(run, value, reason):
    with pytest.raises(errors.InvalidValueError) as info:
        run.log_params({"model": value})
    assert info.value.key == ("model/k" if isinstance(value, dict) and "k" in value else "model")
    assert reason in str(info.value)
    assert run.params == {}


@pytest.mark.timeout(30)
def test_deep_metadata_and_summaries_name_their_key(run, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("a")
    with pytest.raises(errors.InvalidValueError, match=r"metadata.*nested more than 100"):
        run.log_artifact(f, metadata={"tree": _nested_lists(5000)})
    with pytest.raises(errors.InvalidValueError, match=r"metadata.*contains itself"):
        run.log_artifact(f, metadata=_self_dict())
    with pytest.raises(errors.InvalidValueError, match=r"summary.*nested more than 100"):
        run.log_dataset("d", fingerprint="abc", schema=_nested_dicts(5000))


def test_params_up_to_the_depth_limit_are_stored_as_they_are(run):
    run.log_params({"deep": _nested_lists(98), "tree": _nested_dicts(60)})
    run.flush()
    params = ll.get_run(run.id, store=run.store).params
    assert params["deep"] == _nested_lists(98)
    assert params["tree/" + "a/" * 60 + "leaf"] == 1


def _generator():
    yield from (0.9, 0.8)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (np.array(0.5), "0-d array"),
        (_generator(), "read once"),
        (iter([0.9, 0.8]), "read once"),
        ({0.9, 0.8}, "no order"),
        (frozenset({0.9}), "no order"),
        (np.ones((2, 3)), "2-d array"),
        ({"a": 0.9}, "not a sequence"),
        ("0.9", "not a sequence"),
        (0.9, "sequence of numbers"),
        ([], "at least one"),
    ],
    ids=["0-d", "generator", "iterator", "set", "frozenset", "2-d", "dict", "str", "float", "empty"],
)
def test_fold_values_that_are_not_one_number_per_fold_name_the_key(run, values, reason):
    with pytest.raises(errors.InvalidValueError) as info:
        run.log_folds("accuracy", values)
    assert info.value.key == "accuracy"
    assert reason in str(info.value)
    assert ll.get_run(run.id, store=run.store).folds.empty


def test_fold_values_from_arrays_tuples_and_views_are_taken(run):
    assert run.log_folds("a", np.array([0.5, 0.7]))["mean"] == pytest.approx(0.6)
    assert run.log_folds("b", (0.5, 0.7))["max"] == 0.7
    assert run.log_folds("c", {"f0": 0.5, "f1": 0.7}.values())["min"] == 0.5
    assert run.log_folds("d", np.float32([0.25]))["mean"] == 0.25
    with pytest.raises(errors.InvalidValueError, match=r"'e\[1\]'"):
        run.log_folds("e", [0.5, "high"])
