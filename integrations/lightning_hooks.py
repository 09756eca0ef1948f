"""PyTorch Lightning's plugin hooks, loaded through the ``labledger`` entry point (never imports it)."""

from __future__ import annotations

from labledger import hookimpl
from labledger.integrations.base import imported_versions

#: How the Lightning integration's params count in the completeness report. The module's and
#: datamodule's hyperparameters are logged under their own names (labledger's built-in rules apply).
PARAM_ROLES = {
    "trainer/": "configuration",  # max_epochs, precision, accumulate_grad_batches, devices, ...
    "callbacks/": "configuration",  # EarlyStopping and ModelCheckpoint settings
    "resumed_from/": "configuration",  # the checkpoint a fit resumed from
    "cli/": "configuration",  # a LightningCLI config: trainer, data, seed, ckpt_path ...
    "cli/model/": "hyperparameter",  # ... except the model, optimizer and scheduler it builds
    "cli/optimizer/": "hyperparameter",
    "cli/lr_scheduler/": "hyperparameter",
}


@hookimpl
def labledger_collect_environment() -> dict[str, str | None] | None:
    return imported_versions("lightning", "pytorch_lightning", "torch")


@hookimpl
def labledger_param_roles() -> dict[str, str] | None:
    """Trainer, callbacks, resume source and CLI config configure; the CLI's model and optimizer are
    hyperparameters (``fit/<n>/`` of a later fit follows labledger's built-in rules: configuration)."""
    return dict(PARAM_ROLES)
