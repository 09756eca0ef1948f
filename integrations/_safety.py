"""Tracking errors never break training: :class:`safe` turns them into one warning per integration.

Part of :mod:`labledger.integrations.base`. With ``LABLEDGER_TESTING=1``
(:func:`labledger.settings.testing`) they raise instead, so that a test suite sees them.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from labledger import settings
from labledger.plugins import LabledgerWarning

__all__ = ["IntegrationWarning", "check_version", "report_failure", "reset_warnings", "safe"]

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
#: Integrations that have warned in this process (each warns once).
_warned: set[str] = set()


class IntegrationWarning(LabledgerWarning):
    """An integration could not record something and went on without it; or it meets a framework
    version it was not tested with.

    ``integration`` names the integration, ``what`` what it could not record (for a version
    warning: the framework and its version) and ``error`` the exception (``None`` for a version warning).

    >>> import warnings
    >>> warnings.filterwarnings("error", category=IntegrationWarning)  # doctest: +SKIP
    """

    def __init__(self, integration: str, what: str, error: BaseException | None, message: str) -> None:
        super().__init__(message)
        self.integration = integration
        self.what = what
        self.error = error


def _warn(warning: IntegrationWarning, key: str | None = None) -> bool:
    """Emit ``warning`` unless one with the same ``key`` (default: its integration) was emitted.

    Returns whether it warned. When warnings are turned into errors (``-W error``, pytest),
    the message goes to standard error instead: reporting must never break training.
    """
    with _lock:
        once = warning.integration if key is None else key
        if once in _warned:
            return False
        _warned.add(once)
    try:
        warnings.warn(warning, stacklevel=3)
    except Warning:
        print(f"labledger: {warning}", file=sys.stderr)
    return True


def reset_warnings(integration: str | None = None) -> None:
    """Let ``integration`` warn about its next tracking error again; without an argument, let every
    warning of every integration (version warnings included) be shown again.

    An integration switched on again (``autolog()``) calls it; test suites call it between tests.

    >>> reset_warnings("sklearn")
    """
    with _lock:
        if integration is None:
            _warned.clear()
        else:
            _warned.discard(integration)


def _message(integration: str, what: str, error: BaseException) -> str:
    return (
        f"labledger integration {integration!r} could not record {what} "
        f"({type(error).__name__}: {error}); training went on without it. Further tracking errors of "
        f"this integration are not reported in this process; set LABLEDGER_TESTING=1 to make them raise."
    )


def _note(error: BaseException, integration: str, what: str) -> None:
    error.add_note(
        f"labledger integration {integration!r} could not record {what}; this raised because "
        "LABLEDGER_TESTING is on (without it, a warning is shown and training goes on)."
    )


def report_failure(integration: str, what: str, error: Exception) -> None:
    """Report a tracking error the caller has caught: one :class:`IntegrationWarning` per integration.

    With ``LABLEDGER_TESTING=1`` it raises ``error`` instead (with a note saying what failed).

    >>> try:
    ...     run.log_metrics(values, step=step)               # doctest: +SKIP
    ... except Exception as error:
    ...     report_failure("torchloop", "the step's metrics", error)
    """
    if settings.testing():
        _note(error, integration, what)
        raise error
    _warn(IntegrationWarning(integration, what, error, _message(integration, what, error)))


class safe:
    """Run tracking code so that its failure never breaks the user's training.

    As a context manager or a decorator: an ``Exception`` raised inside — a store
    error, a full disk, a framework object that changed — becomes one
    :class:`IntegrationWarning` per integration and process, and the code after the
    block (or the caller of the function, which gets ``None``) goes on.
    ``KeyboardInterrupt`` and ``SystemExit`` pass. Keep the user's own code out of
    the block: its errors are theirs. With ``LABLEDGER_TESTING=1`` the error
    propagates (with a note saying what failed).

    :param integration: the integration's name, as users know it (``"keras"``, ``"ledger_torchloop"``).
    :param what: what the block records, completing "could not record …" (``"the model"``).

    >>> with safe("torchloop", "the step's metrics"):
    ...     run.log_metrics({"loss": loss}, step=step)     # doctest: +SKIP
    >>> @safe("torchloop", "the model")
    ... def store_model(run, model): ...
    """

    __slots__ = ("integration", "what")

    def __init__(self, integration: str, what: str) -> None:
        self.integration = integration
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if not isinstance(error, Exception):
            return False
        if settings.testing():
            _note(error, self.integration, self.what)
            return False
        message = _message(self.integration, self.what, error)
        _warn(IntegrationWarning(self.integration, self.what, error, message))
        return True

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T | None]:
        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T | None:
            with self:
                return fn(*args, **kwargs)
            return None

        return guarded


def _release(version: str) -> tuple[int, ...]:
    """The leading numbers of a version: ``"2.1.0rc1"`` → ``(2, 1, 0)``."""
    found = re.match(r"\d+(?:\.\d+)*", version.strip().lstrip("v"))
    return tuple(int(part) for part in found[0].split(".")) if found else ()


def check_version(
    integration: str, framework: str, installed: str | None, *, oldest: str, latest: str
) -> bool:
    """Warn once when the installed framework is outside the versions the integration was tested with.

    An integration that relies on a framework's internals calls it before it uses them.
    ``latest`` is compared by as many parts as it has: ``"3.2"`` accepts every 3.2.x. An
    unknown version (``None``) is not warned about. Returns whether the version is in range.

    >>> import torch                                                      # doctest: +SKIP
    >>> check_version("torchloop", "torch", torch.__version__, oldest="2.0", latest="2.13")  # doctest: +SKIP
    True
    """
    if installed is None:
        return True
    have, low, high = _release(installed), _release(oldest), _release(latest)
    if not have or (low <= have and have[: len(high)] <= high):
        return True
    below = ".".join(str(part) for part in (*high[:-1], high[-1] + 1)) if high else latest
    message = (
        f"labledger integration {integration!r} is tested with {framework} {oldest} to {latest}; "
        f"{installed} is installed. It relies on {framework} internals that may have changed: check what "
        f"the runs record, or install a tested version (pip install '{framework}>={oldest},<{below}')."
    )
    _warn(
        IntegrationWarning(integration, f"{framework} {installed}", None, message), f"{integration}:version"
    )
    return False
