"""The logging hot path of a :class:`labledger.Run`: ``log_metric`` and ``log_metrics``.

Points are appended to a per-key list (``Run._buf``), four items per point in one
``list.extend`` that neither a signal nor another thread can split. The common
case (a known key, a ``float``, an ``int`` step) takes no lock and makes no call
besides the clock; the background writer takes points from the front of each
list (:meth:`~labledger.tracking.run_delivery.DeliveryMixin._take_points`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from labledger.tracking import validate as _validate
from labledger.tracking.run_delivery import _OPEN, WAKE_POINTS

__all__ = ["MetricsMixin"]

_STEP_LIMIT = _validate.STEP_LIMIT
_ONLY_FLOATS = {float}
_WAKE_ITEMS = 4 * WAKE_POINTS  # a key's buffered points that wake the writer (4 items each)
_now = time.time


class MetricsMixin:
    """``log_metric`` and ``log_metrics`` of a :class:`labledger.Run`."""

    _state: str
    _lock: threading.Lock
    _buf: dict[str, list[Any]]
    _last_step: dict[str, int]
    _metric_keys: set[str]

    if TYPE_CHECKING:  # provided by Run and DeliveryMixin

        def _raise_closed(self, action: str) -> NoReturn: ...

        def _backpressure(self, pending: int) -> None: ...

    def log_metric(self, key: str, value: Any, step: int | None = None, epoch: int | None = None) -> None:
        """Log one metric point; it is buffered and written in the background.

        ``step`` defaults to one more than this key's previous step (0 first).
        NaN and ±inf are stored as they are.

        >>> run.log_metric("val/loss", 0.31, step=3, epoch=3)  # doctest: +SKIP
        """
        # The common case (a known key, a float, an int step) appends without a lock or a call.
        if (
            type(value) is float
            and type(step) is int
            and epoch is None
            and self._state is _OPEN
            and -_STEP_LIMIT <= step < _STEP_LIMIT
            and type(key) is str
        ):
            points = self._buf.get(key)
            if points is not None:
                points.extend((step, None, _now(), value))
                if len(points) >= _WAKE_ITEMS:
                    self._backpressure(len(points) >> 2)
                return
        self.log_metrics({key: value}, step, epoch)

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, epoch: int | None = None
    ) -> None:
        """Log several metrics at one step; buffered and written in the background.

        Every value is checked before any is buffered, so a bad value logs nothing.

        >>> run.log_metrics({"train/loss": 0.4, "val/acc": 0.9}, step=5, epoch=5)  # doctest: +SKIP
        """
        buf = self._buf
        if (
            type(step) is int
            and epoch is None
            and self._state is _OPEN
            and -_STEP_LIMIT <= step < _STEP_LIMIT
            and type(metrics) is dict
            and buf.keys() >= metrics.keys()  # every key known (checked when first logged)
            and set(map(type, metrics.values())) == _ONLY_FLOATS
        ):  # the common case: checked with C-level set operations, appended in one loop
            t = _now()
            longest = 0
            for key, value in metrics.items():
                points = buf[key]
                points.extend((step, None, t, value))
                if len(points) > longest:
                    longest = len(points)
            if longest >= _WAKE_ITEMS:
                self._backpressure(longest >> 2)
            return
        if self._state is not _OPEN:
            self._raise_closed("log metrics" if len(metrics) != 1 else "log a metric")
        items = []
        for key, value in metrics.items():
            known = buf.get(key) if type(key) is str else None
            points = self._new_metric_key(key) if known is None else known
            if type(value) is not float:
                value = _validate.metric_value(key, value)
            items.append((points, value))
        if step is not None and (type(step) is not int or not -_STEP_LIMIT <= step < _STEP_LIMIT):
            step = _validate.step_value(_named(metrics, "step"), step)
        if epoch is not None:
            epoch = _validate.step_value(_named(metrics, "epoch"), epoch, "epoch")
        t = _now()
        if step is None:
            with self._lock:  # the writer cannot take a key's last point while its next step is found
                for (key, _), (points, value) in zip(metrics.items(), items, strict=True):
                    st = points[-4] + 1 if points else self._last_step.get(key, -1) + 1
                    points.extend((st, epoch, t, value))
        else:
            for points, value in items:
                points.extend((step, epoch, t, value))
        longest = max(map(len, (p for p, _ in items)), default=0)
        if longest >= _WAKE_ITEMS:
            self._backpressure(longest >> 2)

    def _new_metric_key(self, key: Any) -> list[Any]:
        """Check a key logged for the first time and give it its buffer."""
        key = _validate.check_key(key, "metric key")
        with self._lock:
            self._metric_keys.add(key)
            return self._buf.setdefault(key, [])


def _named(metrics: Mapping[str, Any], what: str) -> str:
    """The name an error about ``what`` (a step or epoch) gives: the key, when there is one."""
    return str(next(iter(metrics))) if len(metrics) == 1 else what
