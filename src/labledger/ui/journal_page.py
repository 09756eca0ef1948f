"""The journal page's data: an experiment's hypothesis journal as plain, JSON-ready data.

The journal is :func:`labledger.analysis.journal.journal` (what ``labledger journal`` prints);
this module only lays its entries out for the page: each run in the order the hypotheses
followed one another, with its depth along the chain, its hypothesis, the run it follows, its
result, its verdict, its notes (time and author) and the runs it led to, each with the id its
link needs.

>>> from labledger.store import open_store
>>> data = journal_data(open_store("/tmp/ledger", create=False), "digits-demo")  # doctest: +SKIP
>>> data["entries"][1]["follows"]                                                # doctest: +SKIP
{'id': '01a22ffd8257…', 'ref': 'svc-rbf-c1', 'listed': True}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labledger.analysis.journal import Entry
    from labledger.query.run_view import RunView
    from labledger.store.backend import Backend

__all__ = ["journal_data"]


def _followed(run: RunView, ref: str | None, listed: set[str]) -> dict[str, Any] | None:
    """The run this one follows, as the journal names it (``ref``), with its id and whether the
    journal lists it too (one of another experiment is not); None when the journal named none."""
    lineage = run.lineage if isinstance(run.lineage, dict) else {}
    follows = lineage.get("follows")
    if ref is None or not isinstance(follows, dict) or not isinstance(follows.get("run"), str):
        return None
    return {"id": follows["run"], "ref": ref, "listed": follows["run"] in listed}


def _entry(number: int, e: Entry, listed: set[str]) -> dict[str, Any]:
    return {
        "number": number,
        "depth": e.depth,
        "id": e.run.id,
        "name": e.run.name,
        "status": e.run.status,
        "start_time": e.run.start_time,
        "hypothesis": e.run.hypothesis,
        "follows": _followed(e.run, e.follows, listed),
        "result": e.result,
        "verdict": e.verdict,
        "notes": [
            {"text": n["text"], "author": n.get("author"), "created_at": n["created_at"]} for n in e.notes
        ],
        "led_to": [{"id": r.id, "name": r.name, "hypothesis": r.hypothesis} for r in e.led_to],
    }


def journal_data(
    st: Backend, experiment: str, metric: str | None = None, split: str = "test"
) -> dict[str, Any]:
    """``{"experiment", "metric", "split", "entries"}``, one entry per top-level run in the
    journal's order: ``number``, ``depth``, ``id``, ``name``, ``status``, ``start_time``,
    ``hypothesis``, ``follows`` (``{"id", "ref", "listed"}`` or None), ``result``, ``verdict``, ``notes``
    (``text``, ``author``, ``created_at``) and ``led_to`` (``id``, ``name``, ``hypothesis``).

    :param metric: the fold metric the verdicts compare (default: the one most runs logged).
    :raises RunNotFoundError: the experiment has no runs.

    >>> [e["name"] for e in journal_data(store, "digits-demo")["entries"]]  # doctest: +SKIP
    ['logreg', 'svc-linear', 'svc-rbf-c1', 'svc-rbf-smooth', 'svc-rbf-c10', 'svc-bad-c']
    """
    from labledger.analysis.journal import journal

    found = journal(experiment, metric, split=split, store=st)
    listed = {e.run.id for e in found.entries}
    return {
        "experiment": found.experiment,
        "metric": found.metric,
        "split": found.split,
        "entries": [_entry(i, e, listed) for i, e in enumerate(found.entries, 1)],
    }
