"""Exceptions raised by labledger.

Every exception derives from :class:`LabledgerError`; subclasses carry the
values involved as attributes so callers can react without parsing messages.
Validation errors also derive from the matching built-in (``ValueError`` or
``TypeError``) so generic handlers keep working.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = [
    "ArtifactConflictError",
    "ArtifactCorruptError",
    "ArtifactSourceError",
    "ArtifactWriteError",
    "FoldsConflictError",
    "InvalidExperimentNameError",
    "InvalidKeyError",
    "InvalidValueError",
    "LabledgerError",
    "ParamConflictError",
    "ParamSpellingConflictError",
    "PluginError",
    "PluginRegistrationError",
    "RunFinishedError",
    "RunNotFoundError",
    "SettingsError",
    "StoreBusyError",
    "StoreError",
    "StorePluginDisabledError",
    "StoreURIError",
    "StoreVersionError",
    "StoreWriteError",
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
        try:
            shown = repr(value)
        except Exception:  # too deep to show, or an integer beyond Python's digit limit
            shown = f"<{type(value).__name__}>"
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


class StoreWriteError(StoreError):
    """The store refused a write (disk full, read-only, file-size limit...).

    What was logged is kept (in memory, spilled to a file beside the store when
    large) and retried in the background, in order; :meth:`labledger.Run.flush`
    raises this error while anything is still unwritten, so a caller who asks knows.
    """

    def __init__(self, path: str, problem: str, pending_records: int = 0, pending_points: int = 0) -> None:
        self.pending_records = pending_records
        self.pending_points = pending_points
        super().__init__(path, problem)


class StoreBusyError(StoreWriteError):
    """The background writer stepped back from a store another thread holds (retried shortly)."""


class ArtifactCorruptError(LabledgerError):
    """A stored artifact's bytes are not what was logged: changed, truncated, missing, or a
    directory manifest naming a path outside its folder.

    ``name`` is the artifact, ``sha256`` the content it should have, ``path`` the file
    found wrong and ``problem`` what is wrong with it.
    """

    def __init__(self, name: str, sha256: str, path: str, problem: str) -> None:
        self.name = name
        self.sha256 = sha256
        self.path = path
        self.problem = problem
        super().__init__(
            f"artifact {name!r} ({sha256[:12]}) is damaged: {problem} ({path}). Its stored bytes are "
            "not what was logged: restore the store's artifacts folder from a backup, or log the "
            "artifact again in a new run. `labledger fsck` lists every damaged artifact."
        )


class PluginError(LabledgerError):
    """A plugin's hook implementation raised; the message names the plugin and the hook."""

    def __init__(self, plugin: str, hook: str, error: BaseException) -> None:
        self.plugin = plugin
        self.hook = hook
        self.error: BaseException | None = error
        super().__init__(
            f"plugin {plugin!r} raised in hook {hook}: {type(error).__name__}: {error}. "
            "labledger recorded everything regardless; further errors from this plugin "
            "in this hook are not reported again."
        )


class PluginRegistrationError(PluginError):
    """A plugin raised in a hook labledger made for it while registering it; it was not registered.

    ``labledger_register_commands`` is made again for each plugin registered after the
    command line was built.
    """

    def __init__(self, plugin: str, hook: str, error: BaseException) -> None:
        self.plugin = plugin
        self.hook = hook
        self.error = error
        LabledgerError.__init__(
            self,
            f"plugin {plugin!r} raised in hook {hook} while being registered: {type(error).__name__}: "
            f"{error}. It was not registered: fix the plugin and register it again.",
        )


class StorePluginDisabledError(PluginError):
    """The built-in store plugin is blocked and no other plugin serves the store.

    The built-in SQLite store (``labledger.store.sink``) opens store folders and writes
    every run into them; without it nothing would be recorded, so labledger refuses
    before writing anything.
    """

    def __init__(self, plugin: str, uri: str) -> None:
        self.plugin = plugin
        self.hook = "labledger_open_store"
        self.error = None
        self.uri = uri
        LabledgerError.__init__(
            self,
            f"the built-in store plugin {plugin!r} is disabled (LABLEDGER_DISABLE_PLUGINS) and no other "
            f"plugin serves the store {uri}: nothing was recorded. The built-in store cannot be disabled "
            f"on its own: remove {plugin} from LABLEDGER_DISABLE_PLUGINS, or install a store plugin that "
            "answers labledger_open_store for this store and writes its runs.",
        )


class StoreURIError(StoreError):
    """No plugin serves a store or artifact URI: its scheme is unknown to every installed plugin.

    ``uri`` is the location given, ``scheme`` its scheme (``postgresql``, ``s3``...) and
    ``hook`` the hook a plugin answers to serve it.
    """

    def __init__(
        self, uri: str, scheme: str, hook: str = "labledger_open_store", what: str = "store"
    ) -> None:
        self.uri = uri
        self.scheme = scheme
        self.hook = hook
        super().__init__(
            uri,
            f"no installed plugin serves {scheme!r} {what} URIs (none answers {hook} for it). Install the "
            f"labledger plugin for {scheme} (one implementing {hook}), or give a folder path: the built-in "
            "SQLite store serves folders and file: URIs.",
        )


class ArtifactSourceError(InvalidValueError):
    """An artifact path is neither a regular file nor a directory (a FIFO, socket, device...).

    Only regular files and directories, or symlinks to them, can be stored; labledger
    never opens anything else (reading a FIFO would block forever).
    """

    def __init__(self, path: str, file_type: str) -> None:
        self.path = path
        self.file_type = file_type
        self.key = "path"
        self.value = path
        self.reason = f"is a {file_type}"
        shown = {"fifo": "FIFO (named pipe)"}.get(file_type, file_type)
        LabledgerError.__init__(
            self,
            f"cannot log artifact {path}: it is a {shown}, not a regular file or directory. "
            "Only regular files and directories (or symlinks to them) can be stored; copy the "
            "contents into a regular file and log that.",
        )


class ArtifactWriteError(StoreError):
    """An artifact could not be copied into the store (disk full, file-size limit, I/O error).

    No partial file is left behind and the run stays usable; log it again once
    there is room. ``needed`` is the artifact's size in bytes, ``free``
    the free space of the store's file system when the write failed.
    """

    def __init__(self, path: str, name: str, source: str, needed: int, free: int | None, reason: str) -> None:
        self.name = name
        self.source = source
        self.needed = needed
        self.free = free
        self.reason = reason
        room = "" if free is None else f"; {_size(free)} are free"
        super().__init__(
            path,
            f"cannot store artifact {name!r} ({source}): {reason}. It needs {_size(needed)}{room}. "
            "Free space (or raise the file-size limit) and log it again; no partial file was left behind.",
        )


class ParamSpellingConflictError(ParamConflictError):
    """Two spellings in one ``log_params`` call flatten to the same key with different values.

    ``{"opt/lr": 0.1, "opt": {"lr": 0.5}}`` gives ``opt/lr`` twice: keep one spelling.
    """

    def __init__(self, key: str, spellings: tuple[str, str], old: Any, new: Any) -> None:
        self.run_id = ""
        self.key = key
        self.spellings = spellings
        self.old = old
        self.new = new
        LabledgerError.__init__(
            self,
            f"params {spellings[0]} = {old!r} and {spellings[1]} = {new!r} both flatten to the "
            f"key {key!r} with different values; nothing of the call was logged. Give the value once.",
        )


class SettingsError(LabledgerError, ValueError):
    """A ``LABLEDGER_*`` environment setting has a value labledger cannot use.

    ``name`` is the variable, ``value`` what it holds and ``allowed`` what it may hold.
    """

    def __init__(self, name: str, value: str, allowed: str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"environment setting {name}={value!r} is invalid: {allowed}. Fix or unset it.")


def _size(n: int) -> str:
    """``123 bytes`` or ``48.0 MiB (50,331,648 bytes)``."""
    if n < 1024:
        return f"{n:,} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit} ({n:,} bytes)"


class _ErrorsModule(types.ModuleType):
    """``ll.errors`` holds the exception classes and, called, is the error analysis of a run's
    stored predictions: ``ll.errors(run, by=["region"])`` runs
    :func:`labledger.predictions.analysis.errors` (imported on the first call, as the package's
    lazy names are)."""

    def __call__(self, run: Any, by: Any = None, metric: str | None = None, **options: Any) -> Any:
        from importlib import import_module

        return import_module("labledger.predictions.analysis").errors(run, by, metric, **options)


sys.modules[__name__].__class__ = _ErrorsModule
