"""PyTorch Lightning's plugin hooks, loaded through the ``labledger`` entry point (never imports it)."""

from __future__ import annotations

from typing import Any

from labledger.integrations._environment import imported_versions
from labledger.plugins import hookimpl


@hookimpl
def labledger_collect_environment() -> dict[str, Any] | None:
    return imported_versions("lightning", "pytorch_lightning", "torch")
