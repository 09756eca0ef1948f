"""The ``labledger`` command: a thin shell over the library (click), one module per command family.

``main`` (the click group) loads lazily, so importing a command module does not build the CLI:

>>> from labledger.cli import main  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["main"]


def __getattr__(name: str) -> Any:
    if name == "main":
        from labledger.cli.app import main

        return main
    raise AttributeError(f"module 'labledger.cli' has no attribute {name!r}")
