"""Reporting what goes wrong in plugins and tracking: each problem once, never breaking training.

>>> from labledger.hooks.reporting import warn_once
>>> warn_once(("disk", "/tmp/ledger"), "the store is full; training goes on")  # doctest: +SKIP
True
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Hashable

from labledger.errors import PluginError

__all__ = ["LabledgerWarning", "PluginWarning", "forget_warnings", "report_error", "warn_once"]


class LabledgerWarning(UserWarning):
    """Base class of labledger's warnings."""


class PluginWarning(LabledgerWarning):
    """A plugin raised inside a hook; labledger went on without it."""


_warned: set[Hashable] = set()
_lock = threading.Lock()


def warn_once(key: Hashable, message: str, category: type[Warning] = LabledgerWarning) -> bool:
    """Warn once per ``key`` (tracking failures, plugin errors); returns whether it warned.

    When warnings are turned into errors (``-W error``, pytest), the message goes to
    standard error instead: reporting a tracking problem must never break training.
    """
    with _lock:
        if key in _warned:
            return False
        _warned.add(key)
    try:
        warnings.warn(message, category, stacklevel=3)
    except Warning:
        print(f"labledger: {message}", file=sys.stderr)
    return True


def forget_warnings(prefix: str | None = None) -> None:
    """Let :func:`warn_once` warn again (for keys that are tuples starting with ``prefix``, or all)."""
    with _lock:
        if prefix is None:
            _warned.clear()
        else:
            for key in [k for k in _warned if isinstance(k, tuple) and k and k[0] == prefix]:
                _warned.discard(key)


def report_error(plugin_name: str, hook: str, error: BaseException) -> PluginError:
    """Report a plugin's failure once per (plugin, hook) as a :class:`PluginWarning`; returns it as an error.

    >>> report_error("csv-mirror", "labledger_metrics_logged", OSError("disk full"))  # doctest: +SKIP
    PluginError("plugin 'csv-mirror' raised in hook labledger_metrics_logged: OSError: disk full. ...")
    """
    import traceback  # loaded by the first failure, not by every process

    err = PluginError(plugin_name, hook, error)
    detail = "".join(traceback.format_exception(error))
    warn_once(("plugin", plugin_name, hook), f"{err}\n{detail}", PluginWarning)
    return err
