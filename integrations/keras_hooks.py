"""Keras' plugin hooks, loaded through the ``labledger`` entry point (never imports keras)."""

from __future__ import annotations

import os
from typing import Any

from labledger.integrations._environment import imported_versions
from labledger.plugins import hookimpl


@hookimpl
def labledger_collect_environment() -> dict[str, Any] | None:
    found = imported_versions("keras")
    if found is not None:
        found["backend"] = os.environ.get("KERAS_BACKEND")
    return found
