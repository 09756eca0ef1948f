"""The metric endpoint's data: one history as arrays, downsampled for a chart when long.

>>> import labledger as ll
>>> metric_history(ll.get_run("digits/swift-otter-3"), "loss", 2000)["points"]  # doctest: +SKIP
250000
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labledger.ui.downsample import chart_indices
from labledger.ui.encoding import iso_array

if TYPE_CHECKING:
    from labledger.query.run_view import RunView

__all__ = ["metric_history"]


def metric_history(run: RunView, key: str, max_points: int) -> dict[str, Any]:
    """``step``, ``epoch`` (None where not given), ``timestamp`` (ISO 8601 UTC), ``elapsed``
    (seconds since the run started) and ``value`` arrays, with ``points`` (the full count) and
    ``downsampled`` (whether only some points were kept) and ``method`` (see
    :func:`labledger.ui.downsample.chart_indices`)."""
    arrays = run.metric(key, as_="numpy")
    points = len(arrays["value"])
    keep, method = chart_indices(arrays["step"], arrays["value"], max_points)
    downsampled = len(keep) < points
    if downsampled:
        arrays = {name: column[keep] for name, column in arrays.items()}
    epochs = arrays["epoch"].tolist()
    return {
        "points": points,
        "downsampled": downsampled,
        "method": method,
        "step": arrays["step"].tolist(),
        "epoch": [None if e < 0 else e for e in epochs],
        "timestamp": iso_array(arrays["timestamp"]),
        "elapsed": (arrays["timestamp"] - run.start_time).tolist(),
        "value": arrays["value"].tolist(),
    }
