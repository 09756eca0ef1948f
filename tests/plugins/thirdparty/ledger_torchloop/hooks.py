"""ledger_torchloop's labledger hooks, registered under the ``labledger`` entry-point group.

Light: it imports neither torch nor the integration itself.
"""

from __future__ import annotations

import labledger as ll
from labledger.integrations.base import imported_versions

#: How the integration's params count in the completeness report.
PARAM_ROLES = {"optimizer/": "hyperparameter", "model/parameters": "configuration"}


@ll.hookimpl
def labledger_collect_environment() -> dict[str, str | None] | None:
    """The version of torch, when the program imported it."""
    return imported_versions("torch")


@ll.hookimpl
def labledger_param_roles() -> dict[str, str] | None:
    """The optimizer's settings are hyperparameters."""
    return dict(PARAM_ROLES)
