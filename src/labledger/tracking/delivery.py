"""A run's outbox: every record it hands to the sinks, delivered in order, nothing dropped.

Each record a run makes (params, a batch of metric points, tags, its end...)
becomes an :class:`Event` in the run's :class:`Outbox`, and events are
delivered to the plugins in order, one delivery at a time per run:

- No lock of the logging path is held while plugins run: metric points are
  swapped out of the run's buffer under its lock, hooks are called after.
- A call made from inside a hook never waits: on the same run it returns at
  once (the delivery in progress takes what was queued meanwhile); on another
  run it delivers only if no other thread is delivering that run.
- An event leaves the outbox once every plugin took it. When the store refuses
  it (:class:`~labledger.errors.StoreWriteError`: disk full, read-only...) it
  stays first in line and is retried later; an interruption (Ctrl-C, SIGTERM)
  in the middle leaves it queued as well. The store's writes are idempotent (a
  metric batch carries its sequence number), so a retried event is stored once.
- While the store refuses writes, metric batches beyond :data:`SPILL_POINTS`
  points go to files beside the store (else in the temporary folder) instead
  of memory, and come back from there when the store takes them.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.errors import StoreBusyError
from labledger.hooks import manager as plugins
from labledger.records import MetricBatch, Series
from labledger.store.spill import read_spill, spill_folders, write_spill

if TYPE_CHECKING:
    from labledger.errors import StoreWriteError
    from labledger.tracking.run import Run

#: Seconds between attempts to write to a store that refused a write.
RETRY_SECONDS = 1.0
#: Metric points kept in memory while the store refuses writes; more go to spill files.
SPILL_POINTS = 1_000_000

METRICS_HOOK = "labledger_metrics_logged"
#: How spill files left at exit get into a store (a local one: fsck works on those).
_IMPORT_HINT = " (`labledger fsck --repair` writes them into the store once it takes writes)"


class Event:
    """One record for the sinks: a hook name, its arguments and the plugins that took it."""

    __slots__ = ("done", "hook", "kwargs", "points", "raw", "seq", "spilled", "ticket")

    def __init__(self, hook: str, kwargs: dict[str, Any]) -> None:
        self.hook = hook
        self.kwargs = kwargs
        self.done: set[str] = set()
        self.ticket = 0  # the event's place in its run's outbox (1, 2, ...)
        self.points = 0
        self.seq = -1
        self.raw: dict[str, list[Any]] | None = None
        self.spilled: Path | None = None

    @classmethod
    def metrics(cls, seq: int, raw: dict[str, list[Any]], n: int) -> Event:
        """A batch of buffered points: ``key -> [step, epoch, timestamp, value, step, ...]`` (flat)."""
        event = cls(METRICS_HOOK, {})
        event.seq = seq
        event.raw = raw
        event.points = n
        return event

    def arguments(self, run: Run) -> dict[str, Any]:
        """The hook's keyword arguments (a metric batch is built, or read back from its spill file)."""
        if self.hook == METRICS_HOOK and "batch" not in self.kwargs:
            if self.raw is not None:
                series = {}
                for key, flat in self.raw.items():
                    series[key] = Series(flat[0::4], flat[1::4], flat[2::4], flat[3::4])
            else:
                series = read_spill(self.spilled) if self.spilled else {}
            # the points are dropped only once the batch holds them: a signal's exception landing
            # in between leaves them to be built again, never an empty batch in their place
            self.kwargs["batch"] = MetricBatch(run.id, self.seq, series)
            self.raw = None
        return {"run": run, **self.kwargs}

    def in_memory(self) -> bool:
        return self.hook == METRICS_HOOK and self.spilled is None

    def forget(self) -> None:
        """Drop the event's data once delivered (and its spill file)."""
        if self.spilled is not None:
            self.spilled.unlink(missing_ok=True)
            self.spilled = None
        self.raw = None
        self.kwargs = {}


class Outbox:
    """The events of one run waiting to be delivered, in order."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.events: deque[Event] = deque()
        self.lock = threading.Lock()  # held by the thread delivering this run's events
        self.owner = 0
        self.refused: StoreWriteError | None = None
        self.retry_at = 0.0
        self.delivered_batches = 0
        self.tickets = 0  # the last ticket given; events queue in ticket order
        self._spill_warned = False

    def __len__(self) -> int:
        return len(self.events)

    def put(self, event: Event) -> int:
        """Queue an event; returns its ticket. The caller holds the run's lock.

        No call lies between the ticket and the append (one ``deque.append``): a
        signal cannot leave an event with a ticket out of the queue.
        """
        ticket = self.tickets + 1
        event.ticket = ticket
        self.tickets = ticket
        self.events.append(event)
        return ticket

    def pending_points(self) -> int:
        return sum(e.points for e in list(self.events))

    def drain(self, *, upto: int | None = None, wait: bool = True, retry: bool = True) -> bool:
        """Deliver queued events in order, up to ticket ``upto`` (default: all queued now).

        Returns whether every event up to ``upto`` was delivered. Events queued
        after the call are left to later deliveries, so a thread that keeps
        logging never holds another one's flush.

        :param wait: wait for another thread's delivery of this run to end (never
            from inside a hook).
        :param retry: try again now even if the store refused a write less than
            :data:`RETRY_SECONDS` ago.
        """
        target = self.tickets if upto is None else upto
        me = threading.get_ident()
        if self.owner == me:  # re-entry from a hook: the delivery in progress takes what was queued
            return False
        if plugins.in_hook():
            wait = False
        while self._waiting(target):
            if self.refused is not None and not retry and time.monotonic() < self.retry_at:
                return False
            if wait:
                # `with` takes the lock and enters the block that releases it with no check for
                # signals between them: a SIGTERM or Ctrl-C landing here never leaves it held
                with self.lock:
                    self._deliver_owned(target, me)
            elif self.lock.acquire(False):  # only from inside a hook or a background thread
                try:
                    self._deliver_owned(target, me)
                finally:
                    self.lock.release()
            else:
                return False  # another thread is delivering; the writer takes the rest
            if self.refused is not None:
                return not self._waiting(target)
            retry = True
        return True

    def _deliver_owned(self, target: int, me: int) -> None:
        try:
            self.owner = me
            self._deliver_upto(target)
        finally:
            self.owner = 0

    def _waiting(self, target: int) -> bool:
        events = self.events
        try:
            return bool(events) and events[0].ticket <= target
        except IndexError:  # emptied by another thread meanwhile
            return False

    def _deliver_upto(self, target: int) -> None:
        run = self.run
        events = self.events
        while events and events[0].ticket <= target:
            event = events[0]
            errors, refused = plugins.deliver(event.hook, event.done, event.arguments(run))
            if errors:
                run.plugin_errors.extend(errors)
            if isinstance(refused, StoreBusyError):
                return  # the writer stepped back from a bulk transaction: its next round retries
            if refused is not None:
                self.refused = refused
                self.retry_at = time.monotonic() + RETRY_SECONDS
                self._spill_if_needed()
                return
            events.popleft()
            if event.hook == METRICS_HOOK:
                self.delivered_batches += 1
            event.forget()
        self.refused = None

    def memory_points(self) -> int:
        """Metric points of queued batches held in memory (not spilled)."""
        return sum(e.points for e in list(self.events) if e.in_memory())

    def _spill_if_needed(self) -> None:
        in_memory = self.memory_points()
        if in_memory <= SPILL_POINTS:
            return
        for event in list(self.events)[1:]:
            if in_memory <= SPILL_POINTS // 2:
                return
            if not event.in_memory():
                continue
            if not self._spill(event):
                if not self._spill_warned:
                    self._spill_warned = True
                    plugins.warn_once(
                        ("spill", str(self.run.store.path)),
                        f"labledger cannot write to {self.run.store.path} nor to a spill file; run "
                        f"{self.run.id} keeps {in_memory:,} unwritten points in memory, and "
                        "memory use grows until the store takes them",
                    )
                return
            in_memory -= event.points

    def spill_all(self) -> None:
        """Put every record still held in memory into a spill file (the process is exiting): metric
        batches as such, other records as the store writes that record them."""
        from labledger.store.sink import store_call
        from labledger.store.spill import write_call_spill

        folders = spill_folders(self.run.store.path)
        for event in list(self.events):
            if event.spilled is not None:
                continue
            if event.hook == METRICS_HOOK:
                if event.points and not self._spill(event):
                    return
                continue
            method, args = store_call(event.hook, self.run, event.kwargs)
            path = write_call_spill(folders, self.run.id, event.ticket, method, args)
            if path is None:
                return
            event.spilled = path

    def _spill(self, event: Event) -> bool:
        series = event.arguments(self.run)["batch"].series
        path = write_spill(spill_folders(self.run.store.path), self.run.id, event.seq, series)
        if path is None:
            return False
        event.spilled = path
        event.raw = None
        event.kwargs.pop("batch", None)
        return True


def report_unwritten(run: Run, outbox: Outbox) -> None:
    """Say on standard error what a store never took before the process exits."""
    if not outbox.events:
        return
    with suppress(Exception):  # what the disk still takes survives the exit, for fsck --repair
        outbox.spill_all()
    spilled = [str(e.spilled) for e in outbox.events if e.spilled is not None]
    where = (
        f"; {len(spilled)} of them are kept in spill files: {', '.join(spilled[:3])}"
        f"{' …' if len(spilled) > 3 else ''}{_IMPORT_HINT if hasattr(run.store, 'db_path') else ''}"
        if spilled
        else ""
    )
    print(
        f"labledger: {len(outbox.events)} records ({outbox.pending_points():,} metric points) of run "
        f"{run.id} could not be written to {run.store.path} before exit: {outbox.refused}{where}",
        file=sys.stderr,
    )
