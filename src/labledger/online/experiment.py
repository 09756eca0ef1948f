"""Start and log an online experiment: a run of kind ``online`` whose variants link to offline runs.

>>> import labledger as ll
>>> from labledger.online import Moments
>>> with ll.start_online("ranker-v7-vs-v6", hypothesis="v7's CV gain carries over online",
...                      variants={"control": run_v6.id, "treatment": run_v7.id},
...                      primary_metric="ctr") as exp:  # doctest: +SKIP
...     exp.log_exposures({"control": 10_123, "treatment": 10_090}, period="2026-11-30")
...     exp.log_outcomes("ctr", {"control": (1_012, 10_123), "treatment": (1_101, 10_090)},
...                      period="2026-11-30")
...     print(exp.report().render())
"""

from __future__ import annotations

import datetime
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from labledger.errors import InvalidValueError, ParamConflictError
from labledger.online import record
from labledger.online.abtest import Covariate, Moments
from labledger.online.checks import count, variant_name

if TYPE_CHECKING:
    from labledger.online.report import OnlineReport
    from labledger.tracking.run import Run

__all__ = ["OnlineExperiment"]


class OnlineExperiment:
    """An online experiment being logged; wraps its :class:`~labledger.tracking.run.Run` (``.run``).

    Every ``log_*`` takes a ``period`` label (default: today's UTC date); aggregates logged
    for the same period add up.
    """

    def __init__(self, run: Run, variants: list[str], design: str) -> None:
        self.run = run
        self.variants = variants
        self.design = design
        self._periods: dict[str, int] = {}
        self._metric_types: dict[str, str] = {}
        self._cuped: dict[str, bool] = {}
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.run.id

    def __repr__(self) -> str:
        return f"<OnlineExperiment {self.run.experiment}/{self.run.name} {self.design} {self.variants}>"

    def __enter__(self) -> OnlineExperiment:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._log_summary()
        self.run.__exit__(exc_type, exc, tb)

    # -- periods and variants ------------------------------------------------

    def _period(self, period: Any) -> int:
        if period is None:
            period = datetime.datetime.now(datetime.UTC).date().isoformat()
        elif isinstance(period, datetime.date | datetime.datetime):
            period = period.isoformat()
        elif isinstance(period, int) and not isinstance(period, bool):
            period = str(period)
        if not isinstance(period, str) or not period.strip():
            raise InvalidValueError("period", period, "a label such as '2026-11-30' or a date")
        with self._lock:
            index = self._periods.get(period)
            if index is None:
                index = self._periods[period] = len(self._periods)
                self.run.log_param(f"online.period.{index}", period)
        return index

    def _check_variants(self, what: str, values: Mapping[str, Any]) -> None:
        if not isinstance(values, Mapping):
            raise InvalidValueError(
                what, values, f"a mapping from variant to value, variants {self.variants}"
            )
        unknown = [v for v in values if v not in self.variants]
        if unknown:
            raise InvalidValueError(what, unknown, f"unknown variant(s); this experiment has {self.variants}")

    def _require(self, method: str, design: str) -> None:
        if self.design != design:
            raise InvalidValueError(
                "design",
                self.design,
                f"{method} is for {design} experiments; this one is {self.design}",
            )

    def _declare_cuped(self, metric: str, with_covariate: bool) -> None:
        """A metric is analysed with CUPED only if every call gave its covariate."""
        known = self._cuped.get(metric)
        if known is not None and known != with_covariate:
            given = "with" if known else "without"
            raise InvalidValueError(
                "covariate", metric, f"{metric!r} was logged {given} a covariate before: keep to one way"
            )
        if known is None and with_covariate:
            self.run.log_param(f"online.cuped.{metric}", True)
        self._cuped[metric] = with_covariate

    def _declare(self, metric: str, kind: str) -> None:
        if self._metric_types.get(metric) == kind:
            return
        try:
            self.run.log_param(f"online.metric.{metric}", kind)
        except ParamConflictError:
            raise InvalidValueError(
                "outcomes", metric, f"{metric!r} was logged as a {self._metric_types.get(metric)} before"
            ) from None
        self._metric_types[metric] = kind

    # -- logging ----------------------------------------------------------------

    def log_exposures(self, counts: Mapping[str, int], period: Any = None) -> None:
        """Units newly exposed to each variant in ``period``.

        >>> exp.log_exposures({"control": 10_123, "treatment": 10_090}, period="2026-11-30")  # doctest: +SKIP
        """
        self._require("log_exposures", "ab")
        self._check_variants("exposures", counts)
        values = {record.exposure_key(v): count(f"exposures[{v!r}]", n) for v, n in counts.items()}
        self.run.log_metrics(values, step=self._period(period))

    def log_outcomes(
        self,
        metric: str,
        outcomes: Mapping[str, tuple[int, int] | Moments],
        period: Any = None,
        covariate: Mapping[str, Covariate] | None = None,
    ) -> None:
        """Aggregates of ``metric`` per variant in ``period``: ``(successes, trials)`` for a
        conversion metric, :class:`Moments` (``n, sum, sum_sq``) for a continuous one, with the
        pre-period covariate's :class:`Covariate` sums per variant for CUPED.

        >>> exp.log_outcomes("ctr", {"control": (1_012, 10_123), "treatment": (1_101, 10_090)})
        ... # doctest: +SKIP
        >>> exp.log_outcomes("revenue", {"control": Moments(10_123, 52_310.0, 1.9e6)})  # doctest: +SKIP
        """
        self._require("log_outcomes", "ab")
        metric = variant_name(metric, "metric")
        if metric in record.RESERVED:
            raise InvalidValueError(
                "metric", metric, f"choose a name other than {', '.join(record.RESERVED)}"
            )
        self._check_variants("outcomes", outcomes)
        values: dict[str, float] = {}
        kinds = set()
        for variant, value in outcomes.items():
            if isinstance(value, Moments):
                kinds.add("mean")
                fields: Sequence[float] = (value.n, value.sum, value.sum_sq)
                names: Sequence[str] = record.MEAN_FIELDS
            elif isinstance(value, tuple | list) and len(value) == 2:
                kinds.add("proportion")
                s, t = (count(f"outcomes[{variant!r}]", x) for x in value)
                if s > t:
                    raise InvalidValueError(f"outcomes[{variant!r}]", value, "successes ≤ trials")
                fields, names = (s, t), record.PROPORTION_FIELDS
            else:
                raise InvalidValueError(
                    f"outcomes[{variant!r}]", value, "(successes, trials) or Moments(n, sum, sum_sq)"
                )
            values.update(
                {record.outcome_key(metric, variant, f): float(x) for f, x in zip(names, fields, strict=True)}
            )
        if len(kinds) != 1:
            raise InvalidValueError("outcomes", metric, "all (successes, trials) or all Moments, not a mix")
        if covariate is not None:
            if kinds != {"mean"}:
                raise InvalidValueError("covariate", metric, "CUPED applies to Moments outcomes")
            self._check_variants("covariate", covariate)
            if set(covariate) != set(outcomes):
                raise InvalidValueError(
                    "covariate", list(covariate), f"one Covariate per variant of {list(outcomes)}"
                )
            for variant, cov in covariate.items():
                if not isinstance(cov, Covariate) or variant not in outcomes:
                    raise InvalidValueError(
                        f"covariate[{variant!r}]", cov, "a Covariate for a logged variant"
                    )
                if cov.n != outcomes[variant].n:  # type: ignore[union-attr]
                    raise InvalidValueError(f"covariate[{variant!r}]", cov.n, "the same n as the outcome")
                got = (cov.sum_x, cov.sum_x2, cov.sum_xy)
                values.update(
                    {
                        record.outcome_key(metric, variant, f): x
                        for f, x in zip(record.COVARIATE_FIELDS, got, strict=True)
                    }
                )
        kind = kinds.pop()
        self._declare(metric, kind)
        if kind == "mean":
            self._declare_cuped(metric, covariate is not None)
        self.run.log_metrics(values, step=self._period(period))

    def log_pulls(self, arms: Mapping[str, tuple[int, float]], period: Any = None) -> None:
        """A bandit's pulls and summed reward per arm in ``period``.

        >>> exp.log_pulls({"v6": (120, 11.0), "v7": (880, 97.0)}, period=3)  # doctest: +SKIP
        """
        self._require("log_pulls", "bandit")
        self._check_variants("arms", arms)
        values: dict[str, float] = {}
        for arm, pair in arms.items():
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise InvalidValueError(f"arms[{arm!r}]", pair, "(pulls, summed reward)")
            reward = float(pair[1])
            if not math.isfinite(reward):
                raise InvalidValueError(f"arms[{arm!r}]", pair, "a finite summed reward")
            values[record.bandit_key(arm, "pulls")] = count(f"arms[{arm!r}]", pair[0])
            values[record.bandit_key(arm, "reward")] = reward
        self.run.log_metrics(values, step=self._period(period))

    def log_interleaving(self, per_query_credits: Iterable[tuple[int, int]], period: Any = None) -> None:
        """Per-query ``(clicks credited to a, clicks credited to b)`` from :func:`credit`, summarised
        as wins of a, wins of b and ties.

        >>> exp.log_interleaving([(1, 0), (0, 2), (0, 0)])  # doctest: +SKIP
        """
        self._require("log_interleaving", "interleaving")
        wins = dict.fromkeys(record.INTERLEAVING_FIELDS, 0)
        for i, pair in enumerate(per_query_credits):
            a, b = (count(f"per_query_credits[{i}]", c) for c in pair)
            wins["wins_a" if a > b else "wins_b" if b > a else "ties"] += 1
        self.run.log_metrics(
            {record.interleaving_key(k): n for k, n in wins.items()}, step=self._period(period)
        )

    def ingest(self, events: Any, **columns: Any) -> dict[str, int]:
        """Aggregate raw events (a DataFrame, or a Parquet/CSV path) and log them per period.

        See :func:`labledger.online.ingest.aggregate_events` for the columns.

        >>> exp.ingest(events, unit="user_id", variant="arm", metrics=["clicked", "revenue"],
        ...            timestamp="ts")  # doctest: +SKIP
        """
        from labledger.online.ingest import aggregate_events

        batches = aggregate_events(events, variants=self.variants, known=self._metric_types, **columns)
        for period, exposures, outcomes, covariates in batches.periods:
            self.log_exposures(exposures, period=period)
            for metric, values in outcomes.items():
                self.log_outcomes(metric, values, period=period, covariate=covariates.get(metric))
        return {"events": batches.events, "units": batches.units, "periods": len(batches.periods)}

    # -- reading and ending ------------------------------------------------------

    def report(self, arm_means: Sequence[float] | Mapping[str, float] | None = None) -> OnlineReport:
        """The report on everything logged so far (flushes first).

        >>> print(exp.report().render())  # doctest: +SKIP
        """
        from labledger.online.report import online_report
        from labledger.query.runs import get_run

        self.run.flush()
        return online_report(get_run(self.run.id, self.run.store), arm_means=arm_means)

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Log the summary metrics (see :meth:`_log_summary`), then end the run (see
        :meth:`labledger.Run.end`)."""
        if status == "finished":
            self._log_summary()
        self.run.end(status, error)

    def _log_summary(self) -> None:
        """Record each (metric, treatment)'s relative lift and Holm-adjusted always-valid p as
        ``lift/<metric>/<treatment>`` and ``p/<metric>/<treatment>``, and a bandit's regret as
        ``regret``, so ``runs``, ``leaderboard`` and filters see the outcome. Never fails the run."""
        import warnings

        from labledger.errors import LabledgerError

        if self.run.ended:
            return
        try:
            report = self.report()
        except (LabledgerError, ValueError, ImportError) as e:
            warnings.warn(f"online summary of run {self.run.id[:12]} not recorded: {e}", stacklevel=3)
            return
        values: dict[str, float] = {}
        for m in report.metrics:
            if m.lift is not None and math.isfinite(m.lift.relative):
                values[f"lift/{m.metric}/{m.treatment}"] = m.lift.relative
            if math.isfinite(m.sequential_p_adjusted):
                values[f"p/{m.metric}/{m.treatment}"] = m.sequential_p_adjusted
        if report.bandit is not None:
            values["regret"] = report.bandit.regret
        if values:
            self.run.log_metrics(values)
