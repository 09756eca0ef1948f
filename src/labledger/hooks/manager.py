"""The plugin manager: built-in plugins, entry-point plugins, and plugins registered in code.

Plugins are loaded the first time labledger needs them (not at import):
first the built-ins in :data:`DEFAULT_PLUGINS`, registered exactly like a
third-party plugin, then every entry point in the group ``labledger``.

Environment switches:

- ``LABLEDGER_DISABLE_PLUGINS=name,other`` blocks plugins by name (built-ins included).
- ``LABLEDGER_TRACE_PLUGINS=1`` prints every hook call to standard error.

Example::

    import labledger as ll

    class CountRuns:
        started = 0

        @ll.hookimpl
        def labledger_run_started(self, run):
            self.started += 1

    counter = CountRuns()
    ll.plugins.register(counter, name="count-runs")
"""

from __future__ import annotations

import importlib
import sys
import threading
import traceback
import warnings
from collections.abc import Hashable
from typing import Any

import pluggy

from labledger import settings
from labledger.errors import PluginError, StoreWriteError
from labledger.hooks import specs as hookspecs

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LabledgerWarning",
    "PluginWarning",
    "call_each",
    "call_first",
    "deliver",
    "get_plugin_manager",
    "hookimpl",
    "in_hook",
    "list_plugins",
    "notify",
    "register",
    "report_error",
    "reset",
    "unregister",
    "warn_once",
]

ENTRY_POINT_GROUP = "labledger"
#: Built-in plugins, registered through the same ``register`` as third parties.
DEFAULT_PLUGINS: tuple[str, ...] = ("labledger.store.sink", "labledger.lineage.fingerprint")

hookimpl = pluggy.HookimplMarker("labledger")


class LabledgerWarning(UserWarning):
    """Base class of labledger's warnings."""


class PluginWarning(LabledgerWarning):
    """A plugin raised inside a hook; labledger went on without it."""


_pm: pluggy.PluginManager | None = None
_pm_lock = threading.RLock()


def _build() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("labledger")
    pm.add_hookspecs(hookspecs)
    blocked = settings.disabled_plugins()
    for name in filter(None, blocked):
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


def get_plugin_manager(fresh: bool = False) -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use.

    :param fresh: build a new one (tests use this to start from the defaults).
    """
    global _pm
    with _pm_lock:
        if _pm is None or fresh:
            _pm = _build()
            forget_warnings("plugin")
        return _pm


def reset() -> None:
    """Forget the plugin manager; the next hook call rebuilds it from the defaults."""
    global _pm
    with _pm_lock:
        _pm = None
        forget_warnings("plugin")


def register(plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module defined in user code.

    :param plugin: an object or module with ``@ll.hookimpl`` functions.
    :param name: a name to report it by (default: pluggy's generated name).
    :returns: the name it was registered under.

    >>> import labledger as ll
    >>> class Echo:
    ...     @ll.hookimpl
    ...     def labledger_run_ended(self, run, status, error):
    ...         print(run.name, status)
    >>> name = ll.plugins.register(Echo(), name="echo")  # doctest: +SKIP
    """
    pm = get_plugin_manager()
    registered = pm.register(plugin, name=name)
    if registered is None:
        raise ValueError(f"plugin {name or plugin!r} is blocked (LABLEDGER_DISABLE_PLUGINS)")
    pm.check_pending()
    return registered


def unregister(plugin: object | None = None, name: str | None = None) -> None:
    """Remove a plugin registered with :func:`register` (by object or by name)."""
    get_plugin_manager().unregister(plugin=plugin, name=name)


def list_plugins() -> list[dict[str, Any]]:
    """Every registered plugin with the hooks it implements."""
    pm = get_plugin_manager()
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        out.append({"name": name, "hooks": hooks})
    return out


def _trace(hook: str, plugin_name: str) -> None:
    if settings.trace_plugins():
        print(f"labledger: {hook} -> {plugin_name}", file=sys.stderr)


_warned: set[Hashable] = set()


def warn_once(key: Hashable, message: str, category: type[Warning] = LabledgerWarning) -> bool:
    """Warn once per ``key`` (tracking failures, plugin errors); returns whether it warned.

    When warnings are turned into errors (``-W error``, pytest), the message goes to
    standard error instead: reporting a tracking problem must never break training.
    """
    with _pm_lock:
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
    with _pm_lock:
        if prefix is None:
            _warned.clear()
        else:
            for key in [k for k in _warned if isinstance(k, tuple) and k and k[0] == prefix]:
                _warned.discard(key)


def report_error(plugin_name: str, hook: str, error: BaseException) -> PluginError:
    """Report a plugin's failure once per (plugin, hook) as a :class:`PluginWarning`."""
    return _report(plugin_name, hook, error)


def _report(plugin_name: str, hook: str, error: BaseException) -> PluginError:
    err = PluginError(plugin_name, hook, error)
    detail = "".join(traceback.format_exception(error))
    warn_once(("plugin", plugin_name, hook), f"{err}\n{detail}", PluginWarning)
    return err


def _impls(hook: str) -> list[pluggy.HookImpl]:
    caller = getattr(get_plugin_manager().hook, hook)
    # pluggy calls the last registered first; tryfirst/trylast are already ordered.
    # Event hooks are plain calls: wrappers have nothing to wrap here.
    return [i for i in reversed(caller.get_hookimpls()) if not (i.wrapper or i.hookwrapper)]


def notify(hook: str, **kwargs: Any) -> list[PluginError]:
    """Call an event hook on every plugin, each call isolated.

    A plugin that raises is reported once per hook (a :class:`PluginWarning`
    naming it) and the remaining plugins are still called.

    :returns: the errors raised by plugins during this call.
    """
    errors, _ = deliver(hook, set(), kwargs)
    return errors


_hook_depth = threading.local()


def in_hook() -> bool:
    """Whether this thread is inside a plugin's event hook (calls made there must not wait)."""
    return bool(getattr(_hook_depth, "n", 0))


def deliver(
    hook: str, done: set[str], kwargs: dict[str, Any]
) -> tuple[list[PluginError], StoreWriteError | None]:
    """Call an event hook on every plugin not in ``done``, adding each one that took it.

    A plugin that raises is reported once per hook and counts as done (it is not
    called again with the same event). A sink that raises
    :class:`~labledger.errors.StoreWriteError` has *not* taken the event: it stays
    out of ``done`` so that a later delivery retries it, and the error is returned.

    :returns: the errors plugins raised, and the store write error if there was one.
    """
    errors: list[PluginError] = []
    refused: StoreWriteError | None = None
    _hook_depth.n = getattr(_hook_depth, "n", 0) + 1
    try:
        for impl in _impls(hook):
            name = impl.plugin_name
            if name in done:
                continue
            _trace(hook, name)
            try:
                impl.function(*[kwargs[a] for a in impl.argnames])
            except StoreWriteError as e:
                refused = refused or e
                continue
            except Exception as e:  # a plugin must never break logging
                errors.append(_report(name, hook, e))
            done.add(name)
    finally:
        _hook_depth.n -= 1
    return errors, refused


def call_each(hook: str, **kwargs: Any) -> dict[str, Any]:
    """Call a hook on every plugin and collect the non-``None`` results by plugin name."""
    results: dict[str, Any] = {}
    for impl in _impls(hook):
        _trace(hook, impl.plugin_name)
        try:
            result = impl.function(*[kwargs[a] for a in impl.argnames])
        except Exception as e:
            _report(impl.plugin_name, hook, e)
            continue
        if result is not None:
            results[impl.plugin_name] = result
    return results


def call_first(hook: str, **kwargs: Any) -> Any:
    """Call a ``firstresult`` hook: the first non-``None`` answer wins; raising plugins are skipped."""
    for impl in _impls(hook):
        _trace(hook, impl.plugin_name)
        try:
            result = impl.function(*[kwargs[a] for a in impl.argnames])
        except Exception as e:
            _report(impl.plugin_name, hook, e)
            continue
        if result is not None:
            return result
    return None
