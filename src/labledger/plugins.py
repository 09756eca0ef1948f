"""What a plugin author uses: the ``hookimpl`` marker, registering plugins in code, listing them,
and the warnings.

The hooks themselves are specified (and documented) in :mod:`labledger.hooks.specs`; the
manager that loads and calls plugins is :mod:`labledger.hooks.manager`. Hooks receive plain
records (:mod:`labledger.records`: :class:`~labledger.records.RunInfo`,
:class:`~labledger.records.MetricBatch`...) or the live run for logging events.
``labledger plugins`` lists what is loaded and where it came from.

>>> import labledger as ll
>>> class CountRuns:
...     started = 0
...
...     @ll.hookimpl
...     def labledger_run_started(self, run):
...         self.started += 1
>>> ll.plugins.register(CountRuns(), name="count-runs")  # doctest: +SKIP
"""

from __future__ import annotations

from labledger.hooks.manager import (
    ENTRY_POINT_GROUP,
    LabledgerWarning,
    PluginWarning,
    get_plugin_manager,
    hookimpl,
    list_plugins,
    register,
    unregister,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "LabledgerWarning",
    "PluginWarning",
    "get_plugin_manager",
    "hookimpl",
    "list_plugins",
    "register",
    "unregister",
]
