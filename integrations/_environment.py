"""Versions of the frameworks a program has imported, for an integration's environment hook.

Part of :mod:`labledger.integrations.base`.
"""

from __future__ import annotations

import sys

__all__ = ["imported_versions"]


def imported_versions(*modules: str) -> dict[str, str | None] | None:
    """``{module: version}`` for those of ``modules`` already imported, else ``None``.

    Never imports a framework: a hook module must stay light. What a
    ``labledger_collect_environment`` hook returns.

    >>> @ll.hookimpl                                             # doctest: +SKIP
    ... def labledger_collect_environment():
    ...     return imported_versions("torch")
    """
    found = {name: _version(sys.modules[name]) for name in modules if name in sys.modules}
    return found or None


def _version(module: object) -> str | None:
    version = getattr(module, "__version__", None)
    return None if version is None else str(version)
