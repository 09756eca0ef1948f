"""``labledger runs`` is linear in the number of metric keys."""

from __future__ import annotations

from click.testing import CliRunner

import labledger as ll
from labledger.cli import main

try:
    from labledger.cli.render import _headline
except ImportError:  # pragma: no cover - where the table code lived before
    from labledger.cli.app import _headline  # type: ignore[attr-defined,no-redef]


class CountingKey(str):
    """A key that counts how often it is compared (list searches compare; dict lookups hash)."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        CountingKey.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_choosing_the_headline_columns_compares_each_key_a_bounded_number_of_times():
    keys = 3000
    rows = [
        {"params": {"p": run}, "metrics": {CountingKey(f"m{i}"): 1.0 for i in range(keys)}, "folds": {}}
        for run in range(2)
    ]
    CountingKey.compared = 0
    params, metrics, folds = _headline(rows)
    assert metrics == ["m0", "m1", "m2", "m3"] and params == ["p"] and folds == []
    assert CountingKey.compared <= 4 * keys, f"{CountingKey.compared:,} comparisons for {keys:,} keys"


def test_a_run_with_many_metric_keys_lists(store_path):
    with ll.start_run("wide") as run:
        run.log_metrics({f"m{i:05d}": float(i) for i in range(20_000)}, step=0)
    result = CliRunner().invoke(main, ["runs", "wide"], catch_exceptions=False)
    assert result.exit_code == 0
    header = result.output.splitlines()[0].split()
    assert header[-4:] == ["m00000", "m00001", "m00002", "m00003"]
