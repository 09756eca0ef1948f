"""Keras' plugin hooks, loaded through the ``labledger`` entry point (never imports keras)."""

from __future__ import annotations

import os

from labledger import hookimpl
from labledger.integrations.base import imported_versions

#: How the Keras callback's params count in the completeness report.
PARAM_ROLES = {
    "optimizer/": "hyperparameter",  # the optimizer's class, learning rate (or schedule), betas, ...
    "model/config/": "hyperparameter",  # the architecture: layers, units, activations, dropout rates
    "compile/": "configuration",  # loss, metrics, steps_per_execution, jit_compile
    "fit/": "configuration",  # epochs, batch size, validation split, class weights, ...
    "callbacks/": "configuration",  # EarlyStopping, ReduceLROnPlateau, ModelCheckpoint settings
}


@hookimpl
def labledger_collect_environment() -> dict[str, str | None] | None:
    found = imported_versions("keras")
    if found is not None:
        found["backend"] = os.environ.get("KERAS_BACKEND")
    return found


@hookimpl
def labledger_param_roles() -> dict[str, str] | None:
    """Optimizer settings and architecture are hyperparameters; compile, fit and callbacks configure."""
    return dict(PARAM_ROLES)
