"""The compare page's data: runs side by side with the verdicts of ``labledger compare``, the
paired tests on the examples the runs' stored predictions share, and the experiment's runs as
points for the parallel-coordinates and scatter charts.

>>> from labledger.store import open_store
>>> data = compare_data(open_store("/tmp/ledger", create=False), ["digits/a", "digits/b"])  # doctest: +SKIP
>>> data["tests"][0]["verdict"]                                                             # doctest: +SKIP
'A better than B on accuracy, p=0.012 (Nadeau–Bengio corrected resampled t-test)'
"""

from __future__ import annotations

import json
from itertools import combinations
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.query.runs import get_run, run_rows
from labledger.ui.runs_table import hyperparameters_first

if TYPE_CHECKING:
    from labledger.query.run_view import RunView
    from labledger.store.backend import Backend

__all__ = ["compare_data", "experiment_points", "paired_on_examples"]

#: Runs of the experiment drawn in the parallel-coordinates and scatter charts, at most.
MAX_POINTS = 2000
MAX_DIMENSIONS = 8
#: What the paired section says when the stored predictions cannot be read.
PAIRED_MISSING = "The paired tests read stored Parquet tables: pip install 'labledger[parquet]' (pyarrow)."

_NOT_TESTED = "no paired test — "


def _same(values: list[Any]) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) <= 1


def _params_table(views: list[RunView]) -> list[dict[str, Any]]:
    keys = sorted({k for v in views for k in v.params})
    rows = []
    for k in keys:
        values = [v.params.get(k) for v in views]
        rows.append({"key": k, "values": values, "differs": not _same(values)})
    rows.sort(key=lambda r: not r["differs"])  # differences first
    return rows


def _metrics_table(views: list[RunView], split: str) -> list[dict[str, Any]]:
    rows = []
    fold_keys = sorted({k for v in views for (k, s) in v.fold_stats if s == split})
    for k in fold_keys:
        rows.append({"key": k, "kind": "folds", "values": [v.fold_stats.get((k, split)) for v in views]})
    for k in sorted({k for v in views for k in v.summary}):
        values = [v.summary[k].get("last") if k in v.summary else None for v in views]
        rows.append({"key": k, "kind": "metrics", "values": values})
    return rows


def experiment_points(st: Backend, experiment: str, highlight: list[str]) -> dict[str, Any]:
    """The experiment's runs (children included) as ``params`` and ``metrics`` values for charts
    (``params``: the varying ones, hyperparameters first, then what the integrations record):
    ``{"params": [...], "metrics": [...], "runs": [{"id", "name", "params": {...}, "metrics": {...}}]}``.

    A fold metric's value is its mean, a logged metric's its last value.
    """
    rows = run_rows(experiment, st, include_children=True, limit=MAX_POINTS)
    ids = set(highlight)
    missing = ids - {r["id"] for r in rows}
    if missing:  # compared runs past the first MAX_POINTS: read those alone
        quoted = ", ".join("'" + i + "'" for i in sorted(missing))
        rows += run_rows(experiment, st, include_children=True, where=f"id in ({quoted})")
    seen: dict[str, set[str]] = {}
    runs = []
    metric_keys: dict[str, None] = {}
    for r in rows:
        params = {k: v for k, v in r.get("params", {}).items() if isinstance(v, int | float | str | bool)}
        for k, v in params.items():
            seen.setdefault(k, set()).add(json.dumps(v, default=str))
        metrics: dict[str, Any] = {f"folds.{k}": s.get("mean") for k, s in r.get("folds", {}).items()}
        metrics.update({f"metrics.{k}": v for k, v in r.get("metrics", {}).items()})
        metric_keys.update(dict.fromkeys(metrics))
        runs.append({"id": r["id"], "name": r["name"], "params": params, "metrics": metrics})
    coverage = {k: sum(1 for r in runs if k in r["params"]) for k in seen}
    varying = hyperparameters_first([k for k, values in seen.items() if len(values) > 1], coverage)
    truncated = len(rows) >= MAX_POINTS
    return {"params": varying, "metrics": list(metric_keys), "runs": runs, "truncated": truncated}


def _has_predictions(view: RunView) -> bool:
    return any(a.kind == "predictions" for a in view.artifacts)


def _pair(line: str, views: list[RunView], labels: list[str]) -> dict[str, Any] | None:
    """One line of :func:`~labledger.predictions.analysis.paired_verdicts` (its runs named by the
    page's labels), with the two runs it is about."""
    found = [
        (i, j)
        for (i, a), (j, b) in combinations(enumerate(views), 2)
        if line.startswith(f"{a.id} vs {b.id}: ")
    ]
    if not found:
        return None
    i, j = found[0]
    verdict = line[len(f"{views[i].id} vs {views[j].id}: ") :]
    side = [{"label": labels[k], "id": views[k].id, "name": views[k].name} for k in (i, j)]
    tested = not verdict.startswith(_NOT_TESTED)
    return {"a": side[0], "b": side[1], "tested": tested, "verdict": verdict, "line": line}


def paired_on_examples(
    st: Backend, views: list[RunView], labels: list[str], split: str = "test"
) -> dict[str, Any]:
    """The paired tests of ``labledger compare`` on the examples the runs' stored predictions
    share (:func:`~labledger.predictions.analysis.paired_verdicts`: McNemar's test, or a paired
    loss test for regression), one entry per pair of runs with predictions.

    ``{"pairs": [{"a", "b", "tested", "verdict", "line"}], "problem"}``: ``a`` and ``b`` are
    ``{"label", "id", "name"}``; ``line`` is the library's line, ``verdict`` its sentence, the
    runs named by the page's labels; ``tested`` is false for runs scored on other examples.

    >>> paired_on_examples(store, views, ["A", "B"])["pairs"][0]["verdict"]  # doctest: +SKIP
    "B fixes 3 examples A gets wrong and breaks 9 A gets right (net -6 of 171); McNemar's ..."
    """
    from labledger.predictions.analysis import paired_verdicts

    if sum(map(_has_predictions, views)) < 2:
        return {"pairs": [], "problem": None}
    try:
        lines = paired_verdicts([v.id for v in views], split=split, store=st, labels=labels)
    except ImportError:
        return {"pairs": [], "problem": PAIRED_MISSING}
    except LabledgerError as e:  # e.g. a classification run beside a regression run
        return {"pairs": [], "problem": f"No paired test on the stored predictions: {e}"}
    pairs = [_pair(line, views, labels) for line in lines]
    return {"pairs": [p for p in pairs if p is not None], "problem": None}


def compare_data(
    st: Backend, refs: list[str], metric: str | None = None, split: str = "test"
) -> dict[str, Any]:
    """Runs (ids, prefixes or ``experiment/name``), their params and metrics tables, and the
    paired tests of :func:`labledger.compare` with their verdicts and comparability issues, and
    ``paired_on_examples`` (see :func:`paired_on_examples`).

    :raises RunNotFoundError: a reference names no run.
    :raises ValueError: fewer than two runs.
    """
    from labledger.analysis.compare import compare

    views = [get_run(r, st) for r in refs]
    comparison = compare(views, metric=metric, split=split)
    tested = comparison.to_dict()
    issues = []
    for test in tested["tests"]:
        for issue in test["issues"]:
            if issue not in issues:
                issues.append(issue)
    return {
        "runs": [
            {
                "label": label,
                "id": v.id,
                "name": v.name,
                "experiment": v.experiment,
                "status": v.status,
                "metric_keys": list(v.summary),
            }
            for label, v in zip(comparison.labels, views, strict=True)
        ],
        "params": _params_table(views),
        "metrics": _metrics_table(views, split),
        "tests": tested["tests"],
        "issues": issues,
        "comparable": comparison.comparable,
        "split": split,
        "paired_on_examples": paired_on_examples(st, views, comparison.labels, split),
    }
