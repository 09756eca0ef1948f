"""The run page's "Online experiment" section: an online run's report as plain, JSON-ready data.

The analysis is :func:`labledger.online.report.online_report`; this module only lays its
results out for the page (and the run endpoint): the sample ratio check, the decision, the
metrics table, the verdicts, a bandit's or an interleaving's summary, and the offline runs
behind the variants. When the analysis cannot run (SciPy or statsmodels missing, or data it
refuses) the section holds a short ``problem`` instead.

>>> import labledger as ll
>>> online_section(ll.get_run("checkout/brave-lynx-2"))["decision"]  # doctest: +SKIP
'ship treatment'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError

if TYPE_CHECKING:
    from labledger.online.report import OnlineReport
    from labledger.query.run_view import RunView

__all__ = ["OFFLINE_HEADER", "online_section"]

#: The columns of the offline runs' table (the model run itself is a link of its own).
OFFLINE_HEADER = ["variant", "model run", "status", "split", "folds", "online lift"]
#: What the page says when the statistics' packages are not installed.
MISSING_EXTRA = "The online report needs SciPy and statsmodels: pip install 'labledger[online]'."


def _offline(report: OnlineReport) -> list[dict[str, Any]]:
    """One row per (variant, fold metric, split), each with the run it links to."""
    from labledger.online.report_render import offline_rows

    evidence = {ev.variant: ev for ev in report.offline}
    rows = []
    for variant, _ref, *cells in offline_rows(report):
        ev = evidence.get(variant)
        rows.append(
            {
                "variant": variant,
                "run_id": ev.run_id if ev else None,
                "ref": ev.ref if ev else _ref,
                "linked": ev is not None and ev.status != "missing",
                "cells": cells,
            }
        )
    return rows


def _context(report: OnlineReport, lines: list[str]) -> list[str]:
    """The summary's lines the section does not show on their own (the design, the plan)."""
    srm = report.srm.describe() if report.srm is not None else None
    return [
        line
        for line in lines[1:]  # the first names the run, which the page already does
        if not line.startswith(("decision: ", "hypothesis: ")) and (srm is None or not line.endswith(srm))
    ]


def _layout(report: OnlineReport) -> dict[str, Any]:
    from labledger.online.report_render import (
        METRIC_HEADER,
        bandit_lines,
        interleaving_line,
        metric_rows,
        summary_lines,
    )

    srm = report.srm
    return {
        "problem": None,
        "design": report.data.design,
        "context": _context(report, summary_lines(report)),
        "srm": None if srm is None else {"text": srm.describe(), "flagged": bool(srm.flagged)},
        "decision": report.decision,
        "metric_header": list(METRIC_HEADER),
        "metric_rows": metric_rows(report),
        "verdicts": report.verdicts(),
        "bandit": bandit_lines(report),
        "interleaving": interleaving_line(report),
        "offline_header": OFFLINE_HEADER,
        "offline": _offline(report),
    }


def online_section(run: RunView) -> dict[str, Any] | None:
    """The section's data for an online run; None for any other run."""
    if run.kind != "online":
        return None
    try:
        from labledger.online.report import online_report

        return _layout(online_report(run))
    except ImportError:  # before LabledgerError: the report's own "extra missing" error is both
        return {"problem": MISSING_EXTRA}
    except LabledgerError as e:
        return {"problem": f"The online report could not be computed: {e}"}
