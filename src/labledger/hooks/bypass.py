"""Whether a reader may open a local store without building the plugin manager.

Building the plugin manager (importing pluggy, registering the built-ins and
every entry point) is the largest part of a process's first listing or history
read. Readers call only ``labledger_open_store`` and ``labledger_artifact_store``;
when the only plugins in place are labledger's own — no manager built yet (so
nothing was registered at run time), no plugin disabled or traced, and every
entry point of the group is one of labledger's integrations, none of which
serves a store — the built-in answer is known without asking, and a local
folder is opened directly. Any other plugin in place, and the manager answers.

>>> only_builtin_plugins()  # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache

from labledger import settings
from labledger.hooks.entry_points import entry_points

__all__ = ["BUILTIN_ENTRY_POINTS", "ENTRY_POINT_GROUP", "only_builtin_plugins"]

#: The entry-point group plugins register under.
ENTRY_POINT_GROUP = "labledger"
#: labledger's own entry points (its integrations' hooks); none implements a store hook.
BUILTIN_ENTRY_POINTS = frozenset(
    f"labledger.integrations.{name}_hooks" for name in ("sklearn", "xgboost", "lightning", "keras")
)


def only_builtin_plugins() -> bool:
    """Whether nothing but labledger's own plugins can answer a hook in this process right now."""
    manager = sys.modules.get("labledger.hooks.manager")
    if manager is not None and manager.get_plugin_manager_if_built() is not None:
        return False
    try:
        if any(settings.disabled_plugins()) or settings.trace_plugins():
            return False
    except Exception:  # a bad setting: the manager's build reports it
        return False
    return _builtin_entry_points(_path_state())


def _path_state() -> tuple[tuple[str, int], ...]:
    """``sys.path`` with each folder's modification time: installing a distribution changes it."""
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return tuple(state)


@lru_cache(maxsize=8)
def _builtin_entry_points(path_state: tuple[tuple[str, int], ...]) -> bool:
    return all(ep.value in BUILTIN_ENTRY_POINTS for ep in entry_points(ENTRY_POINT_GROUP))
