"""A stand-in for the run in a spawned worker process, replayed into the run by the main process.

Private to :mod:`labledger.integrations.lightning`.
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import labledger as ll
from labledger.errors import LabledgerError


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
            "log_predictions",
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
                        except Exception as e:  # the other records still go in
                            first = first or e
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if first is not None:
            raise first
