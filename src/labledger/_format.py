"""Turning runs into readable terminal text."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any


def short_id(run_id: str) -> str:
    return run_id[:12]


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def value(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}"
    if v is None:
        return "-"
    text = str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{value(mean)} ± {value(std)}"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=list(headers), tablefmt="simple", disable_numparse=True)
