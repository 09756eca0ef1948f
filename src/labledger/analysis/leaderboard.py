"""Every run of an experiment ranked on one metric, with fold variance and significance.

>>> import labledger as ll
>>> board = ll.leaderboard("digits-svm", metric="accuracy")   # doctest: +SKIP
>>> print(board.render())                                     # doctest: +SKIP
>>> board.to_frame()                                          # doctest: +SKIP

All runs are listed, never only the best: runs ranked by the mean over their
folds (or by the metric's last value when they have no folds), each tested
against the leader with a paired test on the same folds. Runs whose
difference from the leader is not significant are marked ``≈ leader``; runs
that cannot be compared with the leader say why; failed, killed and crashed
runs come last with their status.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labledger import formatting as fmt
from labledger.store import Store

if TYPE_CHECKING:
    import pandas as pd

    from labledger.query.runs import RunView

__all__ = ["Entry", "Leaderboard", "leaderboard"]

RANKED_STATUSES = ("finished", "running")


@dataclass
class Entry:
    """One run's line on the leaderboard."""

    run: RunView
    mean: float
    std: float
    n: int
    source: str  # "folds", "metric" or "" (no value)
    rank: int | None = None
    p_value: float | None = None
    p_adjusted: float | None = None  # p_value after the board's multiple-comparison correction
    tie: bool | None = None  # not significantly different from the leader
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.run.id,
            "name": self.run.name,
            "status": self.run.status,
            "mean": self.mean,
            "std": self.std,
            "n": self.n,
            "source": self.source,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "tie_with_leader": self.tie,
            "note": self.note,
        }


@dataclass
class Leaderboard:
    experiment: str
    metric: str
    split: str
    direction: str
    test: str
    alpha: float
    entries: list[Entry] = field(default_factory=list)
    correction: str = "holm"
    notes: list[str] = field(default_factory=list)  # how the ranked runs were chosen

    def to_frame(self) -> pd.DataFrame:
        """One row per run: rank, id, name, status, mean, std, n, source, p_value, p_adjusted, tie, note."""
        import pandas as pd

        columns = [
            "rank",
            "id",
            "name",
            "status",
            "mean",
            "std",
            "n",
            "source",
            "p_value",
            "p_adjusted",
            "tie_with_leader",
            "note",
        ]
        return pd.DataFrame([e.to_dict() for e in self.entries], columns=columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "metric": self.metric,
            "split": self.split,
            "direction": self.direction,
            "test": self.test,
            "alpha": self.alpha,
            "correction": self.correction,
            "notes": list(self.notes),
            "entries": [e.to_dict() for e in self.entries],
        }

    def render(self, style: Callable[..., str] | None = None) -> str:
        """The text of ``labledger leaderboard``."""
        from labledger.analysis.multiple_testing import CORRECTIONS
        from labledger.analysis.stats import TESTS

        style = style or (lambda text, **_: text)
        better = "higher" if self.direction == "max" else "lower"
        tested = sum(e.p_value is not None for e in self.entries)
        adjusted = self.correction != "none" and tested > 1
        family = f", {CORRECTIONS[self.correction]} over {tested} tests" if adjusted else ""
        out = [
            f"{self.experiment}: {self.metric} ({better} is better), split {self.split}; "
            f"≈ leader = not significantly different from the leader "
            f"({TESTS[self.test]}, alpha={self.alpha:g}{family})",
            *self.notes,
        ]
        rows = []
        for e in self.entries:
            if e.rank == 1:
                mark = "leader"
            elif e.tie is True:
                mark = "≈ leader"
            elif e.tie is False:
                mark = "worse"
            else:
                mark = ""
            value = (
                fmt.mean_std(e.mean, e.std)
                if e.source == "folds"
                else fmt.value(e.mean if e.source else None)
            )
            line = [
                "-" if e.rank is None else e.rank,
                fmt.short_id(e.run.id, e.run.store),
                e.run.name,
                e.run.status,
                value,
                e.n or "-",
                "-" if e.p_value is None else f"{e.p_value:.3g}",
                *(["-" if e.p_adjusted is None else f"{e.p_adjusted:.3g}"] if adjusted else []),
                mark,
                e.note,
            ]
            if e.rank is None:
                line = [style(str(c), fg="red") if i == 3 else c for i, c in enumerate(line)]
            elif e.tie or e.rank == 1:
                mark_at = 8 if adjusted else 7
                line = [style(str(c), bold=True) if i == mark_at else c for i, c in enumerate(line)]
            rows.append(line)
        p_columns = ["p vs leader", *([f"p ({self.correction})"] if adjusted else [])]
        out.append(
            fmt.table(rows, ["rank", "id", "name", "status", self.metric, "folds", *p_columns, "", "note"])
        )
        if any(e.rank is None and e.note.startswith("not comparable") for e in self.entries):
            out.append(
                style(
                    "!! unranked runs marked NOT COMPARABLE used other data, folds or metric definitions",
                    fg="red",
                )
            )
        return "\n".join(out)


def _value(run: RunView, metric: str, split: str) -> tuple[float, float, int, str]:
    stats = run.fold_stats.get((metric, split))
    if stats is not None:
        return stats["mean"], stats["std"], int(stats["n"]), "folds"
    summary = run.summary.get(metric)
    if summary is not None:
        return summary["last"], math.nan, 1, "metric"
    return math.nan, math.nan, 0, ""


def leaderboard(
    experiment: str,
    metric: str,
    split: str = "test",
    test: str = "nadeau-bengio",
    alpha: float = 0.05,
    where: str | None = None,
    include_children: bool = False,
    store: str | os.PathLike[str] | Store | None = None,
    *,
    correction: str = "holm",
    test_train_ratio: float | None = None,
) -> Leaderboard:
    """Rank every run of ``experiment`` on ``metric`` (a fold key, else a logged metric's last value).

    ``metric``'s direction is the one the runs recorded (``direction/<metric>``,
    e.g. a scikit-learn scorer's), else :func:`labledger.metric_direction`;
    ``where`` narrows the runs with the filter language. Each run is tested
    against the leader; the p-values are adjusted with ``correction``
    (``holm``, ``bonferroni`` or ``none``) and ``≈ leader`` uses the adjusted
    ones. ``test_train_ratio`` (n_test/n_train) stands in for fold sizes the
    runs did not record.

    >>> ll.leaderboard("digits-svm", "accuracy", test="paired-t").to_frame()  # doctest: +SKIP
    """
    from labledger.analysis.comparability import comparability_issues, recorded_direction
    from labledger.analysis.multiple_testing import CORRECTIONS, UnknownCorrectionError
    from labledger.analysis.pairing import adjust_family, compare_pair
    from labledger.analysis.stats import TESTS, UnknownTestError
    from labledger.query.aggregation import metric_direction
    from labledger.query.runs import RunView, run_rows
    from labledger.store import open_store

    if test not in TESTS:
        raise UnknownTestError(test)
    if correction not in CORRECTIONS:
        raise UnknownCorrectionError(correction)
    st = open_store(store, create=False)  # read only: never created
    views = [RunView(st, r) for r in run_rows(experiment, st, include_children=include_children, where=where)]
    direction = recorded_direction(views, metric) or metric_direction(metric, store=st)
    board = Leaderboard(experiment, metric, split, direction, test, alpha, correction=correction)
    ranked: list[Entry] = []
    no_value: list[Entry] = []
    ended: list[Entry] = []
    for view in views:
        entry = Entry(view, *_value(view, metric, split))
        if view.status not in RANKED_STATUSES:
            entry.note = f"{view.status}" + (f": {_first_line(view.error)}" if view.error else "")
            ended.append(entry)
        elif not entry.source or math.isnan(entry.mean):
            entry.note = f"no {metric} value"
            no_value.append(entry)
        else:
            ranked.append(entry)
    sign = -1.0 if direction == "max" else 1.0
    ranked.sort(key=lambda e: (sign * e.mean, e.run.id))
    main, outside, board.notes = _comparable_group(ranked, views, metric)
    if main:
        leader = main[0]
        tested = []
        for i, entry in enumerate(main, start=1):
            entry.rank = i
            if entry is leader:
                continue
            if leader.source != "folds" or entry.source != "folds":
                entry.note = "no folds to test against the leader"
                continue
            pair = compare_pair(
                leader.run,
                entry.run,
                metric,
                split,
                test,
                alpha,
                direction,
                ("leader", "this run"),
                test_train_ratio=test_train_ratio,
                rope=None,
            )
            blocking = [issue.message for issue in pair.issues if issue.blocking]
            if blocking:
                entry.note = blocking[0]
            elif pair.result is None:
                entry.note = pair.verdict
            else:
                tested.append((entry, pair))
                if pair.caveat:
                    entry.note = "time-ordered folds: paired t-test, p indicative only"
        adjust_family([pair for _, pair in tested], correction)
        for entry, pair in tested:
            assert pair.result is not None
            entry.p_value, entry.p_adjusted = pair.result.p_value, pair.p_adjusted
            entry.tie = not pair.significant
        for entry in outside:
            reasons = [i.message for i in comparability_issues(leader.run, entry.run, metric) if i.blocking]
            entry.note = reasons[0] if reasons else "not comparable with the leader"
    board.entries = main + outside + no_value + ended
    return board


def _comparable_group(
    ranked: list[Entry], views: list[RunView], metric: str
) -> tuple[list[Entry], list[Entry], list[str]]:
    """The runs ranked together (best first), the others, and notes on the choice.

    The leader comes from the largest group of runs scored on the same data, folds,
    metric definition and successive-halving iteration — for halving candidates the
    final iteration of their search. A run outside that group is ranked all the same
    when nothing forbids comparing it with the leader (it merely records less); the
    rest are listed as not comparable, never ranked with it.
    """
    from labledger.analysis.comparability import comparability_issues, halving_stage

    final: dict[str | None, Any] = {}
    for view in views:
        stage = halving_stage(view)
        if stage is not None:
            final[view.parent_id] = max(final.get(view.parent_id, stage[0]), stage[0])

    def earlier_iteration(entry: Entry) -> bool:
        stage = halving_stage(entry.run)
        return stage is not None and stage[0] != final.get(entry.run.parent_id)

    groups: dict[tuple[Any, ...], list[Entry]] = {}
    for entry in ranked:
        groups.setdefault(_comparability_key(entry.run, metric), []).append(entry)
    position = {id(e): i for i, e in enumerate(ranked)}
    if not groups:
        return [], [], []
    main = max(
        groups.values(),
        key=lambda g: (not any(earlier_iteration(e) for e in g), len(g), -position[id(g[0])]),
    )
    leader = main[0]
    admitted = {id(e) for e in main}
    for entry in ranked:
        blocked = id(entry) not in admitted and any(
            i.blocking for i in comparability_issues(leader.run, entry.run, metric)
        )
        if not blocked:
            admitted.add(id(entry))
    notes = []
    stage = halving_stage(leader.run)
    if stage is not None:
        notes.append(
            f"successive halving: candidates ranked within one iteration (iter {stage[0]}, n_resources "
            f"{stage[1]}{', the final one' if not earlier_iteration(leader) else ''}); "
            "other iterations scored on other amounts of data are not comparable"
        )
    return [e for e in ranked if id(e) in admitted], [e for e in ranked if id(e) not in admitted], notes


def _comparability_key(run: RunView, metric: str) -> tuple[Any, ...]:
    """Runs with equal keys were scored on the same data (every recorded role), folds, metric
    definition and successive-halving iteration."""
    from labledger.analysis.comparability import CV_PARAMS, halving_stage

    params = run.params
    data = tuple(sorted((d["role"], d["fingerprint"] or "") for d in run.datasets))
    folds = params.get("cv/fingerprint") or tuple(repr(params.get(k)) for k in CV_PARAMS)
    return data, folds, repr(params.get(f"scoring/{metric}")), repr(halving_stage(run))


def _first_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last if len(last) <= 60 else last[:57] + "..."
