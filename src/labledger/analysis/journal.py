"""The hypothesis journal: an experiment's runs as chains of hypotheses, each with its result,
its verdict, the notes it left, and the hypothesis that followed.

Runs are chained by ``start_run(..., follows=run)``. A run's verdict is
:func:`labledger.compare` against the run it follows (the paired fold test on the journal's
metric, plus McNemar's test when both stored predictions on the same examples), or, for a run
that follows none, against the experiment's leader.

>>> print(journal("digits-demo").render())          # doctest: +SKIP
>>> journal("digits-demo").to_markdown()            # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError, RunNotFoundError

if TYPE_CHECKING:
    from labledger.query.run_view import RunView
    from labledger.store.backend import Backend

__all__ = ["Entry", "ExperimentNotFoundError", "Journal", "journal"]


class ExperimentNotFoundError(RunNotFoundError):
    """The experiment has no runs (or there is no experiment by that name)."""

    def __init__(self, experiment: str) -> None:
        super().__init__(experiment)
        self.experiment = experiment
        self.args = (f"experiment {experiment!r} has no runs (`labledger experiments` lists them).",)


@dataclass
class Entry:
    """One run in the journal."""

    run: RunView
    depth: int
    follows: str | None
    result: str
    verdict: str
    notes: list[dict[str, Any]]
    led_to: list[RunView] = field(default_factory=list)


@dataclass
class Journal:
    """An experiment's runs in the order the hypotheses followed one another."""

    experiment: str
    metric: str | None
    split: str
    entries: list[Entry]

    def render(self) -> str:
        """Plain text, one block per run, indented along each chain."""
        head = f"{self.experiment}: the hypothesis journal"
        basis = f" ({self.metric}, split {self.split}; {len(self.entries)} runs)" if self.metric else ""
        lines = [head + basis]
        for i, e in enumerate(self.entries, 1):
            pad = "   " * e.depth
            lines += ["", f"{pad}{i}. {e.run.name} — {e.run.status} — {_when(e.run.start_time)}"]
            lines.append(f"{pad}   hypothesis: {e.run.hypothesis or '(none recorded)'}")
            if e.follows:
                lines.append(f"{pad}   follows:    {e.follows}")
            lines.append(f"{pad}   result:     {e.result}")
            lines.append(f"{pad}   verdict:    {e.verdict}")
            for n in e.notes:
                lines.append(f"{pad}   note:       {n['text']}  ({_note_meta(n)})")
            for r in e.led_to:
                lines.append(f"{pad}   led to:     {r.name} — {r.hypothesis or '(no hypothesis)'}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The same as a Markdown report to paste into a review."""
        lines = [f"# {self.experiment}: what we tried, what worked, and why", ""]
        if self.metric:
            lines += [
                f"Runs compared on **{self.metric}** (split `{self.split}`), {len(self.entries)} runs.",
                "",
            ]
        for i, e in enumerate(self.entries, 1):
            lines.append(f"{'#' * min(2 + e.depth, 6)} {i}. {e.run.name} ({e.run.status})")
            lines.append("")
            lines.append(f"- **Hypothesis:** {e.run.hypothesis or '(none recorded)'}")
            if e.follows:
                lines.append(f"- **Follows:** {e.follows}")
            lines.append(f"- **Result:** {e.result}")
            lines.append(f"- **Verdict:** {e.verdict}")
            for n in e.notes:
                lines.append(f"- **Note** ({_note_meta(n)}): {n['text']}")
            for r in e.led_to:
                lines.append(f"- **Led to:** {r.name} — {r.hypothesis or '(no hypothesis)'}")
            lines.append("")
        return "\n".join(lines)


def _when(t: float) -> str:
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _note_meta(note: dict[str, Any]) -> str:
    author = note.get("author")
    return _when(note["created_at"]) + (f", {author}" if author else "")


def _followed_id(run: RunView) -> str | None:
    follows = run.lineage.get("follows") if isinstance(run.lineage, dict) else None
    return follows.get("run") if isinstance(follows, dict) else None


def _metric(runs: list[RunView], split: str) -> str | None:
    counts = Counter(key for r in runs for (key, s) in r.fold_stats if s == split)
    return counts.most_common(1)[0][0] if counts else None


def _result(run: RunView, metric: str | None, split: str) -> str:
    if run.status in ("failed", "killed", "crashed"):
        first = (run.error or "").strip().splitlines()
        return f"{run.status}" + (f": {first[-1][:120]}" if first else "")
    stats = run.fold_stats.get((metric, split)) if metric else None
    if stats:
        return f"{metric} {stats['mean']:.4g} ± {stats['std']:.2g} ({stats['n']} folds)"
    return "no fold results" + (f" on {metric}" if metric else "")


def _verdict(
    run: RunView, against: RunView | None, metric: str | None, split: str, why: str, store: Any
) -> str:
    if run.status in ("failed", "killed", "crashed"):
        return f"no verdict: the run {run.status}"
    if against is None or metric is None:
        return "no verdict: nothing to compare with" if metric else "no verdict: no fold results"
    from labledger.analysis.compare import compare

    try:
        result = compare([against.id, run.id], metric=metric, split=split, store=store)
    except LabledgerError as e:
        return f"no verdict against {against.name}: {e}"
    pair = result.pairs[0]
    named = re.sub(r"\bB\b", run.name, re.sub(r"\bA\b", against.name, pair.verdict))
    text = f"{why} {against.name}: {named}"
    paired = _paired_line(against, run, store)
    return text + (f"; {paired}" if paired else "")


def _paired_line(a: RunView, b: RunView, store: Any) -> str | None:
    from labledger.analysis.paired_predictions import TestSetMismatchError
    from labledger.predictions.analysis import paired
    from labledger.predictions.read import NoPredictionsError

    try:
        report = paired(a, b, store=store)
    except (NoPredictionsError, TestSetMismatchError, ImportError):
        return None
    m = report.mcnemar
    if m is not None:
        return f"{m.n10} fixed and {m.n01} broken of {m.n} test examples, McNemar p={m.p_value:.3g}"
    loss = report.loss_test
    change = -loss.mean_difference  # this run's mean per-example loss minus the other's
    return f"mean per-example loss {change:+.4g} against {a.name}, paired t-test p={loss.p_value:.3g}"


def journal(
    experiment: str,
    metric: str | None = None,
    *,
    split: str = "test",
    store: str | os.PathLike[str] | Backend | None = None,
) -> Journal:
    """The hypothesis journal of ``experiment`` (its top-level runs).

    :param metric: the fold metric verdicts compare (default: the one most runs logged).

    >>> print(ll.journal("digits-demo").render())  # doctest: +SKIP
    """
    from labledger.query.runs import get_run, run_rows

    rows = run_rows(experiment, store=store, include_children=False, order_by="start_time")
    runs = [get_run(r["id"], store) for r in rows]
    if not runs:
        raise ExperimentNotFoundError(experiment)
    metric = metric or _metric(runs, split)
    by_id = {r.id: r for r in runs}
    children: dict[str | None, list[RunView]] = {}
    for r in runs:
        parent = _followed_id(r)
        children.setdefault(parent if parent in by_id else None, []).append(r)
    leader = _leader(runs, metric, split)
    entries: list[Entry] = []

    def visit(run: RunView, depth: int) -> None:
        parent_id = _followed_id(run)
        parent = by_id.get(parent_id) if parent_id else None
        if parent is None and parent_id:
            try:
                parent = get_run(parent_id, store)
            except LabledgerError:
                parent = None
        if parent is not None:
            verdict = _verdict(run, parent, metric, split, "against the run it follows,", store)
            follows = f"{parent.experiment}/{parent.name}" if parent.experiment != experiment else parent.name
        elif leader is not None and leader.id != run.id:
            verdict = _verdict(run, leader, metric, split, "against the leader", store)
            follows = None
        else:
            verdict = f"the leader on {metric}" if leader is not None else "no verdict: no fold results"
            follows = None
        kids = children.get(run.id, [])
        entries.append(
            Entry(run, depth, follows, _result(run, metric, split), verdict, run.notes, list(kids))
        )
        for kid in kids:
            visit(kid, depth + 1)

    for root in children.get(None, []):
        visit(root, 0)
    return Journal(experiment, metric, split, entries)


def _leader(runs: list[RunView], metric: str | None, split: str) -> RunView | None:
    if metric is None:
        return None
    from labledger.query.aggregation import direction_resolver

    sign = 1 if direction_resolver(runs[0].store)(metric) == "max" else -1
    scored = [
        (sign * r.fold_stats[(metric, split)]["mean"], r)
        for r in runs
        if r.status == "finished"
        and math.isfinite(r.fold_stats.get((metric, split), {}).get("mean", math.nan))
    ]
    return max(scored, key=lambda x: x[0])[1] if scored else None
