"""The plugin manager: built-in plugins, entry-point plugins, and plugins registered in code.

Plugins are loaded the first time labledger needs them (not at import):
first the built-ins in :data:`DEFAULT_PLUGINS`, registered exactly like a
third-party plugin, then every entry point in the group ``labledger``.

Environment switches:

- ``LABLEDGER_DISABLE_PLUGINS=name,other`` blocks plugins by name (built-ins included;
  the built-in store ``labledger.store.sink`` only when another plugin serves the store).
- ``LABLEDGER_TRACE_PLUGINS=1`` prints every hook call to standard error (pluggy's tracing).

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

import atexit
import importlib
import threading
from typing import Any

import pluggy

from labledger import settings
from labledger.errors import PluginError, PluginRegistrationError, StoreWriteError
from labledger.hooks import calling
from labledger.hooks import specs as hookspecs
from labledger.hooks.bypass import ENTRY_POINT_GROUP
from labledger.hooks.calling import in_hook
from labledger.hooks.entry_points import distribution, entry_points
from labledger.hooks.reporting import (
    LabledgerWarning,
    PluginWarning,
    forget_warnings,
    report_error,
    warn_once,
)

__all__ = [
    "BUILT_IN",
    "DEFAULT_PLUGINS",
    "ENTRY_POINT",
    "ENTRY_POINT_GROUP",
    "IN_CODE",
    "LabledgerWarning",
    "LedgerPluginManager",
    "PluginWarning",
    "call_each",
    "call_first",
    "call_historic",
    "deliver",
    "forget_warnings",
    "get_plugin_manager",
    "hookimpl",
    "in_hook",
    "list_plugins",
    "notify",
    "register",
    "register_builtin",
    "report_error",
    "reset",
    "shutdown",
    "unregister",
    "warn_once",
]

#: Built-in plugins, registered through the same ``register`` as third parties: the SQLite store
#: (serves folders, keeps artifact bytes, writes every event), dataset fingerprints, export formats.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "labledger.store.sink",
    "labledger.store.postgres.plugin",
    "labledger.store.remote.plugin",
    "labledger.lineage.fingerprint",
    "labledger.analysis.export_formats",
)
#: Where a plugin came from, as :func:`list_plugins` reports it.
BUILT_IN, ENTRY_POINT, IN_CODE = "built-in", "entry point", "registered in code"

hookimpl = pluggy.HookimplMarker("labledger")


class LedgerPluginManager(pluggy.PluginManager):
    """pluggy's plugin manager, loading the entry-point plugins without ``importlib.metadata``
    (see :mod:`labledger.hooks.entry_points`); the distributions it reports are the same."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self._entry_point_dists: list[tuple[object, Any]] = []

    def load_setuptools_entrypoints(self, group: str, name: str | None = None) -> int:
        """Register every plugin of the entry-point group ``group`` (or only the one named ``name``)
        not already registered or blocked, as :meth:`pluggy.PluginManager.load_setuptools_entrypoints` does.

        :returns: the number of plugins loaded by this call.
        """
        count = 0
        for ep in entry_points(group):
            if (name is not None and ep.name != name) or self.has_plugin(ep.name) or self.is_blocked(ep.name):
                continue
            plugin = ep.load()
            self.register(plugin, name=ep.name)
            self._entry_point_dists.append((plugin, ep.dist))
            count += 1
        return count

    def list_plugin_distributions(self) -> list[tuple[object, Any]]:
        """``(plugin, importlib.metadata.Distribution)`` for every plugin loaded through an entry point."""
        return [(plugin, distribution(dist)) for plugin, dist in self._entry_point_dists]

    def list_plugin_distinfo(self) -> list[tuple[object, Any]]:
        """``(plugin, distribution)`` for every plugin loaded through an entry point; the distribution
        also answers ``project_name`` (as pluggy's ``DistFacade`` does)."""
        return [(plugin, _DistInfo(dist)) for plugin, dist in self.list_plugin_distributions()]


class _DistInfo:
    """A distribution that also answers ``project_name`` (pkg_resources' name for ``metadata["name"]``)."""

    __slots__ = ("_dist",)

    def __init__(self, dist: Any) -> None:
        self._dist = dist

    @property
    def project_name(self) -> str:
        return str(self._dist.metadata["name"])

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._dist, attr)


_pm: LedgerPluginManager | None = None
_pm_lock = threading.RLock()
_builtins: set[str] = set()
_shut_down: LedgerPluginManager | None = None
_exit_hook_installed = False


def _build() -> LedgerPluginManager:
    pm = LedgerPluginManager("labledger")
    pm.add_hookspecs(hookspecs)
    if settings.trace_plugins():
        calling.trace_to_stderr(pm)
    for name in filter(None, settings.disabled_plugins()):
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        _register_builtin(pm, module_name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


def _register_builtin(pm: pluggy.PluginManager, module_name: str) -> str | None:
    if pm.is_blocked(module_name) or pm.has_plugin(module_name):
        return None
    name = pm.register(importlib.import_module(module_name), name=module_name)
    if name is not None:
        _builtins.add(name)
    return name


def get_plugin_manager(fresh: bool = False) -> LedgerPluginManager:
    """The process-wide plugin manager, built on first use.

    :param fresh: build a new one (tests use this to start from the defaults).
    """
    global _pm, _exit_hook_installed
    with _pm_lock:
        if _pm is None or fresh:
            _forget()
            _pm = _build()
            if not _exit_hook_installed:  # registered before any run's exit handler, so it runs after them
                atexit.register(shutdown)
                _exit_hook_installed = True
        return _pm


def get_plugin_manager_if_built() -> LedgerPluginManager | None:
    """The process-wide plugin manager if it has been built, else ``None`` (nothing is built)."""
    return _pm


def _forget() -> None:
    if _pm is not None:
        calling.forget_tracer(_pm)
    _builtins.clear()
    forget_warnings("plugin")


def reset() -> None:
    """Forget the plugin manager; the next hook call rebuilds it from the defaults."""
    global _pm
    with _pm_lock:
        _forget()
        _pm = None


def register_builtin(module_name: str) -> str | None:
    """Register one of labledger's own modules as a built-in plugin (the CLI's command modules).

    :returns: the name it was registered under, or ``None`` when it is blocked or already registered.
    """
    with _pm_lock:
        return _register_builtin(get_plugin_manager(), module_name)


def register(plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module defined in user code.

    :param plugin: an object or module with ``@ll.hookimpl`` functions.
    :param name: a name to report it by (default: pluggy's generated name).
    :returns: the name it was registered under.
    :raises ValueError: the name is blocked by ``LABLEDGER_DISABLE_PLUGINS`` or already taken.
    :raises PluginRegistrationError: the plugin raised in a hook made for it at registration
        (``labledger_register_commands`` once the CLI is built); it is not registered.

    >>> import labledger as ll
    >>> class Echo:
    ...     @ll.hookimpl
    ...     def labledger_run_ended(self, run, status, error):
    ...         print(run.name, status)
    >>> name = ll.plugins.register(Echo(), name="echo")  # doctest: +SKIP
    """
    pm = get_plugin_manager()
    try:
        registered = pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError):
        raise
    except Exception as e:  # a historic hook replayed for the new plugin raised
        taken = pm.get_name(plugin)
        if taken is not None:
            pm.unregister(plugin)
        historic = [
            c.name for c in pm.hook.__dict__.values() if isinstance(c, pluggy.HookCaller) and c.is_historic()
        ]
        raise PluginRegistrationError(taken or name or repr(plugin), ", ".join(sorted(historic)), e) from e
    if registered is None:
        raise ValueError(f"plugin {name or plugin!r} is blocked (LABLEDGER_DISABLE_PLUGINS)")
    pm.check_pending()
    return registered


def unregister(plugin: object | None = None, name: str | None = None) -> None:
    """Remove a plugin registered with :func:`register` (by object or by name)."""
    get_plugin_manager().unregister(plugin=plugin, name=name)


def list_plugins() -> list[dict[str, Any]]:
    """Every registered plugin: its name, where it came from, its distribution, and the hooks it implements.

    ``source`` is ``"built-in"``, ``"entry point"`` or ``"registered in code"``;
    ``distribution`` and ``version`` name the installed distribution of an entry-point plugin
    (``None`` otherwise).

    >>> [p["name"] for p in list_plugins() if p["source"] == "built-in"]  # doctest: +SKIP
    ['labledger.store.sink', 'labledger.lineage.fingerprint', 'labledger.analysis.export_formats']
    """
    pm = get_plugin_manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        source = BUILT_IN if name in _builtins else ENTRY_POINT if dist is not None else IN_CODE
        out.append(
            {
                "name": name,
                "source": source,
                "distribution": dist.project_name if dist is not None else None,
                "version": dist.version if dist is not None else None,
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
            }
        )
    return out


def shutdown() -> list[PluginError]:
    """Call ``labledger_shutdown`` on every plugin, once per plugin manager.

    labledger calls it at interpreter exit, after every run has been ended and written;
    later calls do nothing. A process that never loaded its plugins calls nothing.

    :returns: the errors plugins raised.
    """
    global _shut_down
    with _pm_lock:
        pm = _pm
        if pm is None or pm is _shut_down:
            return []
        _shut_down = pm
    return notify("labledger_shutdown")


def notify(hook: str, **kwargs: Any) -> list[PluginError]:
    """Call an event hook on every plugin, each call isolated.

    A plugin that raises is reported once per hook (a :class:`PluginWarning`
    naming it) and the remaining plugins are still called.

    :returns: the errors raised by plugins during this call.
    """
    errors, _ = calling.deliver(get_plugin_manager(), hook, set(), kwargs)
    return errors


def deliver(
    hook: str, done: set[str], kwargs: dict[str, Any]
) -> tuple[list[PluginError], StoreWriteError | None]:
    """Call an event hook on every plugin not in ``done`` (see :func:`labledger.hooks.calling.deliver`)."""
    return calling.deliver(get_plugin_manager(), hook, done, kwargs)


def call_each(hook: str, **kwargs: Any) -> dict[str, Any]:
    """Call a hook on every plugin and collect the non-``None`` results by plugin name, in call order."""
    return calling.call_each(get_plugin_manager(), hook, **kwargs)


def call_first(hook: str, **kwargs: Any) -> Any:
    """Call a ``firstresult`` hook: the first non-``None`` answer wins; raising plugins are skipped."""
    return calling.call_first(get_plugin_manager(), hook, **kwargs)


def call_historic(hook: str, **kwargs: Any) -> list[PluginError]:
    """Call a ``historic`` hook on every plugin now and on every plugin registered later."""
    return calling.call_historic(get_plugin_manager(), hook, kwargs)
