"""Which checkpoint files Lightning's ``ModelCheckpoint`` callbacks wrote and keep, and which a run stores.

Private to :mod:`labledger.integrations.lightning`. What is on disk decides:
a file a callback wrote that still exists (unchanged) is kept; one it deleted
or overwrote is removed. ``log_checkpoints=True`` stores the kept files when
a fit ends (or fails); ``"all"`` stores every file as soon as it is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from labledger.integrations._lightning_setup import epoch_and_step
from labledger.integrations.base import scalars

#: ``do(method, *args, **kwargs)``: make a call on the run (tracking failures become a warning).
Do = Callable[..., None]


def _mtime(path: str) -> float | None:
    try:
        return os.path.getmtime(path)
    except OSError:
        return None


def _score(value: Any) -> float | None:
    return scalars({"s": value}).get("s")


def _rank_key(score: float | None) -> float:
    return float("inf") if score is None else score


class CheckpointLog:
    """The files ``ModelCheckpoint`` callbacks wrote, and the artifacts a run stores of them.

    :param mode: ``True`` (store what the callbacks keep when a fit ends), ``"all"``
        (store every file when it is written) or ``False`` (store nothing; tags only).
    """

    def __init__(self, mode: bool | str = True) -> None:
        self.mode = mode
        self.written: dict[str, dict[str, Any]] = {}  # path -> what it was written with
        self.stored: dict[str, tuple[str, float]] = {}  # path -> (artifact name, mtime stored)
        self.names: set[str] = set()
        self.tags: dict[str, str] = {}

    def new_run(self) -> None:
        """The run changed (a continuation): nothing is stored in it yet."""
        self.stored.clear()
        self.names.clear()
        self.tags.clear()

    def wrote(self, callback: Any, path: str, epoch: int | None, step: int | None, rank: int) -> None:
        """``callback`` has just written ``path`` at ``epoch``/``step``."""
        if not path:
            return
        self.written[path] = {
            "epoch": epoch,
            "step": step,
            "monitor": getattr(callback, "monitor", None),
            "mode": getattr(callback, "mode", None),
            "score": _score(getattr(callback, "current_score", None)),
            "global_rank": rank,
            "mtime": _mtime(path),
        }

    def sync(self, callbacks: Iterable[Any], do: Do, *, final: bool) -> None:
        """Store what the mode asks for and tag every stored checkpoint ``kept…`` or ``removed``.

        :param final: a fit ends: ``True`` mode stores the kept files now.
        """
        roles: dict[str, tuple[str, float | None, int | None]] = {}
        best: list[str] = []
        last: list[str] = []
        for callback in callbacks:
            roles.update(self._roles(callback))
            best.append(getattr(callback, "best_model_path", "") or "")
            last.append(getattr(callback, "last_model_path", "") or "")
        on_disk = {p: m for p in {*self.written, *roles} if (m := _mtime(p)) is not None}
        if self.mode == "all" or (self.mode is True and final):
            for path, mtime in sorted(on_disk.items(), key=lambda item: item[1]):
                logged = self.stored.get(path)
                if logged is None or logged[1] != mtime:
                    self._store(path, mtime, roles.get(path), do)
        updates: dict[str, str] = {}
        for path, (name, mtime) in self.stored.items():
            if on_disk.get(path) != mtime:
                self._tag(updates, f"checkpoint/{name}", "removed")
                continue
            role, _score, rank = roles.get(path, ("kept", None, None))
            value = (
                f"kept, rank {rank}" if rank is not None else "kept" if role == "kept" else f"kept ({role})"
            )
            self._tag(updates, f"checkpoint/{name}", value)
        for key, paths in (("checkpoint/best", best), ("checkpoint/last", last)):
            current = [
                self.stored[p][0] for p in paths if p in self.stored and on_disk.get(p) == self.stored[p][1]
            ]
            if current:
                self._tag(updates, key, current[0])
        if updates:
            do("set_tags", updates)

    @staticmethod
    def _roles(callback: Any) -> dict[str, tuple[str, float | None, int | None]]:
        """``path -> (role, score, top-k rank)`` of the files ``callback`` says it keeps."""
        scores = {p: _score(s) for p, s in (getattr(callback, "best_k_models", None) or {}).items()}
        order = sorted(scores, key=lambda p: _rank_key(scores[p]))
        if getattr(callback, "mode", "min") == "max":
            order.reverse()
        roles: dict[str, tuple[str, float | None, int | None]] = {
            str(p): ("top_k", scores[p], i + 1) for i, p in enumerate(order)
        }
        best = getattr(callback, "best_model_path", "") or ""
        if best and best not in roles:
            roles[best] = ("best", _score(getattr(callback, "best_model_score", None)), None)
        last = getattr(callback, "last_model_path", "") or ""
        if last and last not in roles:
            roles[last] = ("last", None, None)
        return roles

    def _store(self, path: str, mtime: float, role: Any, do: Do) -> None:
        meta = dict(self.written.get(path) or {})
        if meta.get("mtime") != mtime:  # not seen written (restored state, or written before tracking)
            epoch, step = epoch_and_step(path)
            meta = {
                "epoch": epoch,
                "step": step,
                **{k: v for k, v in meta.items() if k not in ("epoch", "step")},
            }
        meta.pop("mtime", None)
        name = self._unique_name(Path(path), meta.get("epoch"), meta.get("step"))
        kept_as, score, rank = role or ("kept", None, None)
        metadata = {
            **meta,
            "score": meta.get("score") if meta.get("score") is not None else score,
            "rank": rank,
            "kept_as": kept_as,
            "filename": Path(path).name,
        }
        previous = self.stored.get(path)
        if previous is not None:
            self._tag_now(previous[0], do)
        do("log_artifact", path, kind="checkpoint", name=name, metadata=metadata)
        self.stored[path] = (name, mtime)

    def _tag_now(self, name: str, do: Do) -> None:
        updates: dict[str, str] = {}
        self._tag(updates, f"checkpoint/{name}", "removed")
        if updates:
            do("set_tags", updates)

    def _unique_name(self, path: Path, epoch: int | None, step: int | None) -> str:
        name = path.name
        if name in self.names:
            name = f"{path.stem}-epoch={epoch}-step={step}{path.suffix}"
        base, n = name, 2
        while name in self.names:
            name, n = f"{Path(base).stem}-{n}{path.suffix}", n + 1
        self.names.add(name)
        return name

    def _tag(self, updates: dict[str, str], key: str, value: str) -> None:
        if self.tags.get(key) != value:
            self.tags[key] = updates[key] = value
