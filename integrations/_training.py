"""Shared by the training-loop integrations (Lightning, Keras): which run to log to, and safe logging.

:class:`RunBinding` resolves the run an integration writes to — the one it was
given, else the active run, else one it starts itself — ends only a run it
started, and turns tracking failures into one warning instead of an exception
in the user's training loop. :class:`Spool` carries records from a worker
process to the process that owns the run. :func:`plain` converts framework objects (dtypes,
schedules, callables, tensors) into JSON-compatible param values.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import labledger as ll
from labledger.errors import LabledgerError
from labledger.plugins import warn_once

T = TypeVar("T")

#: Errors a tracking call may raise that must never reach the user's training.
TRACKING_ERRORS = (LabledgerError, OSError)


def qualified_name(obj: Any) -> str:
    """``module.QualName`` of a class, or of an object's class."""
    cls = obj if isinstance(obj, type) else type(obj)
    module = "__main__" if cls.__module__ == "__mp_main__" else cls.__module__  # a spawned worker
    return f"{module}.{cls.__qualname__}"


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-compatible copy of ``value`` for a param: framework objects become numbers or strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value, depth + 1) if isinstance(value.value, int | str | float) else value.name
    if depth > 8:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    size = _element_count(value)
    if size == 1:  # NumPy scalars, one-element arrays and tensors
        try:
            return plain(value.item(), depth + 1)
        except (TypeError, ValueError, RuntimeError):
            pass
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        module = getattr(value, "__module__", None)
        return f"{module}.{value.__qualname__}" if module else value.__qualname__
    return str(value)


def _element_count(value: Any) -> int | None:
    numel = getattr(value, "numel", None)
    if callable(numel):
        try:
            return int(numel())
        except (TypeError, RuntimeError):
            return None
    size = getattr(value, "size", None)
    return size if isinstance(size, int) and hasattr(value, "item") else None


def numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The entries of ``metrics`` that are one number each (tensors and NumPy scalars included)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if type(value) is float:  # what Lightning and Keras hand over: the hot path
            out[key if type(key) is str else str(key)] = value
            continue
        if isinstance(value, bool | str | bytes) or value is None:
            continue
        if _element_count(value) not in (None, 1):
            continue
        try:
            out[str(key)] = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            continue
    return out


def status_of(error: BaseException | None) -> str:
    """``killed`` for an interruption (Ctrl-C, SIGTERM), ``failed`` for any other exception.

    Unlike the core's rule for ``with`` blocks, any ``SystemExit`` counts as an
    interruption here: Lightning turns Ctrl-C into ``SystemExit`` before callbacks see it.
    """
    if error is None:
        return "finished"
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return "killed"
    return "failed"


def describe(error: BaseException | None) -> str | None:
    """The traceback of ``error`` as text (what :meth:`Run.end` stores)."""
    if error is None:
        return None
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


class RunBinding:
    """The run an integration logs to.

    :param run: log to this run (never ended by the integration).
    :param start_run_kwargs: when no run is given, the run active when logging begins
        is used; when none is active, start one with ``ll.start_run(**start_run_kwargs)``; that run is
        the integration's own and it ends it.
    """

    def __init__(self, run: ll.Run | None, start_run_kwargs: Mapping[str, Any]) -> None:
        self._run = run
        self.start_run_kwargs = dict(start_run_kwargs)
        self.owned = False
        self._warned = False
        self._token = object()

    @property
    def resolved(self) -> ll.Run | None:
        """The run if one was already chosen or started, else ``None`` (never starts one)."""
        return self._run

    def get(self) -> ll.Run:
        """The run, resolving it on first use: the given one, the active one, or a new one."""
        if self._run is None:
            active = ll.active_run()
            if active is not None:
                self._run = active
            else:  # the integration's own run: bound to it, never the active run of the program
                self._run = ll.start_run(**{"activate": False, **self.start_run_kwargs})
                self.owned = True
        return self._run

    def call(self, action: Callable[[ll.Run], T]) -> T | None:
        """Apply ``action`` to the run; a tracking failure is reported once and training goes on."""
        try:
            return action(self.get())
        except TRACKING_ERRORS as e:
            self.warn(e)
            return None

    def warn(self, error: BaseException) -> None:
        """Report a tracking failure once per binding, as a :class:`LabledgerWarning`."""
        if self._warned:
            return
        self._warned = True
        warn_once(
            ("binding", self._token),
            f"labledger could not record part of this run and goes on without it: {error}",
        )

    def end(self, status: str = "finished", error: str | None = None) -> None:
        """Flush; end the run too if this binding started it."""
        run = self._run
        if run is None:
            return
        try:
            if self.owned:
                run.end(status, error=error)
            elif not run.ended:
                run.flush()
        except TRACKING_ERRORS as e:
            self.warn(e)

    def flush(self) -> None:
        run = self._run
        if run is not None and not run.ended:
            try:
                run.flush()
            except TRACKING_ERRORS as e:
                self.warn(e)


class Spool:
    """Records made in a worker process, kept in a folder until the process owning the run replays them.

    It offers the few :class:`labledger.Run` methods the integrations call; files
    given to :meth:`log_artifact` are copied, since the framework may delete them
    before the replay. Replayed metrics carry the replay's timestamps.
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self._count = 0

    def write(self, *entry: Any) -> None:
        with open(self.folder / "records.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.write("params", plain(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None, epoch: int | None) -> None:
        self.write("metrics", dict(metrics), step, epoch)

    def log_artifact(self, path: str, kind: str, name: str, metadata: Mapping[str, Any]) -> None:
        self._count += 1
        copy = self.folder / f"{self._count}-{Path(path).name}"
        shutil.copyfile(path, copy)
        self.write("artifact", str(copy), kind, name, plain(metadata))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.write("tags", dict(tags))

    def log_dataset(self, name: str, *, role: str, fingerprint: str, **summary: Any) -> None:
        self.write("dataset", name, role, fingerprint, plain(summary))

    @staticmethod
    def replay(folder: str, run: ll.Run) -> None:
        records = Path(folder) / "records.jsonl"
        if records.exists():
            for line in records.read_text(encoding="utf-8").splitlines():
                kind, *args = json.loads(line)
                if kind == "params":
                    run.log_params(args[0])
                elif kind == "metrics":
                    run.log_metrics(args[0], step=args[1], epoch=args[2])
                elif kind == "artifact":
                    run.log_artifact(args[0], kind=args[1], name=args[2], metadata=args[3])
                elif kind == "tags":
                    run.set_tags(args[0])
                elif kind == "dataset":
                    run.log_dataset(args[0], role=args[1], fingerprint=args[2], **args[3])
        shutil.rmtree(folder, ignore_errors=True)
