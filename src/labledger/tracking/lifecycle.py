"""Process-wide care of runs: the active run, the background writer, exit, SIGTERM and fork.

- The *active run* belongs to the current thread or asyncio task (a
  :class:`contextvars.ContextVar`): a thread started inside a ``with`` block
  sees that run only when the context is passed on (``contextvars.copy_context()``).
  Only runs the user starts become active; a run an integration starts for
  itself is bound to that integration object.
- One daemon thread delivers every run's buffered metrics at least every
  ``LABLEDGER_FLUSH_INTERVAL`` seconds, retries what a failing store refused,
  and keeps heartbeats fresh. It is woken through a :class:`queue.SimpleQueue`,
  whose ``put`` is a single C call: a signal in the logging thread cannot
  leave a lock of it held.
- At interpreter exit every open run is flushed and ended: ``finished``, or
  ``failed`` after an uncaught exception, or ``killed`` after SIGTERM; then the
  plugins hear ``labledger_shutdown``.
- SIGTERM (when the program has not installed its own handler) raises
  :class:`Terminated` in the main thread, so ``with`` blocks and ``finally``
  clauses run, then the process exits with status 143.
- In a forked child the parent's runs are detached: the child cannot write them.
"""

from __future__ import annotations

import atexit
import contextvars
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from labledger import settings
from labledger.hooks import manager as plugins

if TYPE_CHECKING:
    from labledger.tracking.run import Run

HEARTBEAT_SECONDS = 5.0
#: How long the exit handler keeps retrying writes a failing store refused.
EXIT_RETRY_SECONDS = 5.0


class Terminated(SystemExit):
    """Raised in the main thread when the process receives SIGTERM."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def outcome(exc: BaseException | None) -> tuple[str, str | None]:
    """The status and stored traceback of a run left by ``exc`` (``None``: it finished).

    KeyboardInterrupt and SIGTERM are ``killed``; ``sys.exit(0)`` is ``finished``;
    any other exception is ``failed``.
    """
    if exc is None or (
        isinstance(exc, SystemExit) and not isinstance(exc, Terminated) and exc.code in (None, 0)
    ):
        return "finished", None
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ("killed" if isinstance(exc, KeyboardInterrupt | Terminated) else "failed"), text


def flush_interval() -> float:
    """Seconds between background deliveries (``LABLEDGER_FLUSH_INTERVAL``, default 1)."""
    raw = settings.flush_interval(lenient=True)  # a bad value is reported by start_run
    try:
        value = float(raw)
    except ValueError:
        return 1.0
    if value != value:
        return 1.0
    return min(max(0.01, value), 3600.0)


#: The runs the user started in this thread/task, innermost last (ended ones are skipped).
_active: contextvars.ContextVar[tuple[Run, ...]] = contextvars.ContextVar("labledger_active_runs", default=())


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        #: runs the writer looks after: open ones, and ended ones with records still to write
        self.runs: dict[str, Run] = {}
        self.writer: threading.Thread | None = None
        self.wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self.woken = False
        self.stopping = False
        self.terminated = False
        self.uncaught: BaseException | None = None
        self.installed = False
        #: bulk transactions open in this process (the writer does not wait on their lock)
        self.bulk = 0


_state = _State()


def open_runs() -> list[Run]:
    """Every run of this process that has not ended."""
    with _state.lock:
        return [r for r in _state.runs.values() if not r.ended]


def serviced_runs() -> list[Run]:
    """Open runs, and ended runs whose records a failing store has not taken yet."""
    with _state.lock:
        return list(_state.runs.values())


def active_run() -> Run | None:
    """The innermost run the user started in this thread or task that has not ended."""
    for run in reversed(_active.get()):
        if not run.ended:
            return run
    return None


def add(run: Run, *, activate: bool = True) -> None:
    """Look after ``run`` (background delivery, exit); make it the active run when ``activate``."""
    _install()
    with _state.lock:
        _state.runs[run.id] = run
        if _state.writer is None or not _state.writer.is_alive():
            _state.writer = threading.Thread(target=_writer_loop, name="labledger-writer", daemon=True)
            _state.writer.start()
    if activate:
        _active.set((*(r for r in _active.get() if not r.ended), run))


def deactivate(run: Run) -> None:
    """Take an ended run off this context's stack of active runs."""
    stack = _active.get()
    if run in stack:
        _active.set(tuple(r for r in stack if r is not run))


def service(run: Run) -> None:
    """Have the writer retry ``run``'s unwritten records (an ended run whose store failed)."""
    with _state.lock:
        _state.runs[run.id] = run


def settle(run: Run) -> None:
    """``run`` has ended and everything it logged was delivered: the writer forgets it."""
    with _state.lock:
        _state.runs.pop(run.id, None)


def wake_writer() -> None:
    """Ask the background writer to deliver now (cheap; safe from any thread, at any moment)."""
    if not _state.woken:
        _state.woken = True
        _state.wake.put(None)


def _wait_for_wake(timeout: float) -> None:
    with suppress(queue.Empty):
        _state.wake.get(timeout=timeout)
    _state.woken = False
    with suppress(queue.Empty):
        while True:
            _state.wake.get_nowait()


_background = threading.local()


def mark_background() -> None:
    """Mark the calling thread as one of labledger's own (the writer, the lineage capture).

    Such a thread never waits for a bulk transaction of its own process: its store
    writes step back and are retried by the writer (nothing waits for them).
    """
    _background.flag = True


def in_background() -> bool:
    """Whether the calling thread is one of labledger's background threads."""
    return getattr(_background, "flag", False)


def bulk_open() -> bool:
    """Whether a thread of this process holds a bulk transaction (``Store.transaction()``)."""
    return _state.bulk > 0


def _writer_loop() -> None:
    mark_background()
    last_beat: dict[str, float] = {}
    while not _state.stopping:
        _wait_for_wake(flush_interval())
        now = time.monotonic()
        for run in serviced_runs():
            try:
                delivered = run._tick()
                if run.ended:
                    continue
                if delivered or now - last_beat.get(run.id, 0.0) >= HEARTBEAT_SECONDS:
                    if not delivered:
                        run._heartbeat()
                    last_beat[run.id] = now
            except Exception as e:  # keep the writer alive whatever happens
                run._report_background_error(e)


@contextmanager
def writer_paused() -> Iterator[None]:
    """While the block runs (a bulk transaction), the writer never waits for the store's lock.

    Its store writes step back instead (retried on its next round), so a thread
    holding a bulk transaction never waits for a writer that waits for it. No lock
    is held: the writer goes on delivering to other plugins meanwhile.
    """
    with _state.lock:
        _state.bulk += 1
    try:
        yield
    finally:
        with _state.lock:
            _state.bulk -= 1


def _install() -> None:
    if _state.installed:
        return
    with _state.lock:
        if _state.installed:
            return
        _state.installed = True
        plugins.get_plugin_manager()  # its exit handler is registered first, so it runs after ours
        atexit.register(_at_exit)
        previous_hook = sys.excepthook

        def _excepthook(t: type[BaseException], e: BaseException, tb: TracebackType | None) -> None:
            _state.uncaught = e
            previous_hook(t, e, tb)

        sys.excepthook = _excepthook
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                    signal.signal(signal.SIGTERM, _on_sigterm)
            except (ValueError, OSError):  # pragma: no cover - embedded interpreters
                pass
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _state.terminated = True
    # restore the default so a second SIGTERM kills at once
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated()


def _at_exit() -> None:
    _state.stopping = True
    wake_writer()
    status: str
    error: str | None
    if _state.terminated:
        status, error = "killed", "terminated by SIGTERM"
    else:
        status, error = outcome(_state.uncaught or getattr(sys, "last_value", None))
    for run in reversed(open_runs()):
        try:
            run.end(status=status, error=error)
        except KeyboardInterrupt:  # Ctrl-C while exiting: what the run logged is still written below
            continue
        except Exception as e:  # pragma: no cover - exit must go on
            print(f"labledger: could not end run {run.id} at exit: {e}", file=sys.stderr)
    try:
        if "labledger.lineage.capture" in sys.modules:  # let start-up captures of short runs finish
            sys.modules["labledger.lineage.capture"].capture_worker.wait(None, timeout=10)
    except KeyboardInterrupt:
        pass
    for _ in range(3):  # a Ctrl-C while writing the last records: try again (SIGKILL stops for good)
        try:
            _settle_at_exit()
            break
        except KeyboardInterrupt:
            continue
    with suppress(KeyboardInterrupt):
        plugins.shutdown()  # once per process: runs are ended and written


def _settle_at_exit() -> None:
    """Retry what a failing store refused for a few seconds; say what could not be written."""
    deadline = time.monotonic() + EXIT_RETRY_SECONDS
    while True:
        left = [r for r in serviced_runs() if not r._drain_at_exit()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for run in left:
        run._report_unwritten()


def _after_fork_in_child() -> None:
    with _state.lock:
        runs = list(_state.runs.values())
        _state.runs.clear()
        _state.writer = None
        _state.wake = queue.SimpleQueue()
        _state.woken = False
        _state.bulk = 0
    for run in runs:
        run._detach()
