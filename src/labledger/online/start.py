"""``start_online``: an online experiment is a run of kind ``online`` whose design is its params.

>>> import labledger as ll
>>> exp = ll.start_online("checkout", variants=["old", "new"], primary_metric="converted")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from labledger.errors import InvalidValueError
from labledger.online import record
from labledger.online.checks import count, run_id, variant_name
from labledger.online.experiment import OnlineExperiment

if TYPE_CHECKING:
    from labledger.store import Store

__all__ = ["start_online"]


def start_online(
    experiment: str | None = None,
    *,
    variants: Sequence[str] | Mapping[str, Any],
    primary_metric: str | None = None,
    allocation: Mapping[str, float] | None = None,
    hypothesis: str | None = None,
    design: str = "ab",
    alpha: float = 0.05,
    mde: float | None = None,
    planned_units: int | None = None,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    store: str | os.PathLike[str] | Store | None = None,
) -> OnlineExperiment:
    """Start an online experiment (a run of kind ``online``); the first variant is the control.

    :param variants: names, or a dict from name to the offline run (a ``Run``, its id or
        ``experiment/name``) whose model the variant serves.
    :param primary_metric: the metric that decides (sequential status and verdict).
    :param allocation: planned share per variant (default equal); the SRM check tests it.
    :param design: ``ab`` (default), ``bandit`` (arms logged with :meth:`~OnlineExperiment.log_pulls`)
        or ``interleaving`` (two rankers, :meth:`~OnlineExperiment.log_interleaving`).
    :param alpha: the level of every test.
    :param mde: the smallest difference of the primary metric worth detecting (its units):
        sets the mSPRT's mixing variance and, with ``planned_units`` unset, the planned sample.
    :param planned_units: units per variant at which the fixed-horizon test is read.

    >>> import labledger as ll
    >>> exp = ll.start_online("checkout", variants=["old", "new"],
    ...                       primary_metric="converted")  # doctest: +SKIP
    """
    from labledger.tracking.start import start_run

    if design not in record.DESIGNS:
        raise InvalidValueError("design", design, f"choose {', '.join(record.DESIGNS)}")
    if isinstance(variants, Mapping) or (isinstance(variants, Sequence) and not isinstance(variants, str)):
        names = [variant_name(v) for v in variants]
    else:
        raise InvalidValueError("variants", variants, "a list of names or a dict from name to offline run")
    if len(names) < 2 or len(set(names)) != len(names):
        raise InvalidValueError("variants", names, "two or more distinct variants, the control first")
    if design == "interleaving" and len(names) != 2:
        raise InvalidValueError("variants", names, "interleaving compares exactly two rankers (a, b)")
    shares = dict(allocation) if allocation is not None else {v: 1 / len(names) for v in names}
    if set(shares) != set(names) or not all(
        isinstance(w, numbers.Real) and math.isfinite(w) and w > 0 for w in shares.values()
    ):
        raise InvalidValueError("allocation", shares, f"a positive share for each of {names}")
    if not (isinstance(alpha, numbers.Real) and 0 < alpha < 1):
        raise InvalidValueError("alpha", alpha, "in (0, 1), e.g. 0.05")
    if mde is not None and not (isinstance(mde, numbers.Real) and math.isfinite(mde) and mde != 0):
        raise InvalidValueError("mde", mde, "a finite, non-zero difference in the primary metric's units")
    if planned_units is not None:
        planned_units = count("planned_units", planned_units)
    params: dict[str, Any] = {
        "online.design": design,
        "online.variants": names,
        "online.alpha": float(alpha),
        **{f"online.allocation.{v}": float(shares[v]) for v in names},
    }
    if primary_metric is not None:
        params["online.primary_metric"] = variant_name(primary_metric, "primary_metric")
    if mde is not None:
        params["online.mde"] = float(mde)
    if planned_units is not None:
        params["online.planned_units"] = planned_units
    if isinstance(variants, Mapping):
        for v, ref in variants.items():
            if ref is not None:
                params[f"online.model.{v}"] = run_id(ref, v, store)
    run = start_run(
        experiment, name=name, hypothesis=hypothesis, tags=tags, params=params, store=store, kind="online"
    )
    return OnlineExperiment(run, names, design)
