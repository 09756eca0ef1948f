"""The online report as text (``labledger online report``) and as a standalone HTML page (``--html``).

>>> print(render_text(report))  # doctest: +SKIP
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labledger.online.report import MetricResult, OnlineReport

__all__ = [
    "bandit_lines",
    "interleaving_line",
    "metric_rows",
    "offline_rows",
    "render_html",
    "render_text",
    "summary_lines",
]

METRIC_HEADER = [
    "metric",
    "treatment",
    "control",
    "treated",
    "difference (CI)",
    "relative (CI)",
    "p (Holm)",
    "always-valid p (Holm)",
    "confidence sequence",
]


def _num(x: float, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.2%}" if pct else f"{x:.4g}"


def _ci(pair: tuple[float, float], pct: bool = False) -> str:
    lo, hi = pair
    if math.isnan(lo) or math.isnan(hi):
        return "–"
    return f"[{lo:+.2%}, {hi:+.2%}]" if pct else f"[{lo:+.4g}, {hi:+.4g}]"


def metric_rows(report: OnlineReport) -> list[list[str]]:
    """One row per (metric, treatment) with the lift, intervals and both p-values."""
    rows = []
    for m in report.metrics:
        lift, seq = m.lift, m.sequential
        name = m.metric + (" (primary)" if m.metric == report.data.primary_metric else "")
        if lift is None:
            rows.append([name, m.treatment, *["–"] * 7])
            continue
        fixed = f"{m.p_adjusted:.3g}" if m.fixed_read else f"({m.p_adjusted:.3g}: not at plan)"
        cs = "–" if seq is None else f"[{seq.lower[-1]:+.4g}, {seq.upper[-1]:+.4g}]"
        cuped = " CUPED" if lift.variance_reduction is not None else ""
        rows.append(
            [
                name,
                m.treatment,
                _num(lift.control),
                _num(lift.treatment),
                f"{lift.difference:+.4g} {_ci(lift.difference_ci)}{cuped}",
                f"{_num(lift.relative, True)} {_ci(lift.relative_ci, True)}",
                fixed,
                _num(m.sequential_p_adjusted),
                cs,
            ]
        )
    return rows


def offline_rows(report: OnlineReport) -> list[list[str]]:
    """One row per (variant, fold metric, split): the offline evidence behind each variant."""
    lifts = {m.treatment: m for m in report.metrics if m.metric == report.data.primary_metric and m.lift}
    rows = []
    for ev in report.offline:
        m = lifts.get(ev.variant)
        online = (
            "control"
            if ev.variant == report.data.control
            else (_num(m.lift.relative, True) if m and m.lift else "–")
        )
        if not ev.folds:
            rows.append(
                [ev.variant, f"{ev.ref} ({ev.run_id[:12]})", ev.status, "–", "no folds logged", online]
            )
        for split, key, n, mean, std in ev.folds:
            rows.append(
                [
                    ev.variant,
                    f"{ev.ref} ({ev.run_id[:12]})",
                    ev.status,
                    split,
                    f"{key} {mean:.4g} ± {std:.2g} ({n} folds)",
                    online,
                ]
            )
    return rows


def summary_lines(report: OnlineReport) -> list[str]:
    """The head of the report: what was run, the SRM check, the plan, the decision."""
    d = report.data
    share = sum(d.allocation.values()) or 1.0
    variants = ", ".join(f"{v} ({d.allocation.get(v, 0) / share:.0%})" for v in d.variants)
    span = f"{d.periods[0]} … {d.periods[-1]}" if d.periods else "none yet"
    lines = [
        f"online experiment {d.experiment}/{d.name} ({d.design}, {d.status}) {d.run_id[:12]}",
        f"hypothesis: {d.hypothesis or '(none recorded)'}",
        f"variants (control first): {variants}; primary metric {d.primary_metric or '(none)'}; "
        f"alpha {d.alpha:g}; {len(d.periods)} period{'' if len(d.periods) == 1 else 's'} ({span})",
    ]
    if report.srm is not None:
        lines.append(("!! " if report.srm.flagged else "") + report.srm.describe())
    if report.planned_units is not None:
        units = report.srm.observed if report.srm else {}
        least = min(units.values()) if units else 0
        state = "reached" if report.reached else f"not reached ({least:,} of {report.planned_units:,})"
        lines.append(
            f"plan: {report.planned_units:,} units per variant ({report.planned_source}); {state}"
            + ("" if report.reached else " — verdicts use the always-valid p-values")
        )
    elif d.design == "ab":
        lines.append(f"{report.planned_source}; verdicts use the always-valid p-values")
    lines.append(f"decision: {report.decision}")
    return lines


def bandit_lines(report: OnlineReport) -> list[str]:
    """A bandit's regret, each arm's pulls and mean reward, and how the allocation moved."""
    b = report.bandit
    if b is None:
        return []
    basis = "the true arm means" if b.true_means else "the best arm in hindsight"
    lines = [
        f"regret {b.regret:.4g} against {b.best_arm} ({basis}); "
        f"an equal split would expect {b.uniform_regret:.4g}, so the bandit saved {b.saved:.4g}",
    ]
    for arm, pulls, mean in zip(b.arms, b.pulls, b.means, strict=True):
        lines.append(f"{arm}: {pulls:,} pulls, mean reward {_num(mean)}")
    if b.shares:
        moves = (
            f"{a} {s0:.0%} → {s1:.0%}" for a, s0, s1 in zip(b.arms, b.shares[0], b.shares[-1], strict=True)
        )
        lines.append("allocation, first → last period: " + ", ".join(moves))
    return lines


def interleaving_line(report: OnlineReport) -> str | None:
    """The preference test, with the two rankers named."""
    if report.interleaving is None:
        return None
    a, b = report.data.variants[:2]
    return f"interleaving (a = {a}, b = {b}): {report.interleaving.describe()}"


def render_text(report: OnlineReport) -> str:
    """The full report as plain text."""
    from tabulate import tabulate

    lines = summary_lines(report)
    if report.metrics:
        lines += ["", tabulate(metric_rows(report), headers=METRIC_HEADER, tablefmt="simple")]
        lines += ["", "verdict"] + [f"  {v}" for v in report.verdicts()]
    if report.interleaving is not None:
        lines += ["", str(interleaving_line(report))]
    bandit = bandit_lines(report)
    if bandit:
        lines += ["", f"bandit: {bandit[0]}", *(f"  {line}" for line in bandit[1:])]
    if report.offline:
        lines += ["", "offline runs behind the variants"]
        header = [
            "variant",
            "model run",
            "status",
            "split",
            "folds",
            f"online lift ({report.data.primary_metric})",
        ]
        lines.append(tabulate(offline_rows(report), headers=header, tablefmt="simple"))
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sequence_rows(m: MetricResult) -> list[list[str]]:
    seq = m.sequential
    if seq is None:
        return []
    return [
        [str(i + 1), f"{e:+.4g}", f"[{lo:+.4g}, {hi:+.4g}]", f"{p:.3g}"]
        for i, (e, lo, hi, p) in enumerate(
            zip(seq.estimates, seq.lower, seq.upper, seq.p_values, strict=True)
        )
    ]


_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;max-width:72em}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}"
    ".srm{background:#fdd;border:2px solid #c00;padding:.5em;font-weight:bold}"
    ".decision{font-size:1.2em;font-weight:bold}"
)


def render_html(report: OnlineReport) -> str:
    """The full report as one standalone HTML page (no scripts, no external assets)."""
    head, *rest = summary_lines(report)
    parts = [f"<h1>{html.escape(head)}</h1>"]
    for line in rest:
        if line.startswith("!! "):
            parts.append(f'<p class="srm">{html.escape(line[3:])}</p>')
        elif line.startswith("decision: "):
            parts.append(f'<p class="decision">{html.escape(line)}</p>')
        else:
            parts.append(f"<p>{html.escape(line)}</p>")
    if report.metrics:
        parts += ["<h2>Metrics</h2>", _table(METRIC_HEADER, metric_rows(report))]
        parts += [
            "<h2>Verdicts</h2><ul>",
            *(f"<li>{html.escape(v)}</li>" for v in report.verdicts()),
            "</ul>",
        ]
        for m in report.metrics:
            if m.metric == report.data.primary_metric and m.sequential is not None:
                parts.append(
                    f"<h3>Sequential monitoring: {html.escape(m.metric)}, {html.escape(m.treatment)}</h3>"
                )
                parts.append(
                    _table(["look", "difference", "confidence sequence", "always-valid p"], _sequence_rows(m))
                )
    if report.interleaving is not None:
        parts.append(f"<h2>Interleaving</h2><p>{html.escape(str(interleaving_line(report)))}</p>")
    bandit = bandit_lines(report)
    if bandit:
        parts.append("<h2>Bandit</h2>" + "".join(f"<p>{html.escape(x)}</p>" for x in bandit))
    if report.offline:
        header = ["variant", "model run", "status", "split", "folds", "online lift"]
        parts += ["<h2>Offline runs behind the variants</h2>", _table(header, offline_rows(report))]
    title = html.escape(f"{report.data.experiment}/{report.data.name}")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )
