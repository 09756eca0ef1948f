"""Metric directions (is higher better?) and per-key aggregation of a metric's history.

Declare a direction once per store; names containing ``loss``, ``error``,
``mse``, ``mae`` or ``rmse`` default to ``min`` (scikit-learn's ``neg_*``
scorers to ``max``), everything else to ``max``.

>>> import labledger as ll
>>> ll.metric_direction("val_perplexity", "min")   # doctest: +SKIP
'min'
>>> ll.metric_direction("val_loss")                # doctest: +SKIP
'min'
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.store import open_store

if TYPE_CHECKING:
    from labledger.query.runs import RunView
    from labledger.store.backend import Backend

__all__ = [
    "InvalidAggregationError",
    "InvalidDirectionError",
    "aggregate_metric",
    "default_direction",
    "direction_resolver",
    "is_better",
    "metric_direction",
    "parse_aggregation",
]

DIRECTIONS = ("min", "max")
AGGREGATIONS = ("last", "min", "max", "best", "count", "mean_last_<N>")
_SETTING = "metric_direction:"
_LOWER_IS_BETTER = re.compile(r"loss|error|mse|mae|rmse", re.IGNORECASE)
_MEAN_LAST = re.compile(r"mean_last_(\d+)$")


class InvalidDirectionError(LabledgerError, ValueError):
    """A metric direction other than ``min`` or ``max`` was given."""

    def __init__(self, key: str, direction: Any) -> None:
        self.key = key
        self.direction = direction
        super().__init__(
            f"invalid direction {direction!r} for metric {key!r}: give 'min' (lower is better) "
            "or 'max' (higher is better)"
        )


class InvalidAggregationError(LabledgerError, ValueError):
    """An aggregation name is not one of last, min, max, best, count, mean_last_<N>."""

    def __init__(self, name: Any) -> None:
        self.name = name
        super().__init__(
            f"unknown metric aggregation {name!r}; use one of {', '.join(AGGREGATIONS)} "
            "(e.g. mean_last_5 = mean of the last 5 logged values)"
        )


def default_direction(key: str) -> str:
    """``min`` for losses and errors (but ``max`` for ``neg_*`` scorers), else ``max``."""
    leaf = key.rsplit("/", 1)[-1]
    if leaf.lower().startswith("neg_"):
        return "max"
    return "min" if _LOWER_IS_BETTER.search(key) else "max"


def _declared(store: Backend) -> dict[str, str]:
    return {key[len(_SETTING) :]: value for key, value in store.settings(_SETTING).items()}


def metric_direction(
    key: str, direction: str | None = None, store: str | os.PathLike[str] | Backend | None = None
) -> str:
    """Declare (with ``direction``) or look up whether lower (``min``) or higher (``max``) is better.

    The declaration is stored once for the whole store and used by ``best``,
    ``compare``, ``leaderboard`` and ``order_by``.

    >>> ll.metric_direction("val_loss", "min")   # doctest: +SKIP
    'min'
    """
    from labledger.tracking import validate as _validate

    _validate.check_key(key, "metric key")
    st = open_store(store)
    if direction is None:
        declared = st.setting(_SETTING + key)
        return declared if declared is not None else default_direction(key)
    if direction not in DIRECTIONS:
        raise InvalidDirectionError(key, direction)
    st.set_setting(_SETTING + key, direction)
    return direction


def direction_resolver(store: str | os.PathLike[str] | Backend | None = None) -> Callable[[str], str]:
    """A function key → direction that reads the declared directions once."""
    declared = _declared(open_store(store))

    def direction_of(key: str) -> str:
        return declared.get(key) or default_direction(key)

    return direction_of


def is_better(a: float, b: float, direction: str) -> bool:
    """Whether ``a`` beats ``b`` for a metric with this direction."""
    return a < b if direction == "min" else a > b


def parse_aggregation(name: str) -> tuple[str, int | None]:
    """``"mean_last_5"`` → ``("mean_last", 5)``; ``"best"`` → ``("best", None)``."""
    if name in ("last", "min", "max", "best", "count"):
        return name, None
    m = _MEAN_LAST.match(str(name))
    if m and int(m.group(1)) > 0:
        return "mean_last", int(m.group(1))
    raise InvalidAggregationError(name)


def aggregate_metric(
    run: RunView, key: str, how: str = "last", direction_of: Callable[[str], str] | None = None
) -> float:
    """One number for a metric's history: last, min, max, best, count or mean_last_<N>.

    ``best`` follows the metric's direction; ``mean_last_<N>`` reads the history
    (the others use the stored summary). NaN when the run has no such metric.

    >>> aggregate_metric(ll.get_run("exp/run"), "val_loss", "mean_last_5")  # doctest: +SKIP
    """
    kind, n = parse_aggregation(how)
    summary = run.summary.get(key)
    if summary is None:
        return math.nan
    if kind == "mean_last":
        import numpy as np

        values = run.metric_arrays(key)["value"][-(n or 1) :]
        finite = values[~np.isnan(values)]
        return float(finite.mean()) if len(finite) else math.nan
    if kind == "best":
        kind = (
            "min"
            if (direction_of or (lambda k: metric_direction(k, store=run.store)))(key) == "min"
            else "max"
        )
    value = summary[kind]
    return math.nan if value is None else float(value)


def aggregate_many(
    runs: Iterable[RunView], keys: Iterable[str], how: str, direction_of: Callable[[str], str]
) -> dict[str, dict[str, float]]:
    """run id → key → aggregated value (only keys the run has)."""
    keys = list(keys)
    return {
        r.id: {k: aggregate_metric(r, k, how, direction_of) for k in keys if k in r.summary} for r in runs
    }
