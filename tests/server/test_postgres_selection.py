"""Selecting runs from PostgreSQL gives the runs, rows and order the SQLite store gives.

A SQLite store is filled through labledger (runs with params of every JSON type, NaN among
them, metrics, folds, tags, datasets, a child and a failed run), copied into PostgreSQL, and
each filter and order is run on both.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

import labledger as ll
from labledger.query.aggregation import direction_resolver
from labledger.query.filter_syntax import Comparison, Field, Logical, parse_field
from labledger.query.filters import normal_form, parse, parse_order_by
from labledger.store import open_store
from labledger.store.backend import FilterTooLargeError, RunSelection
from labledger.store.postgres import upgrade
from labledger.store.postgres.filter_sql import condition_sql, real_text, sqlite_text
from labledger.store.postgres.selection import field_values, select_runs
from labledger.store.sqlite import Store

from .test_postgres_reads import copy_store, same

MODELS = ("svc", "SVC", "tree", "forest", "knn", "5", "naïve", "a_b", "a%b")


@dataclass
class Ledger:
    store: Store
    conn: psycopg.Connection


@pytest.fixture
def ledger(tmp_path: Path, pg_conn: psycopg.Connection) -> Ledger:
    folder = tmp_path / "ledger"
    parent = None
    for i in range(30):
        params: dict[str, Any] = {
            "lr": [0.1, 0.01, 1e-7, 0.30000000000000004, 2.0, 1.5, -3.25, 1e20][i % 8],
            "layers": i % 5,
            "model": MODELS[i % len(MODELS)],
            "flag": bool(i % 2),
            "mixed": [1, "1", 2.5, "b", True, None, math.nan, [1, "x y"], {"k": "v"}, "NaN"][i % 10],
        }
        if i % 7 == 3:
            del params["layers"]
        experiment = "exp-a" if i % 3 else "exp-b"
        run = ll.start_run(
            experiment,
            name=f"run-{i:02d}",
            params=params,
            tags={"stage": "abc"[i % 3]},
            hypothesis=None if i % 4 else f"H{i}",
            parent=parent if i == 7 else None,
            store=folder,
        )
        if i % 6:
            for step in range(3):
                run.log_metric("loss", (i % 11 + 1) / (step + 2), step=step)
            run.log_metric("acc", math.nan if i == 5 else i / 40, step=0)
        if i % 4 == 1:
            run.log_folds("f1", [0.5 + i / 100, 0.6, 0.7])
        if i % 5 == 2:
            run.log_dataset("digits", fingerprint=f"fp{i % 3}", role="train", rows=10)
        if i == 0:
            parent = run
        run.end("failed", error="boom") if i == 11 else run.end()
    store = open_store(folder)
    assert isinstance(store, Store)
    store.set_setting("direction.loss", "min")
    upgrade(pg_conn)
    copy_store(store.path / "labledger.db", pg_conn)
    return Ledger(store, pg_conn)


FILTERS = [
    "params.model = 'svc'",
    "params.model != 'svc'",
    "params.model = 5",
    "params.model != 5",
    "params.model < 'm'",
    "params.model >= 'knn'",
    "params.model > 3",
    "params.model in ('svc', 'tree', 5)",
    "params.model not in ('svc', 'tree')",
    "params.model like 'S%'",
    "params.model like 'a_b'",
    "params.model not like '%v%'",
    "params.model like 'NAÏVE'",
    "params.lr = 0.1",
    "params.lr = 0.3",
    "params.lr < 0.05",
    "params.lr >= 1.5",
    "params.lr > '0'",
    "params.lr like '1.0%'",
    "params.layers = 2",
    "params.layers = 2.0",
    "params.layers <= 2",
    "params.layers is null",
    "params.layers is not null",
    "not params.layers = 2",
    "params.flag = true",
    "params.flag = 1",
    "params.flag != false",
    "params.mixed = 1",
    "params.mixed = '1'",
    "params.mixed != 1",
    "params.mixed > 0",
    "params.mixed < 'z'",
    "params.mixed is null",
    "params.mixed = 'NaN'",
    "params.mixed = '[1,\"x y\"]'",
    "params.mixed like '{%'",
    "params.mixed in (1, 'b', 2.5)",
    "params.mixed not in (1, 'b')",
    "params.nope is null",
    "params.nope != 1",
    "name like 'RUN-1%'",
    "name = 'run-03' or name = 'run-04'",
    "status = 'failed'",
    "status != 'finished' and experiment = 'exp-b'",
    "experiment in ('exp-b')",
    "hypothesis is null",
    "hypothesis like 'h1%'",
    "parent is not null",
    "start_time > '2000-01-01'",
    "duration >= 0",
    "end_time < 1",
    "tags.stage = 'a'",
    "tags.stage in ('a', 'b')",
    "not tags.stage = 'c'",
    "tags.stage > 'a'",
    "metrics.loss < 1",
    "min(metrics.loss) <= 0.5",
    "max(metrics.loss) > 2",
    "best(metrics.loss) < 1",
    "count(metrics.loss) = 3",
    "count(metrics.loss) = '3'",
    "metrics.loss = '0.5'",
    "metrics.acc is null",
    "metrics.acc is not null",
    "metrics.acc >= 0.5",
    "folds.f1.mean > 0.6",
    "folds.f1.n = 3",
    "folds.f1.std is not null",
    "dataset.train = 'fp1'",
    "dataset.train is null",
    "(params.layers = 1 or params.layers = 2) and not (tags.stage = 'b' or metrics.loss > 1)",
    "not (params.model like 's%' and params.flag = true)",
    "params.model > 'SVC'",
    "params.lr = 1e-7",
    "params.lr in (0.1, 2, 1.5)",
    "params.mixed like '1'",
    "params.mixed like '[1,%'",
    "params.mixed like '2.5'",
    "params.mixed >= 1",
    "name = 5",
    "tags.stage = 1",
    "tags.stage != 1",
    "metrics.loss in ('0.5', 1)",
    "count(metrics.loss) like '3'",
    "folds.f1.mean like '0.5%'",
    "metrics.acc like '0.%'",
    "id like '0%'",
    "host is not null and kind = 'offline'",
    "author != 'nobody'",
    "experiment not like 'EXP-A'",
]

ORDERS = [
    None,
    "name",
    "-name",
    "params.model",
    "-params.model",
    "params.mixed",
    "-params.mixed",
    "params.lr, -name",
    "params.layers desc",
    "metrics.loss",
    "-best(metrics.loss)",
    "count(metrics.loss), params.model",
    "metrics.acc",
    "folds.f1.mean desc",
    "tags.stage, -params.lr",
    "start_time",
    "dataset.train",
]


def _selection(
    store: Store,
    where: str | None,
    order: str | None,
    limit: int | None,
    brief: bool = False,
    children: bool = True,
    experiment: str | None = None,
) -> RunSelection:
    direction_of = direction_resolver(store)
    tree = normal_form(parse(where), direction_of) if where else None
    return RunSelection(experiment, children, tree, parse_order_by(order, direction_of), limit, brief)


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


@pytest.mark.parametrize("where", FILTERS)
def test_each_filter_selects_the_same_runs(ledger: Ledger, where: str) -> None:
    selection = _selection(ledger.store, where, None, None)
    pg, lite = select_runs(ledger.conn, selection), ledger.store.select_runs(selection)
    assert _ids(pg) == _ids(lite), where


@pytest.mark.parametrize("order", ORDERS)
def test_each_order_is_the_same(ledger: Ledger, order: str | None) -> None:
    for limit in (None, 0, 1, 7):
        for where in (None, "params.layers is not null"):
            selection = _selection(ledger.store, where, order, limit)
            assert _ids(select_runs(ledger.conn, selection)) == _ids(ledger.store.select_runs(selection)), (
                order,
                limit,
                where,
            )


def test_rows_and_brief_rows(ledger: Ledger) -> None:
    for brief in (False, True):
        for experiment, children in (("exp-a", True), ("exp-b", False), (None, False)):
            selection = _selection(
                ledger.store, "params.layers >= 1", "-params.lr", 5, brief, children, experiment
            )
            same(select_runs(ledger.conn, selection), ledger.store.select_runs(selection), str(selection))


def test_field_values(ledger: Ledger) -> None:
    ids = [*ledger.store.run_ids(), "nope"]
    for text in (
        "params.mixed",
        "params.lr",
        "params.flag",
        "params.nope",
        "name",
        "parent",
        "start_time",
        "tags.stage",
        "metrics.acc",
        "count(metrics.loss)",
        "min(metrics.loss)",
        "folds.f1.n",
        "folds.f1.mean",
        "dataset.train",
        "hypothesis",
    ):
        field = parse_field(text)
        same(
            dict(sorted(field_values(ledger.conn, ids, field).items())),
            dict(sorted(ledger.store.field_values(ids, field).items())),
            text,
        )


REALS = [
    0.0,
    1.0,
    -2.5,
    0.1,
    1 / 3,
    2 / 3e9,
    1e-4,
    1.5e-5,
    1e-7,
    123456789012345.0,
    1e15,
    9.999999999999999e14,
    -1e20,
    1.2345678901234567e300,
    5e-324,
    math.inf,
    -math.inf,
    0.30000000000000004,
]


def test_reals_read_as_sqlite_writes_them(pg_conn: psycopg.Connection) -> None:
    """``like`` reads a number as its text: SQLite's text of a real."""
    texts = [sqlite3.connect(":memory:").execute("SELECT CAST(? AS TEXT)", (x,)).fetchone()[0] for x in REALS]
    sql = f"SELECT {real_text('x')} FROM unnest(%s::float8[]) WITH ORDINALITY AS u(x, i) ORDER BY i"
    assert [r[0] for r in pg_conn.execute(sql, (REALS,))] == texts
    assert [sqlite_text(x) for x in REALS] == texts


def test_a_nan_summary_reads_as_null(ledger: Ledger) -> None:
    """SQLite keeps no NaN (it reads NULL); a NaN PostgreSQL keeps reads as NULL too."""
    before = _ids(
        select_runs(ledger.conn, _selection(ledger.store, "metrics.acc is null", "metrics.acc", None))
    )
    ledger.conn.execute("SET session_replication_role = replica")  # the run has ended: past its guard
    ledger.conn.execute("UPDATE metric_summary SET last = 'NaN' WHERE key = 'acc' AND last IS NULL")
    ledger.conn.execute("RESET session_replication_role")
    assert ledger.conn.execute("SELECT count(*) FROM metric_summary WHERE last = 'NaN'").fetchone()[0] == 1
    for where in ("metrics.acc is null", "metrics.acc is not null"):
        selection = _selection(ledger.store, where, "metrics.acc", None)
        assert _ids(select_runs(ledger.conn, selection)) == _ids(ledger.store.select_runs(selection)), where
    assert (
        _ids(select_runs(ledger.conn, _selection(ledger.store, "metrics.acc is null", None, None))) == before
    )
    ids = ledger.store.run_ids()
    field = parse_field("metrics.acc")
    assert field_values(ledger.conn, ids, field) == ledger.store.field_values(ids, field)


def test_a_filter_too_large_for_one_query(ledger: Ledger) -> None:
    """More values than PostgreSQL binds point at the comparison where the budget ran out."""
    many = tuple(
        (Comparison(Field("attribute", "name", column=i), "=", f"n{i}"), False) for i in range(64_001)
    )
    with pytest.raises(FilterTooLargeError, match="more than PostgreSQL takes") as caught:
        condition_sql(Logical("or", many))  # one value each
    assert caught.value.column == 64_000
    fits = " or ".join(f"params.k{i} = {i}" for i in range(40)) + " or params.layers in (1, 2)"
    selection = _selection(ledger.store, fits, None, None)
    assert _ids(select_runs(ledger.conn, selection)) == _ids(ledger.store.select_runs(selection))
