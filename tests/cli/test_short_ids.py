"""Printed run ids are unique prefixes within the store, and any printed id names its run everywhere."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

import labledger as ll
from labledger import formatting as fmt
from labledger.cli import main


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def search(store_path):
    """A search whose candidates start within the same milliseconds (their ids share 12 digits)."""
    with ll.start_run("ids", name="search") as parent:
        store = parent.store
        for _round in range(20):
            with store.transaction():
                for i in range(12):
                    with ll.start_run("ids", parent=parent) as child:
                        child.log_folds("accuracy", [0.9 + i / 100, 0.91, 0.92])
            ids = [r["id"] for r in ll.query.runs.run_rows("ids")]
            if len({i[:12] for i in ids}) < len(ids):
                break
    ids = [r["id"] for r in ll.query.runs.run_rows("ids")]
    assert len({i[:12] for i in ids}) < len(ids), "the candidates should share millisecond prefixes"
    return ids


def _printed_ids(output: str) -> list[str]:
    return re.findall(r"^(?:(?:\d+|-)\s+)?([0-9a-f]{12,32})\s", output, flags=re.M)


@pytest.mark.timeout(60)
def test_every_printed_id_is_a_unique_prefix_that_works_in_every_command(search):
    listed = _printed_ids(invoke("runs", "ids"))
    assert len(listed) == len(search) and len(set(listed)) == len(listed)
    for short in listed:
        assert len(short) >= fmt.MIN_ID_LENGTH
        assert [i for i in search if i.startswith(short)] == [next(i for i in search if i.startswith(short))]
    full = {short: next(i for i in search if i.startswith(short)) for short in listed}
    for short in listed[:6]:
        assert f"({full[short]})" in invoke("show", short)
    board = _printed_ids(invoke("leaderboard", "ids", "-m", "accuracy", "--children"))
    assert set(board) <= set(listed) and len(set(board)) == len(board)
    a, b = listed[0], listed[1]
    compared = invoke("compare", a, b, "--metric", "accuracy")
    assert fmt.short_id(full[a]) in compared and fmt.short_id(full[b]) in compared
    assert json.loads(invoke("diff", a, b, "--json")) is not None
    # scripts keep the full ids
    assert {r["id"] for r in json.loads(invoke("runs", "ids", "--json"))} == set(search)


def test_short_ids_lengthen_only_where_needed():
    ids = sorted(
        ["01a2168810f07001aaaa", "01a2168810f07002bbbb", "01a2168810f1700ccccc", "01b0000000007000dddd"]
    )
    short = fmt.ShortIds(ids)
    assert [short(i) for i in ids] == ["01a2168810f07001", "01a2168810f07002", "01a2168810f1", "01b000000000"]
    assert fmt.ShortIds(ids, minimum=4)("01b0000000007000dddd") == "01b0"
    assert fmt.ShortIds([])("01a2168810f07001aaaa") == "01a2168810f0"
