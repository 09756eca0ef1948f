"""Is a run complete? The nine parts of an experiment, and the policy that enforces them.

The parts: dataset version, feature pipeline version, model type,
hyperparameters, training configuration, evaluation metrics, random seeds,
artifacts, notes/hypothesis.

Policy (``LABLEDGER_COMPLETENESS`` or ``completeness`` under
``[tool.labledger]`` in the nearest ``pyproject.toml``):

- ``warn`` (default): one warning at run start when there is no hypothesis,
  and one at the end listing what is missing;
- ``strict``: starting a run without a hypothesis raises, and so does ending
  one without a dataset version (the run is recorded as ``failed``);
- ``off``: no checks.

Child runs (e.g. search candidates) are not checked: their parent is.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from labledger import settings
from labledger.errors import LabledgerError
from labledger.plugins import LabledgerWarning

__all__ = ["PARTS", "CompletenessError", "CompletenessReport", "CompletenessWarning", "policy"]

PARTS = (
    "dataset version",
    "feature pipeline version",
    "model type",
    "hyperparameters",
    "training configuration",
    "evaluation metrics",
    "random seeds",
    "artifacts",
    "notes/hypothesis",
)
POLICIES = ("warn", "strict", "off")
#: Param prefixes and words that count as training configuration.
CONFIG_PREFIXES = ("config/", "trainer/", "fit/", "cv/", "training/", "compile/", "optimizer/")
CONFIG_WORDS = (
    "epoch",
    "batch",
    "n_splits",
    "max_iter",
    "num_boost_round",
    "n_estimators",
    "early_stopping",
    "learning_rate",
    "lr",
    "precision",
    "devices",
    "strategy",
)


class CompletenessWarning(LabledgerWarning):
    """A run lacks parts of what makes an experiment reproducible."""


class CompletenessError(LabledgerError):
    """The ``strict`` completeness policy refused a run."""


@dataclass
class CompletenessReport:
    """Which of the nine parts a run has: ``parts[name] = (present, detail)``."""

    parts: dict[str, tuple[bool, str]] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [p for p in PARTS if not self.parts.get(p, (False, ""))[0]]

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def score(self) -> str:
        return f"{len(PARTS) - len(self.missing)}/{len(PARTS)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "score": self.score,
            "missing": self.missing,
            "parts": {p: {"present": ok, "detail": d} for p, (ok, d) in self.parts.items()},
        }


def _is_config(key: str) -> bool:
    k = key.lower()
    return k.startswith(CONFIG_PREFIXES) or any(w in k.replace("/", "_").split("_") for w in CONFIG_WORDS)


def assess(
    *,
    params: dict[str, Any],
    datasets: list[dict[str, Any]],
    pipelines: list[dict[str, Any]],
    metric_keys: list[str],
    fold_keys: list[str],
    artifacts: list[dict[str, Any]],
    seeds: dict[str, Any] | None,
    hypothesis: str | None,
    notes: int,
) -> CompletenessReport:
    """Build the report from what a run recorded."""
    r = CompletenessReport()
    fps = [d for d in datasets if d.get("fingerprint")]
    r.parts["dataset version"] = (
        bool(fps),
        ", ".join(f"{d['name']} ({d['role']})" for d in fps) or "log_dataset(name, data)",
    )
    r.parts["feature pipeline version"] = (
        bool(pipelines),
        ", ".join(p["version"][:12] for p in pipelines) or "log_pipeline(estimator)",
    )
    model_classes = [a["metadata"].get("class") for a in artifacts if a.get("metadata", {}).get("class")]
    model_type = params.get("model/class") or (model_classes[0] if model_classes else None)
    r.parts["model type"] = (bool(model_type), str(model_type or "log_model(model)"))
    config = [k for k in params if _is_config(k)]
    hyper = [k for k in params if k not in config and not k.startswith(("model/", "scoring/"))]
    r.parts["hyperparameters"] = (bool(hyper), f"{len(hyper)} params" if hyper else "log_params({...})")
    r.parts["training configuration"] = (
        bool(config),
        ", ".join(config[:4]) or "log_params({'config': {...}})",
    )
    evals = metric_keys + [f"{k} (folds)" for k in fold_keys]
    r.parts["evaluation metrics"] = (bool(evals), ", ".join(evals[:4]) or "log_metrics / log_folds")
    seed_info = seeds or {}
    has_seed = "seed" in seed_info or bool(seed_info.get("observed"))
    detail = (
        f"seed {seed_info['seed']}"
        if "seed" in seed_info
        else (
            ", ".join(f"{k}={v}" for k, v in (seed_info.get("observed") or {}).items())
            or "seed_everything(seed)"
        )
    )
    r.parts["random seeds"] = (has_seed, detail)
    user_artifacts = [a for a in artifacts if a.get("kind") != "code"]
    r.parts["artifacts"] = (
        bool(user_artifacts),
        f"{len(user_artifacts)} artifacts" if user_artifacts else "log_artifact(path)",
    )
    r.parts["notes/hypothesis"] = (
        bool(hypothesis) or notes > 0,
        (hypothesis or f"{notes} notes") if (hypothesis or notes) else "start_run(..., hypothesis=...)",
    )
    return r


@lru_cache(maxsize=8)
def _pyproject_policy(cwd: str) -> str | None:
    import tomllib

    for folder in [Path(cwd), *Path(cwd).parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text())
            except (OSError, tomllib.TOMLDecodeError):
                return None
            value = data.get("tool", {}).get("labledger", {}).get("completeness")
            return str(value) if value is not None else None
    return None


def policy() -> str:
    """The completeness policy in force: ``warn``, ``strict`` or ``off``."""
    value = settings.completeness() or _pyproject_policy(os.getcwd()) or "warn"
    value = value.strip().lower()
    if value not in POLICIES:
        print(
            f"labledger: unknown completeness policy {value!r}; using 'warn' "
            f"(choose one of {', '.join(POLICIES)})",
            file=sys.stderr,
        )
        return "warn"
    return value
