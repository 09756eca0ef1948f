"""Raw events in, aggregates out: what :meth:`OnlineExperiment.ingest` logs per period.

Events are rows of (unit, variant, metric values, optional timestamp). Each unit counts
once: in the period of its first event, with its metric values summed over its events (a
conversion metric counts the unit once if any event converted) and its covariate taken from
its first event. Batches should hold disjoint units: a unit ingested in two batches counts twice.

>>> import pandas as pd
>>> events = pd.DataFrame({"user": [1, 1, 2, 3], "arm": ["a", "a", "b", "b"],
...                        "clicked": [0, 1, 0, 1], "ts": ["2026-11-30"] * 4})
>>> got = aggregate_events(events, variants=["a", "b"], unit="user", variant="arm",
...                        metrics=["clicked"], timestamp="ts")
>>> got.periods[0][:3]
('2026-11-30', {'a': 1, 'b': 2}, {'clicked': {'a': (1, 1), 'b': (1, 2)}})
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labledger.errors import InvalidValueError
from labledger.online.abtest import Covariate, Moments

__all__ = ["Aggregated", "aggregate_events"]


@dataclass
class Aggregated:
    """Per period: ``(label, exposures, outcomes, covariates)``, plus the event and unit counts."""

    periods: list[
        tuple[str | None, dict[str, int], dict[str, dict[str, Any]], dict[str, dict[str, Covariate]]]
    ]
    events: int
    units: int


def _frame(events: Any) -> Any:
    import pandas as pd

    if isinstance(events, pd.DataFrame):
        return events
    if isinstance(events, str | os.PathLike):
        path = Path(events)
        if not path.is_file():
            raise InvalidValueError("events", str(path), "an existing .parquet or .csv file")
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".gz"):
            return pd.read_csv(path)
        raise InvalidValueError("events", str(path), "a .parquet or .csv file")
    raise InvalidValueError("events", type(events).__name__, "a pandas DataFrame or a Parquet/CSV path")


def _kind(values: Any, declared: str | None) -> str:
    import pandas as pd

    if declared is not None:
        return declared
    if pd.api.types.is_bool_dtype(values):
        return "proportion"
    return "proportion" if values.dropna().isin([0, 1]).all() else "mean"


def aggregate_events(
    events: Any,
    *,
    variants: Sequence[str],
    unit: str,
    variant: str,
    metrics: Sequence[str] | Mapping[str, str],
    timestamp: str | None = None,
    covariates: Mapping[str, str] | None = None,
    known: Mapping[str, str] | None = None,
) -> Aggregated:
    """Aggregate events per period (UTC day of ``timestamp``; one period when it is not given).

    :param metrics: metric columns, or a dict from column to ``proportion`` / ``mean``; a list
        infers 0/1 or boolean columns as conversions and the rest as means.
    :param covariates: metric column → pre-period covariate column, for CUPED.
    :param known: metric types already declared by the experiment (they win over inference).
    """
    import numpy as np
    import pandas as pd

    df = _frame(events)
    cov = dict(covariates or {})
    types = dict(metrics) if isinstance(metrics, Mapping) else dict.fromkeys(metrics)
    needed = [unit, variant, *types, *cov.values(), *([timestamp] if timestamp else [])]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise InvalidValueError("events", missing, f"missing column(s); the events have {list(df.columns)}")
    names = df[variant].astype(str)
    unknown = sorted(set(names.unique()) - set(variants))
    if unknown:
        raise InvalidValueError(
            "events", unknown[:5], f"unknown variant(s) in {variant!r}; expected {list(variants)}"
        )
    for m in cov:
        if m not in types:
            raise InvalidValueError("covariates", m, "a covariate for one of the ingested metrics")
    for col in [*types, *cov.values()]:
        if not pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]):
            raise InvalidValueError("events", col, "metric and covariate columns must be numeric")
        if df[col].isna().any():
            raise InvalidValueError("events", col, "has missing values; fill or drop them first")
    kinds = {m: _kind(df[m], types[m] or (known or {}).get(m)) for m in types}
    bad = {m: k for m, k in kinds.items() if k not in ("proportion", "mean")}
    if bad:
        raise InvalidValueError("metrics", bad, "each metric is 'proportion' or 'mean'")
    work = pd.DataFrame({"unit": df[unit], "variant": names})
    if timestamp:
        ts = df[timestamp]
        when = (
            pd.to_datetime(ts, unit="s", utc=True)
            if pd.api.types.is_numeric_dtype(ts)
            else pd.to_datetime(ts, utc=True)
        )
        codes, days = pd.factorize(when.dt.floor("D"))  # each day formatted once
        if (codes < 0).any():
            raise InvalidValueError("events", timestamp, "has missing timestamps; fill or drop them first")
        work["period"] = np.asarray(days.strftime("%Y-%m-%d"), dtype=object)[codes]
        work["_t"] = when
    else:
        work["period"] = ""
        work["_t"] = np.arange(len(df))
    for m in kinds:
        work[f"m:{m}"] = df[m].astype(float)
    for m, c in cov.items():
        work[f"x:{m}"] = df[c].astype(float)
    work = work.sort_values("_t", kind="stable")
    grouped = work.groupby("unit", sort=False)
    split = grouped["variant"].nunique()
    if (split > 1).any():
        raise InvalidValueError("events", split[split > 1].index[:5].tolist(), "units seen in two variants")
    agg: dict[str, Any] = {"variant": "first", "period": "first"}
    agg.update({f"m:{m}": ("max" if k == "proportion" else "sum") for m, k in kinds.items()})
    agg.update({f"x:{m}": "first" for m in cov})
    units = grouped.agg(agg)
    out: Aggregated = Aggregated([], len(df), len(units))
    for period, part in units.groupby("period", sort=True):
        label = str(period) or None
        by_variant = part.groupby("variant")
        exposures = {str(v): int(n) for v, n in by_variant.size().items()}
        outcomes: dict[str, dict[str, Any]] = {}
        covs: dict[str, dict[str, Covariate]] = {}
        for m, k in kinds.items():
            y = part[f"m:{m}"]
            if k == "proportion":
                outcomes[m] = {str(v): (int((g > 0).sum()), len(g)) for v, g in y.groupby(part["variant"])}
                continue
            outcomes[m] = {
                str(v): Moments(len(g), float(g.sum()), float((g * g).sum()))
                for v, g in y.groupby(part["variant"])
            }
            if m in cov:
                x = part[f"x:{m}"]
                covs[m] = {
                    str(v): Covariate(
                        len(g),
                        float(x[g.index].sum()),
                        float((x[g.index] ** 2).sum()),
                        float((x[g.index] * g).sum()),
                    )
                    for v, g in y.groupby(part["variant"])
                }
        out.periods.append((label, exposures, outcomes, covs))
    return out
