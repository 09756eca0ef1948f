"""Shared by the integrations' hook modules: versions of frameworks the program imported."""

from __future__ import annotations

import sys
from typing import Any


def imported_versions(*modules: str) -> dict[str, Any] | None:
    """``{module: version}`` for those of ``modules`` already imported, else ``None``.

    Never imports a framework: a hook module must stay light.
    """
    found = {name: getattr(sys.modules[name], "__version__", None) for name in modules if name in sys.modules}
    return found or None
