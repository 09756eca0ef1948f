"""How a run hands what it logged to the sinks: its buffer, its outbox and the background writer.

Mixed into :class:`labledger.Run`. Points are buffered per key (one
``list.extend`` per point); :meth:`DeliveryMixin._take_points` moves them into
the run's :class:`~labledger.tracking.delivery.Outbox` as one batch, and every other
record (params, tags, the end...) is queued there too. See
:mod:`labledger.tracking.delivery` for the ordering, retry and spill rules, and
:mod:`labledger.tracking.lifecycle` for the background writer.
"""

from __future__ import annotations

import sys
import threading
from contextlib import suppress
from typing import TYPE_CHECKING, Any, cast

from labledger.errors import StoreError, StoreWriteError
from labledger.tracking import lifecycle as _lifecycle
from labledger.tracking.delivery import Event, Outbox, report_unwritten

if TYPE_CHECKING:
    from labledger.store import Store
    from labledger.tracking.run import Run

#: Buffered points of one key before the logging thread delivers them itself (back-pressure).
MAX_PENDING_POINTS = 500_000
#: Buffered points of one key that wake the background writer early.
WAKE_POINTS = 100_000

_OPEN, _ENDING, _ENDED, _DETACHED = "open", "ending", "ended", "detached"


class DeliveryMixin:
    """The buffer, the outbox and the writer's entry points of a :class:`labledger.Run`."""

    id: str
    pid: int
    parent_id: str | None
    store: Store
    _state: str
    _lock: threading.Lock
    _buf: dict[str, list[Any]]
    _last_step: dict[str, int]
    _seq: int
    _outbox: Outbox
    _background_reported: bool

    @property
    def _as_run(self) -> Run:
        return cast("Run", self)

    def _backpressure(self, pending: int) -> None:
        """A key holds ``pending`` buffered points (at least :data:`WAKE_POINTS`)."""
        if pending >= MAX_PENDING_POINTS:
            # the logging thread delivers itself: memory stays bounded (spilled while the store fails)
            self._take_points()
            self._outbox.drain(retry=False)
        elif pending == WAKE_POINTS:  # once per crossing, not on every point until the writer runs
            _lifecycle.wake_writer()

    def _take_points(self) -> bool:
        """Move the buffered points into the outbox as one batch. Returns whether there were any.

        Logging appends to each key's list without a lock; this takes the points present
        from the front of each list (a copy and a delete, between which no other thread
        runs), so a point appended meanwhile stays for the next batch. Takers hold the
        run's lock. Should a signal's exception interrupt the take before the batch is
        queued, the points go back to the front of their lists: nothing is lost or doubled.
        """
        with self._lock:
            buf, last, outbox = self._buf, self._last_step, self._outbox
            raw: dict[str, list[Any]] = {}
            items = 0
            event: Event | None = None
            try:
                for key, points in buf.items():
                    n = len(points)
                    if n:
                        raw[key] = points[:n]
                        del points[:n]
                        items += n
                        last[key] = raw[key][-4]
                if not raw:
                    return False
                seq = self._seq
                event = Event.metrics(seq, raw, items >> 2)
                ticket = outbox.tickets + 1
                event.ticket = ticket
                self._seq = seq + 1
                outbox.tickets = ticket
                outbox.events.append(event)
            except BaseException:
                if event is None or not outbox.events or outbox.events[-1] is not event:
                    for key, taken in raw.items():
                        buf[key][:0] = taken
                raise
        return True

    def _deliver(self) -> bool:
        """Deliver the buffered points and every queued record now; returns whether all was taken."""
        self._take_points()
        return self._outbox.drain()

    def flush(self, timeout: float = 30.0) -> None:
        """Write every buffered metric and record now (also happens every second and at the end).

        When it returns, everything logged to the run before the call is in the store.
        If the store refuses writes (disk full, read-only...), it raises
        :class:`~labledger.errors.StoreWriteError`; what was logged is kept and
        retried in the background. Called from inside a plugin's hook, it returns at
        once: the delivery in progress writes everything when the hook returns.

        Also waits (up to ``timeout`` seconds) for the run's start-up lineage capture
        (git state, packages), which otherwise completes in the background, even after
        the run has ended.

        >>> run.flush()  # doctest: +SKIP
        """
        if self._state is _DETACHED:
            return
        if self.parent_id is None and not self.store.in_transaction():  # the capture needs the lock
            from labledger.lineage.capture import capture_worker

            capture_worker.wait(self, timeout)
        self._take_points()
        if not self._outbox.drain() and self._outbox.refused is not None:
            self._raise_unwritten()

    def _raise_unwritten(self) -> None:
        refused = self._outbox.refused
        points = self._outbox.pending_points()
        records = len(self._outbox)
        raise StoreWriteError(
            refused.path if refused is not None else str(self.store.path),
            f"{records} records ({points:,} metric points) of run {self.id} are not written yet "
            f"({refused.problem if refused is not None else 'the store refused them'}). They are kept "
            "and retried in the background: free space or fix the permissions, then flush again",
            pending_records=records,
            pending_points=points,
        )

    def _notify(self, hook: str, **kwargs: Any) -> None:
        """Queue a record for the sinks and deliver it (with anything queued before it)."""
        with self._lock:
            ticket = self._outbox.put(Event(hook, kwargs))
        if not self._outbox.drain(upto=ticket, retry=False):
            _lifecycle.service(self._as_run)  # the writer delivers or retries what is left
        elif self._state is _ENDED and not self._outbox.events:
            _lifecycle.settle(self._as_run)

    # -- background writer (see labledger.tracking.lifecycle) ----------------------

    def _tick(self) -> bool:
        """The writer's round: deliver buffered points and retry refused records; whether any was stored."""
        before = self._outbox.delivered_batches
        if self._state is _OPEN:
            self._take_points()
        if self._outbox.drain(wait=False, retry=False) and self._state is _ENDED and not self._outbox.events:
            _lifecycle.settle(self._as_run)
        return self._outbox.delivered_batches != before

    def _heartbeat(self) -> None:
        if self._outbox.refused is not None:
            return
        with suppress(StoreError):  # a full or read-only disk: records are retried, the heartbeat with them
            self.store.heartbeat(self.id)

    def _drain_at_exit(self) -> bool:
        if self._state is _DETACHED:
            return True
        self._take_points()
        done = self._outbox.drain() and not self._outbox.events
        if done and self._state is not _OPEN:
            _lifecycle.settle(self._as_run)
        return done

    def _report_unwritten(self) -> None:
        report_unwritten(self._as_run, self._outbox)

    def _detach(self) -> None:
        self._state = _DETACHED
        self._buf = {}
        self._lock = threading.Lock()
        self._outbox = Outbox(self._as_run)

    def _report_background_error(self, error: BaseException) -> None:
        if not self._background_reported:
            self._background_reported = True
            print(f"labledger: background writer failed for run {self.id}: {error!r}", file=sys.stderr)
