"""The filter language: parsing, SQL compilation, injection attempts, listings and the runs command."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import labledger as ll
from labledger.cli.app import main
from labledger.query.aggregation import (
    InvalidAggregationError,
    InvalidDirectionError,
    aggregate_metric,
    metric_direction,
)
from labledger.query.filters import Comparison, FilterSyntaxError, Logical, Not, compile_filter, parse


def _names(cv_store, where=None, **kw):
    df = ll.runs(cv_store.experiment, store=cv_store.path, where=where, **kw)
    return df["name"].tolist()


def _table_counts(path) -> dict[str, int]:
    conn = sqlite3.connect(path / "labledger.db")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def test_parse_builds_an_ast_with_precedence():
    tree = parse('metrics.val_acc > 0.9 and params.model = "svc" or not tags.team in ("a", \'b\')')
    assert isinstance(tree, Logical) and tree.op == "or"
    left, right = tree.items
    assert isinstance(left, Logical) and left.op == "and"
    assert left.items[0] == Comparison(left.items[0].field, ">", 0.9)
    assert left.items[0].field.kind == "metrics" and left.items[0].field.key == "val_acc"
    assert isinstance(right, Not) and right.item.op == "in" and right.item.value == ("a", "b")


def test_values_are_bound_never_pasted():
    sql, args = compile_filter("params.model = \"x'; DROP TABLE runs; --\" and tags.team like '%vision%'")
    assert "DROP" not in sql and "vision" not in sql and "x'" not in sql
    assert args == ["model", "x'; DROP TABLE runs; --", "team", "%vision%"]
    sql, args = compile_filter("params.`a b'; --` = 1")
    assert "a b" not in sql and args == ["a b'; --", 1]


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("'; DROP TABLE runs; --", 1, "unterminated string"),
        ("1=1 or", 1, "expected a field"),
        ("status = 'x' or 1=1", 17, "expected a field"),
        ("status = 'x'; DROP TABLE runs", 13, "unexpected character ';'"),
        ("status = 'x' -- comment", 14, "unexpected character '-'"),
        ("status = 'x' /* c */", 14, "unexpected character '/'"),
        ("metrics.acc > ", 15, "expected a value"),
        ("metrics.acc >> 1", 14, "expected a value"),
        ("(status = 'x'", 14, "expected ')'"),
        ("status = null", 10, "is null"),
        ("bogus = 1", 1, "unknown field 'bogus'"),
        ("foo.bar = 1", 1, "unknown prefix 'foo'"),
        ("params. = 1", 8, "needs a key"),
        ("status = 'x' and", 17, "expected a field"),
        ("status 'x'", 8, "expected a comparison"),
        ("status = “finished”", 10, "unexpected character '“'"),
        ("status\u200b= 'x'", 7, "U+200B"),
        ("", 1, "empty"),
        ("params.C in ()", 14, "expected a value"),
        ("start_time > 'yesterday'", 14, "ISO date"),
        ("min(params.C) > 1", 5, "metrics.<key> only"),
        ("metrics.x = 12abc", 13, "malformed number"),
        ("name = '\x00'", 9, "U+0000"),
        ("name = '\ud800'", 9, "U+D800"),
    ],
)
def test_parse_errors_point_at_the_column(text, column, fragment):
    with pytest.raises(FilterSyntaxError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, ll.errors.LabledgerError)
    assert err.column == column, str(err)
    assert fragment in str(err)
    assert f"column {column}" in str(err)
    # the caret line points at the same column
    lines = str(err).splitlines()
    assert lines[2].index("^") - 2 == column - 1


def test_injection_attempts_leave_the_store_intact(cv_store):
    before = _table_counts(cv_store.path)
    attempts = [
        "'; DROP TABLE runs; --",
        "1=1 or",
        "status = 'finished' or 1=1",
        "name = 'x' OR '1'='1'",
        "params.model = 'svc'; DELETE FROM params",
        "tags.team = 'vision' /* */",
        'status = "x\'); DROP TABLE runs; --"',
        "name = 'svc-rbf' UNION SELECT * FROM params",
        "params.`model` = 'svc' -- ",
        "ñame = 'ü'",
        "params.C = 99999999999999999999999999",
    ]
    for text in attempts:
        try:
            df = ll.runs(store=cv_store.path, where=text)
        except FilterSyntaxError:
            continue
        assert df.empty, text  # parsed as a harmless literal comparison: matches nothing
    assert _table_counts(cv_store.path) == before
    assert len(ll.runs(cv_store.experiment, store=cv_store.path)) == len(cv_store.ids)


def test_filters_on_real_cv_runs(cv_store):
    names = set(cv_store.ids)
    assert set(_names(cv_store, 'params.model = "svc" and params.C = 10')) == {
        "svc-rbf",
        "svc-half-data",
        "svc-kfold",
        "svc-balanced",
    }
    assert set(_names(cv_store, "params.C = 10.0 and params.kernel = 'rbf'")) == set(
        _names(cv_store, 'params.model = "svc" and params.C = 10')
    )
    assert set(_names(cv_store, 'status = "failed"')) == {"svc-bad-c"}
    assert set(_names(cv_store, 'status != "failed"')) == names - {"svc-bad-c"}
    assert set(_names(cv_store, "folds.accuracy > 0.97")) == {
        "svc-rbf",
        "svc-rbf-c1",
        "knn",
        "svc-half-data",
        "svc-balanced",
    }
    assert set(_names(cv_store, "folds.accuracy.std > 0.02")) == {"gnb", "tree"}
    assert set(_names(cv_store, "folds.train/accuracy.mean = 1")) <= names
    assert "tree" not in _names(cv_store, "folds.train/accuracy = 1")
    assert set(_names(cv_store, "params.model in ('knn', 'gnb')")) == {"knn", "gnb"}
    assert set(_names(cv_store, "params.model not in ('svc', 'knn', 'gnb', 'tree', 'logreg')")) == {"mlp"}
    assert set(_names(cv_store, "name like 'svc-rbf%'")) == {"svc-rbf", "svc-rbf-c1"}
    assert set(_names(cv_store, "tags.team = 'nlp' or (params.model = 'knn' and folds.f1_macro > 0.9)")) == {
        "svc-balanced",
        "knn",
    }
    assert set(_names(cv_store, "tags.team is null")) == {"svc-bad-c"}
    assert set(_names(cv_store, "folds.accuracy is null")) == {"mlp", "svc-bad-c"}
    assert set(_names(cv_store, "not params.model = 'svc'")) == {"logreg", "knn", "tree", "gnb", "mlp"}
    # a text param is never "greater" than a number, and a missing key never matches
    assert _names(cv_store, "params.model > 5") == []
    assert set(_names(cv_store, "params.n_neighbors >= 3")) == {"knn"}
    assert set(_names(cv_store, "params.cv/shuffle = true and params.cv/class = 'KFold'")) == set()
    assert set(_names(cv_store, "params.cv/class = 'KFold'")) == {"svc-kfold"}
    assert set(_names(cv_store, "params.`scoring/accuracy` = 'balanced_accuracy'")) == {"svc-balanced"}
    view = ll.get_run(cv_store.ids["svc-half-data"], store=cv_store.path)
    fingerprint = view.datasets[0]["fingerprint"]
    assert _names(cv_store, f"dataset.train = '{fingerprint}'") == ["svc-half-data"]
    assert set(_names(cv_store, "pipeline is null")) == names
    assert set(_names(cv_store, "experiment = 'digits-cv' and parent is null")) == names
    assert set(_names(cv_store, "start_time > '2000-01-01' and duration >= 0")) == names
    assert set(_names(cv_store, "min(metrics.train/loss) < 1 and count(metrics.train/loss) > 3")) == {"mlp"}
    assert set(_names(cv_store, "best(metrics.train/loss) < 10")) == {"mlp"}
    author = view.author
    if author:
        assert set(_names(cv_store, f"author = '{author}'")) == names


def test_order_by_and_limit(cv_store):
    df = ll.runs(cv_store.experiment, store=cv_store.path, order_by="-folds.accuracy")
    means = df["folds.accuracy.mean"].tolist()
    ranked = [m for m in means if m == m]
    assert ranked == sorted(ranked, reverse=True)
    assert all(m != m for m in means[len(ranked) :])  # runs without the value come last
    top = ll.runs(cv_store.experiment, store=cv_store.path, order_by=["folds.accuracy desc"], limit=3)
    assert top["name"].tolist() == df["name"].tolist()[:3]
    asc = ll.runs(
        cv_store.experiment,
        store=cv_store.path,
        order_by="folds.accuracy, name",
        where="params.model = 'svc'",
    )
    assert asc["folds.accuracy.mean"].iloc[0] == min(asc["folds.accuracy.mean"].dropna())
    assert len(ll.runs(cv_store.experiment, store=cv_store.path, limit=0)) == 0
    with pytest.raises(ValueError):
        ll.runs(store=cv_store.path, limit=-1)
    with pytest.raises(FilterSyntaxError):
        ll.runs(store=cv_store.path, order_by="-metrics.a; drop")


def test_aggregations_and_directions(cv_store, store_path):
    df = ll.runs(
        cv_store.experiment,
        store=cv_store.path,
        where="name = 'mlp'",
        aggregate=["best", "mean_last_3", "min", "max", "count"],
    )
    view = ll.get_run(cv_store.ids["mlp"], store=cv_store.path)
    history = view.metric("train/loss")["value"].to_numpy()
    row = df.iloc[0]
    assert row["metrics.train/loss"] == pytest.approx(history[-1])
    assert row["metrics.train/loss.best"] == pytest.approx(history.min())  # loss: lower is better
    assert row["metrics.train/loss.max"] == pytest.approx(history.max())
    assert row["metrics.train/loss.count"] == len(history)
    assert row["metrics.train/loss.mean_last_3"] == pytest.approx(history[-3:].mean())
    assert aggregate_metric(view, "train/loss", "mean_last_3") == pytest.approx(history[-3:].mean())

    assert metric_direction("val_loss", store=store_path) == "min"
    assert metric_direction("val/rmse", store=store_path) == "min"
    assert metric_direction("neg_mean_squared_error", store=store_path) == "max"
    assert metric_direction("accuracy", store=store_path) == "max"
    assert metric_direction("perplexity", "min", store=store_path) == "min"
    assert metric_direction("perplexity", store=store_path) == "min"
    with pytest.raises(InvalidDirectionError):
        metric_direction("perplexity", "lower", store=store_path)
    with pytest.raises(InvalidAggregationError):
        ll.runs(store=store_path, aggregate="median")
    with ll.start_run("dirs", store=store_path) as run:
        run.log_metrics({"perplexity": 30.0}, step=0)
        run.log_metrics({"perplexity": 10.0}, step=1)
        run.log_metrics({"perplexity": 20.0}, step=2)
    assert ll.runs("dirs", store=store_path, aggregate="best")["metrics.perplexity.best"].iloc[0] == 10.0
    metric_direction("perplexity", "max", store=store_path)
    assert ll.runs("dirs", store=store_path, aggregate="best")["metrics.perplexity.best"].iloc[0] == 30.0
    assert len(ll.runs("dirs", store=store_path, where="best(metrics.perplexity) = 30")) == 1


def test_runs_command_where_order_by_columns(cv_store):
    runner = CliRunner()
    store = ["--store", str(cv_store.path)]
    out = runner.invoke(
        main,
        [
            "runs",
            cv_store.experiment,
            "--where",
            "folds.accuracy > 0.97 and params.model = 'svc'",
            "--order-by",
            "-folds.accuracy",
            "--columns",
            "name,params.C,folds.accuracy,folds.accuracy.n",
            *store,
        ],
    )
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert lines[0].split() == ["id", "name", "params.C", "folds.accuracy", "folds.accuracy.n"]
    body = [line.split()[1] for line in lines[2:]]
    assert set(body) == {"svc-rbf", "svc-rbf-c1", "svc-half-data", "svc-balanced"}
    assert "±" in lines[2]
    out = runner.invoke(
        main,
        [
            "runs",
            "--where",
            "name = 'mlp'",
            "--columns",
            "name,dataset.train,min(metrics.train/loss)",
            "--json",
            *store,
        ],
    )
    view = ll.get_run(cv_store.ids["mlp"], store=cv_store.path)
    assert json.loads(out.output) == [
        {
            "id": view.id,
            "name": "mlp",
            "dataset.train": None,
            "min(metrics.train/loss)": view.summary["train/loss"]["min"],
        }
    ]
    out = runner.invoke(
        main, ["runs", "--where", "name = 'svc-rbf'", "--columns", "dataset.train", "--json", *store]
    )
    svc = ll.get_run(cv_store.ids["svc-rbf"], store=cv_store.path)
    assert json.loads(out.output)[0]["dataset.train"] == svc.datasets[0]["fingerprint"]
    out = runner.invoke(main, ["runs", "--where", "status = 'failed'", "--json", *store])
    assert [r["name"] for r in json.loads(out.output)] == ["svc-bad-c"]
    out = runner.invoke(main, ["runs", "--where", "metrics.acc >", *store])
    assert out.exit_code == 1
    assert "column 14" in out.output and "^" in out.output
    out = runner.invoke(main, ["runs", "--where", "status = 'nope'", *store])
    assert out.exit_code == 0 and "no matching runs" in out.output


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("abcmetrisp._/ '\"`()=<>!,;-*%0123456789\u00e9\u200b\u201c\x00\ud800"))
        | st.characters(),
        max_size=60,
    )
)
def test_arbitrary_text_is_a_clean_parse_error_or_a_harmless_query(cv_store, text):
    try:
        sql, args = compile_filter(text)
    except FilterSyntaxError as e:
        assert 1 <= e.column <= len(text) + 1
        return
    for arg in args:  # user text only ever travels as a parameter
        if isinstance(arg, str) and len(arg) > 3:
            assert arg not in sql
    before = _table_counts(cv_store.path)
    ll.runs(store=cv_store.path, where=text)
    assert _table_counts(cv_store.path) == before
