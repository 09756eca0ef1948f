"""How an online experiment lives in the store: params for its design, metrics for its aggregates.

An online experiment is an ordinary run of kind ``online``, so every store (SQLite,
PostgreSQL, a server), ``labledger sync`` and the query layer carry it unchanged:

* design params: ``online.design`` (``ab``, ``bandit`` or ``interleaving``),
  ``online.variants`` (names, control first), ``online.allocation.<variant>``,
  ``online.model.<variant>`` (the offline run behind the variant), ``online.primary_metric``,
  ``online.alpha``, ``online.mde``, ``online.planned_units``, ``online.metric.<name>``
  (``proportion`` or ``mean``), ``online.cuped.<name>`` (a covariate came with every call)
  and ``online.period.<i>`` (the label of period ``i``);
* aggregates, one metric point per logging call at ``step`` = the period's index, summed on
  reading (so logging a period twice adds, and nothing is overwritten):
  ``online/exposures/<variant>``, ``online/<metric>/<variant>/<field>`` with fields
  ``successes``, ``trials`` (proportions) or ``n``, ``sum``, ``sum_sq`` and, for CUPED,
  ``sum_x``, ``sum_x2``, ``sum_xy`` (means), ``online/bandit/<arm>/pulls`` and ``/reward``,
  and ``online/interleaving/wins_a``, ``wins_b``, ``ties``.

>>> exposure_key("control")
'online/exposures/control'
>>> outcome_key("ctr", "control", "successes")
'online/ctr/control/successes'
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError

if TYPE_CHECKING:
    import numpy as np

    from labledger.query.run_view import RunView

__all__ = [
    "COVARIATE_FIELDS",
    "DESIGNS",
    "MEAN_FIELDS",
    "PROPORTION_FIELDS",
    "NotAnOnlineRunError",
    "OnlineData",
    "exposure_key",
    "outcome_key",
    "read_online",
]

PREFIX = "online/"
DESIGNS = ("ab", "bandit", "interleaving")
PROPORTION_FIELDS = ("successes", "trials")
MEAN_FIELDS = ("n", "sum", "sum_sq")
COVARIATE_FIELDS = ("sum_x", "sum_x2", "sum_xy")
BANDIT_FIELDS = ("pulls", "reward")
INTERLEAVING_FIELDS = ("wins_a", "wins_b", "ties")
#: metric names that would collide with the other aggregate families
RESERVED = ("exposures", "bandit", "interleaving")


class NotAnOnlineRunError(LabledgerError, ValueError):
    """The run is not an online experiment (``kind`` is not ``online``)."""

    def __init__(self, run_id: str, kind: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id[:12]} is an {kind} run, not an online experiment; "
            "start one with labledger.start_online(...)"
        )


def exposure_key(variant: str) -> str:
    return f"{PREFIX}exposures/{variant}"


def outcome_key(metric: str, variant: str, field_name: str) -> str:
    return f"{PREFIX}{metric}/{variant}/{field_name}"


def bandit_key(arm: str, field_name: str) -> str:
    return f"{PREFIX}bandit/{arm}/{field_name}"


def interleaving_key(field_name: str) -> str:
    return f"{PREFIX}interleaving/{field_name}"


@dataclass
class OnlineData:
    """An online run's design and its aggregates per period, read back from the store.

    ``series[key]`` is a float array with one entry per period (index = period index),
    the sum of every point logged under ``key`` for that period.
    """

    run_id: str
    experiment: str
    name: str
    status: str
    hypothesis: str | None
    design: str
    variants: list[str]
    allocation: dict[str, float]
    models: dict[str, str]
    primary_metric: str | None
    alpha: float
    mde: float | None
    planned_units: int | None
    metric_types: dict[str, str]
    cuped: set[str]
    periods: list[str]
    series: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def control(self) -> str:
        return self.variants[0]

    @property
    def treatments(self) -> list[str]:
        return self.variants[1:]

    def column(self, key: str) -> np.ndarray:
        """Per-period sums of ``key`` (zeros when nothing was logged under it)."""
        import numpy as np

        got = self.series.get(key)
        return got if got is not None else np.zeros(len(self.periods))

    def total(self, key: str) -> float:
        return float(self.column(key).sum())

    def exposures(self) -> dict[str, int]:
        """Units exposed per variant over every period."""
        return {v: int(self.total(exposure_key(v))) for v in self.variants}

    def has_covariate(self, metric: str) -> bool:
        return all(outcome_key(metric, v, f) in self.series for v in self.variants for f in COVARIATE_FIELDS)


def _number(params: dict[str, Any], key: str) -> float | None:
    value = params.get(key)
    return None if value is None else float(value)


def read_online(view: RunView) -> OnlineData:
    """The design and per-period aggregates of an online run.

    >>> data = read_online(ll.get_run("ranker-v7-vs-v6/bold-heron-1"))  # doctest: +SKIP
    >>> data.exposures()  # doctest: +SKIP
    {'control': 10123, 'treatment': 10090}
    """
    import numpy as np

    if view.kind != "online":
        raise NotAnOnlineRunError(view.id, view.kind)
    params = view.params
    variants = params.get("online.variants")
    if isinstance(variants, str):
        variants = json.loads(variants)
    variants = list(variants or [])
    periods: dict[int, str] = {}
    metric_types: dict[str, str] = {}
    allocation: dict[str, float] = {}
    models: dict[str, str] = {}
    cuped: set[str] = set()
    for key, value in params.items():
        head, _, rest = key.partition(".")
        if head != "online" or not rest:
            continue
        group, _, item = rest.partition(".")
        if group == "period" and item.isdigit():
            periods[int(item)] = str(value)
        elif group == "metric" and item:
            metric_types[item] = str(value)
        elif group == "allocation" and item:
            allocation[item] = float(value)
        elif group == "model" and item:
            models[item] = str(value)
        elif group == "cuped" and item and value:
            cuped.add(item)
    frame = view.metrics
    online = frame[frame["key"].astype(str).str.startswith(PREFIX)]
    steps = int(online["step"].max()) + 1 if len(online) else 0
    count = max(steps, max(periods, default=-1) + 1)
    series: dict[str, np.ndarray] = {}
    if len(online):
        sums = online.groupby([online["key"].astype(str), "step"], observed=True)["value"].sum()
        for index, value in sums.items():
            key, step = index  # type: ignore[misc]
            series.setdefault(str(key), np.zeros(count))[int(step)] += float(value)  # type: ignore[has-type]
    labels = [periods.get(i, f"period {i + 1}") for i in range(count)]
    planned = _number(params, "online.planned_units")
    alpha = _number(params, "online.alpha")
    primary = params.get("online.primary_metric")
    return OnlineData(
        run_id=view.id,
        experiment=view.experiment,
        name=view.name,
        status=view.status,
        hypothesis=view.hypothesis,
        design=str(params.get("online.design", "ab")),
        variants=variants,
        allocation=allocation or {v: 1.0 / len(variants) for v in variants} if variants else {},
        models=models,
        primary_metric=None if primary is None else str(primary),
        alpha=0.05 if alpha is None or not math.isfinite(alpha) else alpha,
        mde=_number(params, "online.mde"),
        planned_units=None if planned is None else int(planned),
        metric_types=metric_types,
        cuped=cuped,
        periods=labels,
        series=series,
    )


def find_online(ref: str, store: Any = None) -> RunView:
    """An online run by run reference (id, prefix, ``experiment/name``), else the newest online
    run of the experiment named ``ref``.

    >>> find_online("ranker-v7-vs-v6")  # doctest: +SKIP
    <RunView ranker-v7-vs-v6/bold-heron-1 01a2... finished>
    """
    from labledger.errors import RunNotFoundError
    from labledger.query.runs import get_run, run_rows

    try:
        return get_run(ref, store)
    except RunNotFoundError:
        rows = run_rows(ref, store=store, where="kind = 'online'", order_by="-start_time", limit=1)
        if not rows:
            raise RunNotFoundError(ref) from None
        return get_run(rows[0]["id"], store)
