"""The online report: SRM first, then each metric's lift, its sequential status, and a verdict.

Reading order, as a demanding experimenter reads an A/B test:

1. **Sample ratio mismatch** (chi-square of exposures against the planned allocation). A
   flagged split blocks a "ship" decision whatever the lifts say.
2. **Per metric and treatment:** the lift over the control with its interval (two-proportion
   z-test, or Welch's t-test, CUPED-adjusted when a pre-period covariate was logged), and the
   **mSPRT** always-valid p-value and confidence sequence over the periods. The fixed-horizon
   test is read only once every variant reached the planned sample (``planned_units``, or the
   size :func:`labledger.online.power.sample_size` gives for ``mde`` at 80 % power); before that
   the verdicts use the always-valid p-values. P-values are Holm-adjusted over every
   (treatment, metric) pair.
3. **The offline evidence:** each variant's model run with its CV / backtest fold means ± std.

The mSPRT mixing variance is ``mde²`` for the primary metric when ``mde`` is given, else
``(0.1 · control mean)²`` (a 10 % relative effect).

>>> report = online_report(ll.get_run("ranker-v7-vs-v6/bold-heron-1"))  # doctest: +SKIP
>>> report.decision  # doctest: +SKIP
'ship treatment'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.online import record
from labledger.online.abtest import (
    Covariate,
    Lift,
    Moments,
    SRMResult,
    cuped_adjusted,
    holm,
    mean_lift,
    proportion_lift,
    srm_check,
)
from labledger.online.report_designs import BanditSummary, bandit_summary, interleaving_summary
from labledger.online.report_looks import sequential_counts, sequential_sums

if TYPE_CHECKING:
    from labledger.online.interleaving import InterleavingResult
    from labledger.online.sequential import SequentialResult
    from labledger.query.run_view import RunView

__all__ = [
    "BanditSummary",
    "MetricResult",
    "OfflineEvidence",
    "OnlineExtraMissingError",
    "OnlineReport",
    "online_report",
]

POWER = 0.8


class OnlineExtraMissingError(LabledgerError, ImportError):
    """The online statistics need SciPy and statsmodels."""

    def __init__(self, module: str) -> None:
        super().__init__(f"the online report needs {module}: pip install 'labledger[online]'")


@dataclass
class MetricResult:
    """One metric of one treatment against the control."""

    metric: str
    kind: str
    treatment: str
    direction: str
    lift: Lift | None
    sequential: SequentialResult | None
    p_adjusted: float = math.nan
    sequential_p_adjusted: float = math.nan
    fixed_read: bool = False
    verdict: str = ""
    better: bool | None = None  # True: treatment better, False: worse, None: no difference shown


@dataclass
class OfflineEvidence:
    """The offline run behind a variant and its fold results."""

    variant: str
    run_id: str
    ref: str
    status: str
    folds: list[tuple[str, str, int, float, float]]  # split, key, n, mean, std


@dataclass
class OnlineReport:
    """Everything :func:`online_report` found; ``render()`` for text, ``to_html()`` for a page."""

    data: record.OnlineData
    srm: SRMResult | None
    planned_units: int | None
    planned_source: str
    reached: bool
    metrics: list[MetricResult] = field(default_factory=list)
    offline: list[OfflineEvidence] = field(default_factory=list)
    bandit: BanditSummary | None = None
    interleaving: InterleavingResult | None = None
    decision: str = ""
    notes: list[str] = field(default_factory=list)

    def verdicts(self) -> list[str]:
        """One line per (treatment, metric), in the language of ``labledger compare``."""
        return [m.verdict for m in self.metrics]

    def to_dict(self) -> dict[str, Any]:
        """The decision, the SRM check, the plan and one entry per (metric, treatment), for ``--json``."""
        d = self.data
        return {
            "run_id": d.run_id,
            "experiment": d.experiment,
            "design": d.design,
            "variants": d.variants,
            "periods": d.periods,
            "decision": self.decision,
            "srm": None if self.srm is None else {"p_value": self.srm.p_value, "flagged": self.srm.flagged},
            "planned_units": self.planned_units,
            "reached": self.reached,
            "metrics": [
                {
                    "metric": m.metric,
                    "treatment": m.treatment,
                    "difference": m.lift.difference if m.lift else None,
                    "difference_ci": list(m.lift.difference_ci) if m.lift else None,
                    "relative": m.lift.relative if m.lift else None,
                    "relative_ci": list(m.lift.relative_ci) if m.lift else None,
                    "p_adjusted": m.p_adjusted,
                    "always_valid_p_adjusted": m.sequential_p_adjusted,
                    "verdict": m.verdict,
                }
                for m in self.metrics
            ],
            "regret": None if self.bandit is None else self.bandit.regret,
            "offline": [{"variant": o.variant, "run_id": o.run_id, "folds": o.folds} for o in self.offline],
        }

    def render(self) -> str:
        from labledger.online.report_render import render_text

        return render_text(self)

    def to_html(self) -> str:
        from labledger.online.report_render import render_html

        return render_html(self)


def _moments(data: record.OnlineData, metric: str, variant: str) -> Moments:
    n, s, q = (data.total(record.outcome_key(metric, variant, f)) for f in record.MEAN_FIELDS)
    return Moments(round(n), s, q)


def _covariate(data: record.OnlineData, metric: str, variant: str) -> Covariate:
    n = data.total(record.outcome_key(metric, variant, "n"))
    x = (data.total(record.outcome_key(metric, variant, f)) for f in record.COVARIATE_FIELDS)
    return Covariate(round(n), *x)


def _tau2(data: record.OnlineData, metric: str, control_mean: float) -> float:
    if metric == data.primary_metric and data.mde is not None:
        return data.mde**2
    scale = 0.1 * abs(control_mean)
    return scale**2 if scale > 0 else 1e-4


def _planned(data: record.OnlineData) -> tuple[int | None, str]:
    from labledger.online.power import sample_size, sample_size_means

    if data.planned_units is not None:
        return data.planned_units, "planned_units"
    metric, mde = data.primary_metric, data.mde
    if metric is None or mde is None or metric not in data.metric_types:
        return None, "no plan: give planned_units= or mde= to read the fixed-horizon test"
    try:
        if data.metric_types[metric] == "proportion":
            s = data.total(record.outcome_key(metric, data.control, "successes"))
            n = data.total(record.outcome_key(metric, data.control, "trials"))
            if n == 0 or not 0 < s < n:
                return None, "no plan yet: the control's rate is not known"
            return sample_size(s / n, mde, power=POWER, alpha=data.alpha), f"mde {mde:g} at {POWER:.0%} power"
        std = math.sqrt(_moments(data, metric, data.control).variance * _kept_variance(data, metric))
        if not std > 0:
            return None, "no plan yet: the control's spread is not known"
        return sample_size_means(std, mde, power=POWER, alpha=data.alpha), f"mde {mde:g} at {POWER:.0%} power"
    except ValueError as e:
        return None, f"no plan: {e}"


def _kept_variance(data: record.OnlineData, metric: str) -> float:
    """``1 − ρ²`` when the metric is CUPED-adjusted (the plan shrinks with the variance), else 1."""
    if not data.has_covariate(metric) or len(data.variants) < 2:
        return 1.0
    a, b = data.control, data.treatments[0]
    try:
        return cuped_adjusted(
            _moments(data, metric, a),
            _moments(data, metric, b),
            _covariate(data, metric, a),
            _covariate(data, metric, b),
        )[3]
    except ValueError:
        return 1.0


def _units(data: record.OnlineData) -> dict[str, int]:
    exposures = data.exposures()
    if any(exposures.values()):
        return exposures
    metric = data.primary_metric
    if metric and data.metric_types.get(metric) == "proportion":
        return {v: int(data.total(record.outcome_key(metric, v, "trials"))) for v in data.variants}
    if metric and data.metric_types.get(metric) == "mean":
        return {v: int(data.total(record.outcome_key(metric, v, "n"))) for v in data.variants}
    return exposures


def _analyse(data: record.OnlineData, metric: str, kind: str, treatment: str, direction: str) -> MetricResult:
    a, b, alpha = data.control, treatment, data.alpha
    out = MetricResult(metric, kind, treatment, direction, None, None)
    if kind == "proportion":
        sa, na, sb, nb = (
            round(data.total(record.outcome_key(metric, v, f)))
            for v in (a, b)
            for f in record.PROPORTION_FIELDS
        )
        if na and nb:
            out.lift = proportion_lift(sa, na, sb, nb, alpha=alpha)
            out.sequential = sequential_counts(data, metric, a, b, _tau2(data, metric, sa / na), alpha)
        return out
    ma, mb = _moments(data, metric, a), _moments(data, metric, b)
    if ma.n >= 2 and mb.n >= 2 and (ma.variance > 0 or mb.variance > 0):
        cuped = (
            (_covariate(data, metric, a), _covariate(data, metric, b)) if data.has_covariate(metric) else None
        )
        out.lift = mean_lift(ma, mb, alpha=alpha, cuped=cuped)
        out.sequential = sequential_sums(data, metric, a, b, _tau2(data, metric, ma.mean), alpha)
    return out


def _verdict(m: MetricResult, control: str, alpha: float) -> None:
    if m.lift is None:
        m.verdict = f"no test on {m.metric} for {m.treatment}: too little data yet"
        return
    if m.fixed_read:
        p, test = m.p_adjusted, f"{m.lift.test}, Holm-adjusted"
    else:
        p, test = m.sequential_p_adjusted, "mSPRT always-valid, Holm-adjusted"
    if math.isnan(p):
        m.verdict = f"no sequential test on {m.metric} for {m.treatment} yet"
        return
    if p <= alpha:
        higher = m.lift.difference > 0
        m.better = higher == (m.direction == "max")
        win, lose = (m.treatment, control) if m.better else (control, m.treatment)
        m.verdict = f"{win} better than {lose} on {m.metric}, p={p:.3g} ({test})"
    else:
        m.verdict = (
            f"no significant difference on {m.metric} for {m.treatment} (p={p:.3g}, alpha={alpha:g}, {test})"
        )


def _decide(report: OnlineReport) -> str:
    data = report.data
    if report.srm is not None and report.srm.flagged:
        return "do not ship: sample ratio mismatch — find why assignment or logging lost units"
    primary = [m for m in report.metrics if m.metric == data.primary_metric]
    winners = [m for m in primary if m.better]
    if winners:
        best = max(
            winners, key=lambda m: m.lift.difference * (1 if m.direction == "max" else -1) if m.lift else 0
        )
        harmed = [m.metric for m in report.metrics if m.treatment == best.treatment and m.better is False]
        if harmed:
            worse = ", ".join(harmed)
            return f"ship {best.treatment} on {best.metric}, but it is worse on {worse}: review first"
        return f"ship {best.treatment}"
    if primary and all(m.better is False for m in primary):
        return f"keep {data.control}: every treatment is worse on {data.primary_metric}"
    if not report.reached:
        return "keep collecting: no significant difference on the primary metric yet"
    return f"keep {data.control}: no significant difference on {data.primary_metric} at the planned sample"


def _offline(view: RunView, data: record.OnlineData) -> list[OfflineEvidence]:
    from labledger.errors import RunNotFoundError
    from labledger.query.runs import get_run

    out = []
    for variant in data.variants:
        run_id = data.models.get(variant)
        if run_id is None:
            continue
        try:
            run = get_run(run_id, view.store)
        except RunNotFoundError:
            out.append(OfflineEvidence(variant, run_id, "(not in this store)", "missing", []))
            continue
        folds = [
            (split, key, s["n"], s["mean"], s["std"]) for (key, split), s in sorted(run.fold_stats.items())
        ]
        out.append(OfflineEvidence(variant, run_id, f"{run.experiment}/{run.name}", run.status, folds))
    return out


def online_report(
    view: RunView, arm_means: Sequence[float] | Mapping[str, float] | None = None
) -> OnlineReport:
    """Analyse an online run (a :class:`~labledger.RunView` of kind ``online``).

    :param arm_means: a bandit's true arm means, when known (simulations): regret is then
        measured against them instead of the best arm in hindsight.

    >>> print(online_report(ll.get_run("checkout/brave-lynx-2")).render())  # doctest: +SKIP
    """
    from labledger.query.aggregation import direction_resolver

    try:
        import scipy  # noqa: F401
        import statsmodels  # noqa: F401
    except ImportError as e:
        raise OnlineExtraMissingError(e.name or "scipy") from None
    data = record.read_online(view)
    units = _units(data)
    srm = srm_check(units, data.allocation, threshold=0.001) if sum(units.values()) > 0 else None
    planned, source = _planned(data)
    reached = planned is not None and all(units.get(v, 0) >= planned for v in data.variants)
    report = OnlineReport(data, srm, planned, source, reached)
    direction = direction_resolver(view.store)
    order = sorted(data.metric_types, key=lambda m: (m != data.primary_metric, m))
    for metric in order:
        for treatment in data.treatments:
            m = _analyse(data, metric, data.metric_types[metric], treatment, direction(metric))
            m.fixed_read = reached
            report.metrics.append(m)
    tested = {i: m for i, m in enumerate(report.metrics) if m.lift is not None}
    if tested:
        fixed = holm({str(i): m.lift.p_value for i, m in tested.items() if m.lift})
        for i, m in tested.items():
            m.p_adjusted = fixed[str(i)]
        seq = {str(i): m.sequential.p_value for i, m in tested.items() if m.sequential}
        for key, p in (holm(seq) if seq else {}).items():
            report.metrics[int(key)].sequential_p_adjusted = p
    for m in report.metrics:
        _verdict(m, data.control, data.alpha)
    report.offline = _offline(view, data)
    if data.design == "bandit":
        report.bandit = bandit_summary(data, arm_means)
    if data.design == "interleaving":
        report.interleaving = interleaving_summary(data)
    report.decision = _decide(report) if data.design == "ab" else _design_decision(report)
    return report


def _design_decision(report: OnlineReport) -> str:
    if report.bandit is not None:
        b = report.bandit
        return f"{b.best_arm} leads: best mean reward over {sum(b.pulls):,} pulls"
    if report.interleaving is not None:
        winner = report.interleaving.winner
        names = report.data.variants
        return f"users prefer {names[0 if winner == 'a' else 1]}" if winner else "no preference shown yet"
    return "no data yet"
