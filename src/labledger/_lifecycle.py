"""Process-wide care of open runs: the background writer, exit, SIGTERM and fork.

- One daemon thread delivers every open run's buffered metrics at least every
  ``LABLEDGER_FLUSH_INTERVAL`` seconds (default 1) and keeps heartbeats fresh.
- At interpreter exit every open run is flushed and ended: ``finished``, or
  ``failed`` after an uncaught exception, or ``killed`` after SIGTERM.
- SIGTERM (when the program has not installed its own handler) raises
  :class:`Terminated` in the main thread, so ``with`` blocks and ``finally``
  clauses run, then the process exits with status 143.
- In a forked child the parent's runs are detached: the child cannot write them.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labledger.run import Run

HEARTBEAT_SECONDS = 5.0


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
    try:
        return max(0.01, float(os.environ.get("LABLEDGER_FLUSH_INTERVAL", "1.0")))
    except ValueError:
        return 1.0


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.open_runs: dict[str, Run] = {}
        self.stack: list[Run] = []
        self.writer: threading.Thread | None = None
        self.wake = threading.Event()
        self.stopping = False
        self.terminated = False
        self.uncaught: BaseException | None = None
        self.installed = False
        # held by the background writer while it delivers, and by writer_paused()
        self.deliver_lock = threading.RLock()


_state = _State()


def open_runs() -> list[Run]:
    with _state.lock:
        return list(_state.open_runs.values())


def active_run() -> Run | None:
    with _state.lock:
        return _state.stack[-1] if _state.stack else None


def add(run: Run, *, activate: bool = True) -> None:
    _install()
    with _state.lock:
        _state.open_runs[run.id] = run
        if activate:
            _state.stack.append(run)
        if _state.writer is None or not _state.writer.is_alive():
            _state.writer = threading.Thread(target=_writer_loop, name="labledger-writer", daemon=True)
            _state.writer.start()


def remove(run: Run) -> None:
    with _state.lock:
        _state.open_runs.pop(run.id, None)
        if run in _state.stack:
            _state.stack.remove(run)


def wake_writer() -> None:
    _state.wake.set()


def _writer_loop() -> None:
    last_beat: dict[str, float] = {}
    while not _state.stopping:
        _state.wake.wait(flush_interval())
        _state.wake.clear()
        now = time.monotonic()
        for run in open_runs():
            try:
                with _state.deliver_lock:
                    delivered = run._deliver()
                    if delivered or now - last_beat.get(run.id, 0.0) >= HEARTBEAT_SECONDS:
                        if not delivered:
                            run.store.heartbeat(run.id)
                        last_beat[run.id] = now
            except Exception as e:  # keep the writer alive whatever happens
                run._report_background_error(e)


@contextmanager
def writer_paused() -> Iterator[None]:
    """Keep the background writer from delivering until the block ends (bulk transactions)."""
    with _state.deliver_lock:
        yield


def _install() -> None:
    if _state.installed:
        return
    with _state.lock:
        if _state.installed:
            return
        _state.installed = True
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
    _state.wake.set()
    status: str
    error: str | None
    if _state.terminated:
        status, error = "killed", "terminated by SIGTERM"
    else:
        status, error = outcome(_state.uncaught or getattr(sys, "last_value", None))
    for run in reversed(open_runs()):
        try:
            run.end(status=status, error=error)
        except Exception as e:  # pragma: no cover - exit must go on
            print(f"labledger: could not end run {run.id} at exit: {e}", file=sys.stderr)
    if "labledger.lineage" in sys.modules:  # let start-up captures of short runs finish
        sys.modules["labledger.lineage"].capture_worker.wait(None, timeout=10)


def _after_fork_in_child() -> None:
    with _state.lock:
        runs = list(_state.open_runs.values())
        _state.open_runs.clear()
        _state.stack.clear()
        _state.writer = None
        _state.wake = threading.Event()
    for run in runs:
        run._detach()
