"""A listing decodes every stored param value exactly as ``json.loads`` does, whatever its text."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

import labledger as ll
from labledger.query import damage as _damage
from labledger.query.damage import DamagedRecordWarning, DamagedValue
from labledger.store.sqlite import DB_FILENAME

#: Stored texts: the canonical ones labledger writes and others a store may hold.
TEXTS = [
    "0",
    "-0",
    "7",
    "12345678901234567890123",
    "0.1",
    "1e5",
    "-2.5E-3",
    "NaN",
    "Infinity",
    "-Infinity",
    "true",
    "false",
    "null",
    '"rbf"',
    '"caf\\u00e9 \\ud83d\\ude00"',
    '""',
    " 3 ",
    "\t4\n",
    "[1, 2]",
    '{"m": 0.9}',
    "[]",
]
BROKEN = ["01", "1 2", "{broken", "", "nan", "'x'", "\ufeff1"]


def _store_texts(store_path: Path, texts: list[str | bytes]) -> list[str]:
    """One run per text, its param ``p`` holding that text as stored; their ids in order."""
    ids = []
    for i in range(len(texts)):
        with ll.start_run("values", name=f"r{i}") as run:
            run.log_params({"p": 0, "q": i})
        ids.append(run.id)
    conn = sqlite3.connect(store_path / DB_FILENAME)
    conn.execute("DROP TRIGGER params_immutable")
    for run_id, text in zip(ids, texts, strict=True):
        conn.execute("UPDATE params SET value = ? WHERE run_id = ? AND key = 'p'", (text, run_id))
    conn.commit()
    conn.close()
    _damage.forget()
    return ids


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def test_every_value_reads_as_json_loads_reads_it(store_path):
    ids = _store_texts(store_path, list(TEXTS))
    frame = ll.runs("values").set_index("id")
    rows = {r["id"]: r for r in ll.query.runs.run_rows("values")}
    for run_id, text in zip(ids, TEXTS, strict=True):
        expected = json.loads(text)
        assert _same(frame.at[run_id, "params.p"], expected), text
        assert _same(rows[run_id]["params"]["p"], expected), text
    lists = [
        frame.at[run_id, "params.p"] for run_id, text in zip(ids, TEXTS, strict=True) if text == "[1, 2]"
    ]
    lists[0].append(3)  # each run holds its own list
    assert ll.runs("values").set_index("id").at[ids[TEXTS.index("[1, 2]")], "params.p"] == [1, 2]


def test_the_same_list_in_two_runs_is_two_lists(store_path):
    ids = _store_texts(store_path, ["[1]", "[1]", '{"a": 1}', '{"a": 1}'])
    frame = ll.runs("values").set_index("id")
    values = [frame.at[run_id, "params.p"] for run_id in ids]
    assert values == [[1], [1], {"a": 1}, {"a": 1}]
    assert values[0] is not values[1] and values[2] is not values[3]


def test_a_value_json_cannot_read_is_marked_damaged_and_named(store_path):
    ids = _store_texts(store_path, [*BROKEN, b"\xff\xfe"])
    with pytest.warns(DamagedRecordWarning) as caught:
        frame = ll.runs("values").set_index("id")
    assert {w.message.run_id for w in caught} == set(ids)  # type: ignore[union-attr]
    for run_id in ids:
        value = frame.at[run_id, "params.p"]
        assert isinstance(value, DamagedValue) and value.field == "params['p']" and value.run_id == run_id
    assert frame["params.q"].tolist() == sorted(range(len(ids)), reverse=True)  # the rest is read


def test_a_value_stored_as_bytes_reads_as_json_loads_reads_bytes(store_path):
    (run_id,) = _store_texts(store_path, [b'{"lr": 0.5}'])
    assert ll.runs("values").at[0, "params.p"] == {"lr": 0.5}
    assert ll.get_run(run_id).params["p"] == {"lr": 0.5}


def test_runs_without_a_param_or_metric_read_as_missing(store_path):
    with ll.start_run("sparse", name="a") as a:
        a.log_params({"only_a": "x"})
        a.log_metric("m_a", 1.0)
    with ll.start_run("sparse", name="b") as b:
        b.log_params({"only_b": 2})
        b.log_metric("m_b", 2.0)
    frame = ll.runs("sparse").set_index("name")
    assert frame.at["a", "params.only_a"] == "x" and frame.at["b", "params.only_b"] == 2
    assert frame["params.only_b"].isna().tolist() == [False, True]
    assert math.isnan(frame.at["b", "metrics.m_a"]) and frame.at["a", "metrics.m_a"] == 1.0
    assert list(frame.columns[-4:]) == ["params.only_a", "params.only_b", "metrics.m_a", "metrics.m_b"]
