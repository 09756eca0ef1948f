"""Exceptions raised by labledger.

Every exception derives from :class:`LabledgerError`; subclasses carry the
values involved as attributes so callers can react without parsing messages.
Validation errors also derive from the matching built-in (``ValueError`` or
``TypeError``) so generic handlers keep working.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArtifactConflictError",
    "FoldsConflictError",
    "InvalidExperimentNameError",
    "InvalidKeyError",
    "InvalidValueError",
    "LabledgerError",
    "ParamConflictError",
    "PluginError",
    "RunFinishedError",
    "RunNotFoundError",
    "StoreError",
    "StoreVersionError",
]


class LabledgerError(Exception):
    """Base class of every error raised by labledger."""


class ParamConflictError(LabledgerError, ValueError):
    """A param was logged again with a different value.

    Params are immutable: log the new value under a new key, or start a new run.
    """

    def __init__(self, run_id: str, key: str, old: Any, new: Any) -> None:
        self.run_id = run_id
        self.key = key
        self.old = old
        self.new = new
        super().__init__(
            f"param {key!r} of run {run_id} is already {old!r}; refusing to change it to "
            f"{new!r}. Params are immutable: use a new key or start a new run."
        )


class FoldsConflictError(LabledgerError, ValueError):
    """Fold results for a ``(key, split)`` were logged again with different values."""

    def __init__(self, run_id: str, key: str, split: str, old: list[float], new: list[float]) -> None:
        self.run_id = run_id
        self.key = key
        self.split = split
        self.old = old
        self.new = new
        super().__init__(
            f"folds of {key!r} (split {split!r}) of run {run_id} are already {old!r}; refusing "
            f"to change them to {new!r}. Fold results are immutable: use another key or split."
        )


class RunFinishedError(LabledgerError):
    """Something tried to write to a run that has ended (finished runs are read-only)."""

    def __init__(self, run_id: str, status: str, action: str) -> None:
        self.run_id = run_id
        self.status = status
        self.action = action
        super().__init__(
            f"cannot {action}: run {run_id} has ended with status {status!r} and is read-only. "
            "Start a new run (ll.start_run) to log more; only tags may change after the end."
        )


class RunNotFoundError(LabledgerError, LookupError):
    """No run matches the given reference (id, id prefix, or ``experiment/name``)."""

    def __init__(self, ref: str, candidates: list[str] | None = None) -> None:
        self.ref = ref
        self.candidates = candidates or []
        if self.candidates:
            shown = ", ".join(self.candidates[:5])
            msg = f"run reference {ref!r} is ambiguous; it matches {shown}. Give more of the id."
        else:
            msg = (
                f"no run matches {ref!r}. Give a run id, a unique id prefix, or experiment/name "
                "(`labledger runs` lists them)."
            )
        super().__init__(msg)


class InvalidKeyError(LabledgerError, ValueError):
    """A param, metric, tag or artifact key is empty, too long or contains control characters."""

    def __init__(self, key: Any, reason: str, what: str = "key") -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"invalid {what} {key!r}: {reason}")


class InvalidValueError(LabledgerError, TypeError):
    """A value cannot be stored for the given key (e.g. a metric that is not a number)."""

    def __init__(self, key: str, value: Any, reason: str) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"invalid value for {key!r}: {shown} ({type(value).__name__}): {reason}")


class InvalidExperimentNameError(LabledgerError, ValueError):
    """An experiment name does not follow the naming convention."""

    def __init__(self, name: str, pattern: str, suggestion: str | None) -> None:
        self.name = name
        self.pattern = pattern
        self.suggestion = suggestion
        hint = f" Try {suggestion!r}." if suggestion else ""
        super().__init__(
            f"experiment name {name!r} does not match the naming convention {pattern!r} "
            f"(set LABLEDGER_EXPERIMENT_PATTERN to change it).{hint}"
        )


class ArtifactConflictError(LabledgerError, ValueError):
    """An artifact name was logged twice in one run with different content."""

    def __init__(self, run_id: str, name: str, old_sha256: str, new_sha256: str) -> None:
        self.run_id = run_id
        self.name = name
        self.old_sha256 = old_sha256
        self.new_sha256 = new_sha256
        super().__init__(
            f"artifact {name!r} of run {run_id} already holds content {old_sha256[:12]}; "
            f"refusing to overwrite it with {new_sha256[:12]}. Give the new file another name=."
        )


class StoreError(LabledgerError):
    """The store cannot be opened, read or written."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"labledger store {path}: {problem}")


class StoreVersionError(StoreError):
    """The store was written by a newer labledger than this one."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            path,
            f"schema version {found} is newer than this labledger supports ({supported}). "
            "Upgrade labledger (pip install -U labledger) to open it.",
        )


class PluginError(LabledgerError):
    """A plugin's hook implementation raised; the message names the plugin and the hook."""

    def __init__(self, plugin: str, hook: str, error: BaseException) -> None:
        self.plugin = plugin
        self.hook = hook
        self.error = error
        super().__init__(
            f"plugin {plugin!r} raised in hook {hook}: {type(error).__name__}: {error}. "
            "labledger recorded everything regardless; further errors from this plugin "
            "in this hook are not reported again."
        )
