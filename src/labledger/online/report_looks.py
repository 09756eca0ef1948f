"""The looks of the sequential test: cumulative aggregates per period, oldest first.

One look per period with enough data (variance > 0); a CUPED metric is adjusted at each look
with the θ of the data so far.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from labledger.online import record
from labledger.online.abtest import Covariate, Moments, cuped_adjusted
from labledger.online.sequential import SequentialResult, looks_from_counts, looks_from_sums, msprt

if TYPE_CHECKING:
    import numpy as np

__all__ = ["sequential_counts", "sequential_sums"]


def _cumulative(data: record.OnlineData, keys: Sequence[str]) -> list[np.ndarray]:
    return [data.column(k).cumsum() for k in keys]


def sequential_counts(
    data: record.OnlineData, metric: str, a: str, b: str, tau2: float, alpha: float
) -> SequentialResult | None:
    import numpy as np

    sa, na, sb, nb = _cumulative(
        data, [record.outcome_key(metric, v, f) for v in (a, b) for f in record.PROPORTION_FIELDS]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        pa, pb = sa / na, sb / nb
        var = pa * (1 - pa) / na + pb * (1 - pb) / nb
    keep = (na > 0) & (nb > 0) & np.isfinite(var) & (var > 0)
    if not keep.any():
        return None
    looks = looks_from_counts(sa[keep], na[keep], sb[keep], nb[keep])
    return msprt(looks, tau2=tau2, alpha=alpha)


def sequential_sums(
    data: record.OnlineData, metric: str, a: str, b: str, tau2: float, alpha: float
) -> SequentialResult | None:
    """The mSPRT on the cumulative means per period, CUPED-adjusted at each look when logged so."""
    import numpy as np

    fields = record.MEAN_FIELDS + (record.COVARIATE_FIELDS if data.has_covariate(metric) else ())
    cols = {(v, f): data.column(record.outcome_key(metric, v, f)).cumsum() for v in (a, b) for f in fields}
    arms: dict[str, list[np.ndarray]] = {a: [], b: []}
    for i in range(len(data.periods)):
        ma, mb = (Moments(round(cols[v, "n"][i]), cols[v, "sum"][i], cols[v, "sum_sq"][i]) for v in (a, b))
        if ma.n < 2 or mb.n < 2:
            continue
        if data.has_covariate(metric):
            ca, cb = (
                Covariate(round(cols[v, "n"][i]), *(cols[v, f][i] for f in record.COVARIATE_FIELDS))
                for v in (a, b)
            )
            with contextlib.suppress(ValueError):  # a constant covariate so far: this look goes unadjusted
                ma, mb, _, _ = cuped_adjusted(ma, mb, ca, cb)
        for v, m in ((a, ma), (b, mb)):
            arms[v].append(np.array([m.n, m.sum, m.sum_sq]))
    if not arms[a]:
        return None
    (na, sa, qa), (nb, sb, qb) = (np.array(arms[v]).T for v in (a, b))
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (qa - sa**2 / na) / (na - 1) / na + (qb - sb**2 / nb) / (nb - 1) / nb
    keep = np.isfinite(var) & (var > 0)
    if not keep.any():
        return None
    looks = looks_from_sums(na[keep], sa[keep], qa[keep], nb[keep], sb[keep], qb[keep])
    return msprt(looks, tau2=tau2, alpha=alpha)
