"""Shared by the training-loop integrations (Lightning, Keras): which run to log to, and safe logging.

:class:`RunBinding` resolves the run an integration writes to — the one it was
given, else the active run, else one it starts itself — ends only a run it
started, and turns tracking failures into one warning instead of an exception
in the user's training loop. :class:`Spool` stands in for the run in a worker
process and carries its records to the process that owns the run. :func:`plain`
converts framework objects (dtypes, schedules, callables, tensors) into
JSON-compatible param values.
"""

from __future__ import annotations

import enum
import functools
import inspect
import os
import pickle
import shutil
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import labledger as ll
from labledger.errors import LabledgerError
from labledger.hooks.manager import warn_once

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


_MISSING = object()


class Tap:
    """Replaces ``owner.<attr>``: calls it, then ``sink`` with the same arguments (until :meth:`remove`).

    For a framework method that has no hook of its own (a logger's ``log_metrics`` seen from a
    callback). A copy of the owner (pickling) gets the method it had before.
    """

    def __init__(self, owner: Any, attr: str, sink: Any) -> None:
        self.owner, self.attr, self.sink = owner, attr, sink
        self.previous = vars(owner).get(attr, _MISSING)
        self.target = getattr(owner, attr)
        setattr(owner, attr, self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.target(*args, **kwargs)
        self.sink(*args, **kwargs)
        return result

    def remove(self) -> None:
        if vars(self.owner).get(self.attr) is self:
            if self.previous is _MISSING:
                delattr(self.owner, self.attr)
            else:
                setattr(self.owner, self.attr, self.previous)

    def __reduce__(self) -> Any:  # a copy of the owner gets the method it had before
        return (_bound, (self.owner, self.attr)) if self.previous is _MISSING else (_same, (self.previous,))


def _bound(owner: Any, attr: str) -> Any:
    return getattr(type(owner), attr).__get__(owner)


def _same(value: Any) -> Any:
    return value


class Spool:
    """A stand-in for a run in a worker process: records calls until the process owning the run replays them.

    It offers the logging methods of :class:`labledger.Run` (``log_params``,
    ``log_metrics``, ``log_artifact``, ``set_tags``, ``note``, …) and the run's
    ``id``, ``name`` and ``experiment``; each call is kept in a folder and
    replayed, in order, on the real run. Files and folders given to
    :meth:`log_artifact` are copied at once, since the framework may delete them
    before the replay. Replayed metrics carry the replay's timestamps.

    :param folder: where the calls are kept (made by the owning process).
    :param ref: ``(id, experiment, name)`` of the run it stands for.
    """

    #: The run methods a worker may call; anything else raises :class:`AttributeError`.
    METHODS = frozenset(
        {
            "log_param",
            "log_params",
            "log_metric",
            "log_metrics",
            "log_folds",
            "log_config",
            "log_artifact",
            "log_dataset",
            "log_pipeline",
            "log_model",
            "set_tag",
            "set_tags",
            "note",
        }
    )

    def __init__(self, folder: str, ref: tuple[str, str, str] | None = None) -> None:
        self.folder = Path(folder)
        self.id, self.experiment, self.name = ref or ("", "", "")
        self._count = 0

    def __repr__(self) -> str:
        return f"<Spool for run {self.experiment}/{self.name} {self.id[:12]} in {self.folder}>"

    def __getattr__(self, method: str) -> Callable[..., None]:
        if method not in Spool.METHODS:
            raise AttributeError(
                f"{method!r} is not available in a worker process: log with "
                f"{', '.join(sorted(Spool.METHODS))}, or call it on the run in the main process"
            )

        def record(*args: Any, **kwargs: Any) -> None:
            self.write(method, args, kwargs)

        return record

    def write(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            data = pickle.dumps((method, args, kwargs))
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            raise LabledgerError(
                f"cannot pass {method}(...) from this worker process to the run: {e}. "
                "Log plain values (numbers, strings, files) from workers."
            ) from e
        with open(self.folder / "records.pkl", "ab") as f:
            f.write(data)

    def log_artifact(self, path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> None:
        source = Path(path)
        self._count += 1
        copy = self.folder / f"{self._count}-{source.name}"
        if source.is_dir():
            shutil.copytree(source, copy, symlinks=False)
        else:
            shutil.copyfile(source, copy)
        if not args and "name" not in kwargs:
            kwargs["name"] = source.name
        self.write("log_artifact", (str(copy), *args), kwargs)

    def flush(self) -> None:
        """Nothing to do: every call is on disk already."""

    @staticmethod
    def replay(folder: str, run: ll.Run) -> None:
        """Make every recorded call on ``run``, in order, then remove the folder."""
        records = Path(folder) / "records.pkl"
        first: BaseException | None = None
        try:
            if records.exists():
                with open(records, "rb") as f:
                    while True:
                        try:
                            method, args, kwargs = pickle.load(f)
                        except EOFError:
                            break
                        try:
                            getattr(run, method)(*args, **kwargs)
                        except TRACKING_ERRORS as e:  # the other records still go in
                            first = first or e
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if first is not None:
            raise first


@functools.cache
def _start_run_takes_origin() -> bool:
    return "origin" in inspect.signature(ll.start_run).parameters


def start_args(origin: str, given: Mapping[str, Any], **named: Any) -> dict[str, Any]:
    """``start_run`` keyword arguments: ``given`` plus the ``named`` ones that are not ``None``, and
    ``origin`` (the dotted name of what the user called; completeness warnings name it)."""
    args = {**dict(given), **{k: v for k, v in named.items() if v is not None}}
    if _start_run_takes_origin():
        args.setdefault("origin", origin)
    return args
