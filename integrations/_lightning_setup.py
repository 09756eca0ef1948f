"""What a Lightning trainer call is set up with: trainer, model, callbacks, CLI config, resume source.

Private to :mod:`labledger.integrations.lightning`. Each function reads the
framework's objects and returns plain values (params, file text); none logs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labledger.errors import LabledgerError
from labledger.integrations.base import plain, qualified_name

#: Keys jsonargparse and LightningCLI add to hparams and configs: how objects were built, not settings.
INTERNAL_KEYS = frozenset({"_class_path", "_instantiator", "__default_config__", "__path__"})

_EARLY_STOPPING = (
    "monitor",
    "mode",
    "patience",
    "min_delta",
    "strict",
    "check_finite",
    "stopping_threshold",
    "divergence_threshold",
)
_MODEL_CHECKPOINT = (
    "monitor",
    "mode",
    "save_top_k",
    "save_last",
    "save_weights_only",
    "every_n_epochs",
    "every_n_train_steps",
    "train_time_interval",
    "filename",
    "dirpath",
)
_TRAINER = (
    "max_epochs",
    "min_epochs",
    "max_steps",
    "min_steps",
    "accumulate_grad_batches",
    "limit_train_batches",
    "limit_val_batches",
    "limit_test_batches",
    "val_check_interval",
    "check_val_every_n_epoch",
    "log_every_n_steps",
    "num_nodes",
    "world_size",
)


def without_internals(value: Any) -> Any:
    """``value`` with namespaces as dicts and LightningCLI's internal keys left out, at any depth."""
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, Mapping):
        return {k: without_internals(v) for k, v in value.items() if k not in INTERNAL_KEYS}
    if isinstance(value, list | tuple):
        return [without_internals(v) for v in value]
    return value


def flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts flattened with ``/``, as :meth:`labledger.Run.log_params` stores them."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def trainer_params(trainer: Any, module: Any) -> dict[str, Any]:
    """The trainer's configuration, the seed set by ``seed_everything`` and the model's class and size."""
    strategy = getattr(trainer, "strategy", None)
    settings: dict[str, Any] = {name: plain(getattr(trainer, name, None)) for name in _TRAINER}
    settings.update(
        precision=plain(getattr(trainer, "precision", None)),
        gradient_clip_val=plain(trainer.gradient_clip_val),
        gradient_clip_algorithm=plain(trainer.gradient_clip_algorithm),
        strategy=type(strategy).__name__ if strategy is not None else None,
        accelerator=type(trainer.accelerator).__name__,
        devices=trainer.num_devices,
    )
    params: dict[str, Any] = {"trainer": settings}
    seed = os.environ.get("PL_GLOBAL_SEED")
    if seed is not None:
        params["seed"] = int(seed) if seed.lstrip("-").isdigit() else seed
    if module is not None:
        weights = list(module.parameters())
        params["model"] = {
            "class": qualified_name(module),
            "params": {
                "total": sum(p.numel() for p in weights),
                "trainable": sum(p.numel() for p in weights if p.requires_grad),
            },
        }
    return params


def callback_params(trainer: Any) -> dict[str, Any]:
    """The settings of the trainer's ``EarlyStopping`` and ``ModelCheckpoint`` callbacks (``callbacks/``)."""
    out: dict[str, Any] = {}
    groups = (
        (getattr(trainer, "early_stopping_callbacks", []), "EarlyStopping", _EARLY_STOPPING),
        (getattr(trainer, "checkpoint_callbacks", []), "ModelCheckpoint", _MODEL_CHECKPOINT),
    )
    for callbacks, kind, names in groups:
        for i, callback in enumerate(callbacks):
            if not all(hasattr(callback, name) for name in names[:2]):
                continue  # another Checkpoint subclass
            settings = {name: plain(getattr(callback, name, None)) for name in names}
            if kind == "EarlyStopping":
                min_delta = settings["min_delta"]
                if isinstance(min_delta, int | float):
                    settings["min_delta"] = abs(min_delta)  # stored with the mode's sign
                settings["check_on_train_epoch_end"] = getattr(callback, "_check_on_train_epoch_end", None)
            else:
                settings["save_on_train_epoch_end"] = getattr(callback, "_save_on_train_epoch_end", None)
            if type(callback).__name__ != kind:
                settings["class"] = qualified_name(callback)
            out[kind if i == 0 else f"{kind}_{i + 1}"] = settings
    return {"callbacks": out} if out else {}


def cli_config(trainer: Any, folder: str | None = None) -> tuple[dict[str, Any], str, str | None] | None:
    """The LightningCLI config when a ``SaveConfigCallback`` runs: ``(values, file name, path)``.

    ``path`` is the file the callback wrote into ``folder`` during this call's setup, else ``None``
    (the config is then dumped with the CLI's parser by :func:`cli_text`).
    """
    for callback in getattr(trainer, "callbacks", []):
        if not any(k.__name__ == "SaveConfigCallback" for k in type(callback).__mro__):
            continue
        config = getattr(callback, "config", None)
        if config is None or getattr(callback, "parser", None) is None:
            return None
        values = without_internals(config.as_dict() if hasattr(config, "as_dict") else vars(config))
        values.pop("config", None)  # the --config file paths, not settings
        name = os.path.basename(getattr(callback, "config_filename", None) or "config.yaml")
        path = os.path.join(folder, name) if folder is not None else None
        written = getattr(callback, "save_to_log_dir", False) and getattr(callback, "already_saved", False)
        return values, name, path if written and path is not None and os.path.isfile(path) else None
    return None


def cli_text(trainer: Any) -> str:
    """The LightningCLI config as the ``SaveConfigCallback`` would write it."""
    for callback in trainer.callbacks:
        if any(k.__name__ == "SaveConfigCallback" for k in type(callback).__mro__):
            return str(callback.parser.dump(callback.config, skip_none=False))
    return ""


def checkpoint_origin(store: Any, path: Any) -> dict[str, Any]:
    """Where a checkpoint resumed from comes from: its path and SHA-256, and the run and artifact
    that stored identical bytes when ``store`` holds one (of the same file name, else the earliest)."""
    info: dict[str, Any] = {"checkpoint": os.fspath(path)}
    source = Path(path)
    if not source.is_file():
        return info
    digest = hashlib.sha256()
    with open(source, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    info["sha256"] = sha = digest.hexdigest()
    if store is None:
        return info
    try:  # identical bytes under several names: the file's own name first
        found = store.artifact_by_content(sha, source.name)
    except LabledgerError:  # a store that cannot be read here: the path and digest still say it
        return info
    if found is not None:
        info["run"], info["artifact"] = found
    return info


_EPOCH_STEP = re.compile(r"epoch=(\d+).*?step=(\d+)")


def epoch_and_step(path: str) -> tuple[int | None, int | None]:
    """The epoch and step in a checkpoint file name of Lightning's default pattern, else ``None``."""
    found = _EPOCH_STEP.search(Path(path).name)
    return (int(found[1]), int(found[2])) if found else (None, None)
