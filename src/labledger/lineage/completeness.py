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

Param roles: whether a param counts as a hyperparameter or as training
configuration. Plugins declare prefixes with the ``labledger_param_roles`` hook,
a project with ``[tool.labledger.param_roles]`` in ``pyproject.toml`` (which
wins over plugins); the longest matching prefix decides, and keys no prefix
matches follow the built-in rules (:data:`CONFIG_PREFIXES`, :data:`CONFIG_WORDS`)::

    [tool.labledger.param_roles]
    "optimizer/" = "hyperparameter"
    "data/" = "configuration"

>>> param_role("optimizer/learning_rate", {"optimizer/": "hyperparameter"})
'hyperparameter'
>>> param_role("trainer/max_epochs", {})
'configuration'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from labledger import settings
from labledger.errors import LabledgerError
from labledger.hooks import manager as plugins
from labledger.hooks.manager import LabledgerWarning

__all__ = [
    "PARTS",
    "ROLES",
    "CompletenessError",
    "CompletenessReport",
    "CompletenessWarning",
    "ParamRoleError",
    "param_role",
    "param_roles",
    "policy",
]

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
#: What a declared param prefix can count as.
ROLES = ("hyperparameter", "configuration")
#: Built-in rules for keys no declared prefix matches: prefixes and words that count as
#: training configuration (matched case-insensitively; ``model/``, ``scoring/`` and ``direction/``
#: count as neither).
CONFIG_PREFIXES = (
    "config/",
    "trainer/",
    "fit/",
    "cv/",
    "training/",
    "compile/",
    "optimizer/",
)
CONFIG_WORDS = (
    "epoch",
    "epochs",
    "batch",
    "n_splits",
    "max_iter",
    "num_boost_round",
    "early_stopping",
    "lr",
    "precision",
    "devices",
    "strategy",
)


class CompletenessWarning(LabledgerWarning):
    """A run lacks parts of what makes an experiment reproducible."""


class CompletenessError(LabledgerError):
    """The ``strict`` completeness policy refused a run."""


class ParamRoleError(LabledgerError, ValueError):
    """A param-role declaration is not a mapping of prefixes to ``hyperparameter``/``configuration``."""


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
    # whole words, multi-word ones too: "max_iter" matches "sgd/max_iter", not "max_iterations"
    words = "_" + k.replace("/", "_").replace(".", "_").replace("-", "_") + "_"
    return k.startswith(CONFIG_PREFIXES) or any(f"_{w}_" in words for w in CONFIG_WORDS)


def check_roles(source: str, declared: Any) -> dict[str, str]:
    """Validate a param-role declaration; ``source`` names who made it (for the message).

    :raises ParamRoleError: it is not a mapping of non-empty prefixes to one of :data:`ROLES`.
    """
    example = "{'optimizer/': 'hyperparameter', 'trainer/': 'configuration'}"
    if not isinstance(declared, Mapping):
        raise ParamRoleError(
            f"{source} declares param roles as a {type(declared).__name__}; give a mapping such as {example}"
        )
    roles: dict[str, str] = {}
    for prefix, role in declared.items():
        if not isinstance(prefix, str) or not prefix:
            raise ParamRoleError(
                f"{source} declares a param role for {prefix!r}; a prefix is a non-empty string "
                f"such as 'optimizer/'"
            )
        if role not in ROLES:
            raise ParamRoleError(
                f"{source} declares {prefix!r} as {role!r}; choose 'hyperparameter' or 'configuration'"
            )
        roles[prefix] = role
    return roles


def param_roles() -> dict[str, str]:
    """The declared param roles in force: every plugin's ``labledger_param_roles``, then the
    project's ``[tool.labledger.param_roles]`` (which wins). Between plugins declaring one
    prefix differently, the one pluggy calls first (registered last) wins; an invalid
    declaration is reported once and ignored.

    >>> param_roles()  # doctest: +SKIP
    {'optimizer/': 'hyperparameter', 'fit/': 'configuration'}
    """
    roles: dict[str, str] = {}
    for name, declared in plugins.call_each("labledger_param_roles").items():
        try:
            checked = check_roles(f"plugin {name!r}", declared)
        except ParamRoleError as e:
            plugins.report_error(name, "labledger_param_roles", e)
            continue
        for prefix, role in checked.items():
            roles.setdefault(prefix, role)
    declared, found = _pyproject_value("param_roles")
    if declared is not None:
        try:
            roles.update(check_roles(f"{found} [tool.labledger.param_roles]", declared))
        except ParamRoleError as e:
            plugins.warn_once(("param-roles", str(found), str(e)), f"{e}; ignoring it", CompletenessWarning)
    return roles


def param_role(key: str, roles: Mapping[str, str] | None = None) -> str | None:
    """How a param counts: ``hyperparameter``, ``configuration`` or ``None`` (``model/``, ``scoring/``).

    The longest prefix in ``roles`` (default: :func:`param_roles`) that ``key`` starts with
    decides; without one, the built-in rules do.

    >>> param_role("lgb/num_leaves", {"lgb/": "hyperparameter"})
    'hyperparameter'
    """
    table = param_roles() if roles is None else roles
    best = max((p for p in table if key.startswith(p)), key=len, default=None)
    if best is not None:
        return table[best]
    if key.startswith(("model/", "scoring/", "direction/")):
        return None
    return "configuration" if _is_config(key) else "hyperparameter"


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
    origin: str | None = None,
    roles: Mapping[str, str] | None = None,
) -> CompletenessReport:
    """Build the report from what a run recorded.

    :param origin: who started the run (``start_run(origin=...)``): the hypothesis hint names it.
    :param roles: declared param roles (default: :func:`param_roles`).
    """
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
    table = param_roles() if roles is None else roles
    role = {k: param_role(k, table) for k in params}
    config = [k for k in params if role[k] == "configuration"]
    hyper = [k for k in params if role[k] == "hyperparameter"]
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
        (hypothesis or f"{notes} notes") if (hypothesis or notes) else hypothesis_hint(origin),
    )
    return r


def hypothesis_hint(origin: str | None) -> str:
    """Where to give a hypothesis, for a run started by ``origin`` (``start_run`` when ``None``).

    >>> hypothesis_hint("labledger.integrations.keras.LedgerCallback")
    "labledger.integrations.keras.LedgerCallback(..., hypothesis='...')"
    """
    return f"{origin or 'start_run'}(..., hypothesis='...')"


def missing_message(experiment: str, name: str, report: CompletenessReport) -> str:
    """The end-of-run warning for a run that lacks parts; it says how to add a missing hypothesis."""
    text = f"run {experiment}/{name} is {report.score} complete; missing: {', '.join(report.missing)}."
    if "notes/hypothesis" in report.missing:
        text += f" Say what the run should show with {report.parts['notes/hypothesis'][1]} or run.note(...)."
    return (
        f"{text} `labledger audit {experiment}` lists every run's gaps; runs of this experiment "
        "missing the same parts are not warned about again."
    )


def _pyproject_path(cwd: str) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``cwd``."""
    for folder in [Path(cwd), *Path(cwd).parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=8)
def _pyproject_table(path: str, mtime_ns: int) -> dict[str, Any]:
    """``[tool.labledger]`` of one ``pyproject.toml`` (read again when the file changes)."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    table = data.get("tool", {}).get("labledger", {})
    return table if isinstance(table, dict) else {}


def _pyproject_value(name: str) -> tuple[Any, Path | None]:
    """``[tool.labledger] name`` in the nearest ``pyproject.toml``, and that file."""
    found = _pyproject_path(os.getcwd())
    if found is None:
        return None, None
    try:
        return _pyproject_table(str(found), found.stat().st_mtime_ns).get(name), found
    except OSError:
        return None, found


def policy() -> str:
    """The completeness policy in force: ``warn``, ``strict`` or ``off``."""
    configured, _ = _pyproject_value("completeness")
    value = settings.completeness() or (str(configured) if configured is not None else None) or "warn"
    value = value.strip().lower()
    if value not in POLICIES:
        print(
            f"labledger: unknown completeness policy {value!r}; using 'warn' "
            f"(choose one of {', '.join(POLICIES)})",
            file=sys.stderr,
        )
        return "warn"
    return value
