"""What the Lightning logger and callback share: the recorder that turns trainer events into a run.

Private to :mod:`labledger.integrations.lightning`.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    from lightning.pytorch.utilities.rank_zero import rank_zero_only
except ImportError:  # the standalone distribution
    from pytorch_lightning.utilities.rank_zero import rank_zero_only  # type: ignore[no-redef]

import labledger as ll
from labledger.integrations._training import (
    TRACKING_ERRORS,
    RunBinding,
    Spool,
    describe,
    numbers,
    plain,
    qualified_name,
    status_of,
)

_live_runs: weakref.WeakValueDictionary[str, ll.Run] = weakref.WeakValueDictionary()


_LOADERS = {"train": "train_dataloader", "validation": "val_dataloaders", "test": "test_dataloaders"}


def _global_rank() -> int:
    return int(getattr(rank_zero_only, "rank", 0) or 0)


class _Recorder:
    """Translates Lightning events into calls on one run; shared by the logger and the callback."""

    def __init__(self, run: ll.Run | None, start_run_kwargs: Mapping[str, Any]) -> None:
        self.binding = RunBinding(run, start_run_kwargs)
        self.spool: Spool | None = None  # set in a spawned worker
        self.run_ref: tuple[str, str, str] | None = None  # (id, experiment, name) seen by a worker
        self.pending_spools: list[str] = []  # main process: worker folders still to replay
        self.checkpoints: dict[str, tuple[str, float]] = {}  # path -> (artifact name, mtime)
        self.names: set[str] = set()
        self.tags: dict[str, str] = {}
        self.trainer: weakref.ReferenceType[Any] | None = None
        self.datasets_seen: set[int] = set()
        self.exit_replay = False  # main process: an exit hook replays what workers left
        self.stage: Any = None  # the trainer stage of the last metrics (datasets are looked at on a change)
        self._direct: ll.Run | None = None  # the run, once nothing is left to replay: the fast path

    # -- where records go ---------------------------------------------------

    def _sink(self) -> Any:
        if _global_rank() != 0:
            return None
        if self.spool is not None:
            return self.spool
        self.replay()
        run = self._direct = self.binding.get()
        return run

    def _do(self, method: str, *args: Any, **kwargs: Any) -> None:
        try:
            sink = self._sink()
            if sink is not None:
                getattr(sink, method)(*args, **kwargs)
        except TRACKING_ERRORS as e:
            self.binding.warn(e)

    def replay(self) -> None:
        """Main process: bring in what spawned workers recorded."""
        while self.pending_spools:
            folder = self.pending_spools.pop(0)
            try:
                Spool.replay(folder, self.binding.get())
            except (ll.errors.LabledgerError, OSError) as e:
                self.binding.warn(e)

    def run(self) -> ll.Run | None:
        if _global_rank() != 0 or self.spool is not None:
            return None
        self.replay()
        return self.binding.call(lambda run: run)

    # -- pickling for spawned workers -----------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["trainer"] = None
        if self.spool is None and _global_rank() == 0:
            run = self.binding.call(lambda run: run)  # resolved here, every worker shares it
            if run is not None:
                _live_runs[run.id] = run
                folder = tempfile.mkdtemp(prefix="labledger-spool-")
                self.pending_spools.append(folder)
                self._direct = None  # the worker's records come first
                if not self.exit_replay:
                    self.exit_replay = True
                    _register_exit_replay(self)
                state["run_ref"] = (run.id, run.experiment, run.name)
                state["spool"] = folder
        state["pending_spools"] = []
        state["_direct"] = None
        state["stage"] = None
        state["datasets_seen"] = set()
        state["binding"] = RunBinding(None, self.binding.start_run_kwargs)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        folder = state.pop("spool", None)
        self.__dict__.update(state)
        self.spool = None
        ref = self.run_ref
        if ref is not None and ref[0] in _live_runs:  # a copy inside the main process
            self.binding = RunBinding(_live_runs[ref[0]], {})
        elif folder is not None:
            self.spool = Spool(folder)

    # -- what gets recorded -------------------------------------------------

    def record_setup(self, trainer: Any, module: Any) -> None:
        """The trainer's configuration, the seed and the model summary."""
        self.trainer = weakref.ref(trainer)
        strategy = getattr(trainer, "strategy", None)
        params: dict[str, Any] = {
            "trainer": {
                "max_epochs": trainer.max_epochs,
                "max_steps": trainer.max_steps,
                "precision": plain(getattr(trainer, "precision", None)),
                "accumulate_grad_batches": trainer.accumulate_grad_batches,
                "gradient_clip_val": plain(trainer.gradient_clip_val),
                "gradient_clip_algorithm": plain(trainer.gradient_clip_algorithm),
                "strategy": type(strategy).__name__ if strategy is not None else None,
                "accelerator": type(trainer.accelerator).__name__,
                "devices": trainer.num_devices,
                "num_nodes": trainer.num_nodes,
                "world_size": trainer.world_size,
            }
        }
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
        self._do("log_params", params)

    def record_datasets(self, trainer: Any, role: str | None = None) -> None:
        """Fingerprint the dataset of the running stage (when a plugin can fingerprint it)."""
        if role is None:
            role = "train" if trainer.training else "test" if trainer.testing else "validation"
        if trainer.sanity_checking or role not in _LOADERS:
            return
        dataset = getattr(getattr(trainer, _LOADERS[role], None), "dataset", None)
        if dataset is None or id(dataset) in self.datasets_seen:
            return
        self.datasets_seen.add(id(dataset))
        found = ll.plugins.call_first("labledger_fingerprint_dataset", data=dataset)
        if isinstance(found, ll.Fingerprint):
            self._do("log_dataset", role, role=role, fingerprint=found.digest, **found.summary)

    def record_hparams(self, hparams: Any) -> None:
        if hparams is None:
            return
        if not isinstance(hparams, Mapping):
            hparams = vars(hparams)  # argparse.Namespace and AttributeDict-likes
        clean = {k: v for k, v in plain(dict(hparams)).items() if k != "_class_path"}
        if clean:
            self._do("log_params", clean)

    def record_metrics(self, metrics: Mapping[str, Any], step: int | None, epoch: int | None = None) -> None:
        """Log the numeric entries of ``metrics`` (an ``epoch`` entry becomes the epoch); the hot path."""
        values = numbers(metrics)
        if "epoch" in values:
            epoch = int(values.pop("epoch"))
        if not values:
            return
        run = self._direct
        if run is None:
            self._do("log_metrics", values, step=step, epoch=epoch)
            return
        try:
            run.log_metrics(values, step=step, epoch=epoch)
        except TRACKING_ERRORS as e:
            self.binding.warn(e)

    def record_step(self, metrics: Mapping[str, Any], step: int | None) -> None:
        """What the logger gets from Lightning: metrics, and the datasets when the trainer's stage changed."""
        trainer = self.trainer() if self.trainer is not None else None
        if trainer is not None:
            stage = trainer.state.stage
            if stage != self.stage:
                self.stage = stage
                self.record_datasets(trainer)
        self.record_metrics(metrics, step)

    def sync_checkpoints(self, callback: Any, epoch: int | None = None, step: int | None = None) -> None:
        """Store the checkpoints ``callback`` keeps that are new; tag those it dropped ``removed``."""
        trainer = self.trainer() if self.trainer is not None else None
        if epoch is None and trainer is not None:
            epoch, step = trainer.current_epoch, trainer.global_step
        kept = self._kept(callback)
        updates: dict[str, str] = {}
        for path, (role, score, rank) in kept.items():
            try:
                mtime = os.path.getmtime(path)
            except OSError:
                continue
            logged = self.checkpoints.get(path)
            if logged is not None and logged[1] == mtime:
                continue
            if logged is not None:  # the file was overwritten: its previous content is gone
                self._tag(updates, logged[0], "removed")
            name = self._unique_name(Path(path), step)
            metadata = {
                "epoch": epoch,
                "step": step,
                "monitor": getattr(callback, "monitor", None),
                "mode": getattr(callback, "mode", None),
                "score": score,
                "rank": rank,
                "kept_as": role,
                "global_rank": _global_rank(),
                "filename": Path(path).name,
            }
            self._do("log_artifact", path, kind="checkpoint", name=name, metadata=metadata)
            self.checkpoints[path] = (name, mtime)
        for path, (name, _) in list(self.checkpoints.items()):
            if path in kept:
                role, _score, rank = kept[path]
                self._tag(updates, name, f"kept, rank {rank}" if rank is not None else f"kept ({role})")
            else:
                self._tag(updates, name, "removed")
                del self.checkpoints[path]
        best = getattr(callback, "best_model_path", "")
        if best in self.checkpoints:
            self._tag(updates, "best", self.checkpoints[best][0])
        if updates:
            self._do("set_tags", updates)

    @staticmethod
    def _kept(callback: Any) -> dict[str, tuple[str, float | None, int | None]]:
        scores = {p: numbers({"s": s}).get("s") for p, s in getattr(callback, "best_k_models", {}).items()}
        order = sorted(scores, key=lambda p: scores[p] if scores[p] is not None else float("inf"))
        if getattr(callback, "mode", "min") == "max":
            order.reverse()
        kept: dict[str, tuple[str, float | None, int | None]] = {
            p: ("top_k", scores[p], i + 1) for i, p in enumerate(order)
        }
        best = getattr(callback, "best_model_path", "")
        if best and best not in kept:
            kept[best] = ("best", numbers({"s": getattr(callback, "best_model_score", None)}).get("s"), 1)
        last = getattr(callback, "last_model_path", "")
        if last and last not in kept:
            kept[last] = ("last", numbers({"s": getattr(callback, "current_score", None)}).get("s"), None)
        return kept

    def _unique_name(self, path: Path, step: int | None) -> str:
        name = path.name
        if name in self.names:
            name = f"{path.stem}-step={step}{path.suffix}"
        base, n = name, 2
        while name in self.names:
            name, n = f"{Path(base).stem}-{n}{path.suffix}", n + 1
        self.names.add(name)
        return name

    def _tag(self, updates: dict[str, str], name: str, value: str) -> None:
        key = f"checkpoint/{name}"
        if self.tags.get(key) != value:
            self.tags[key] = updates[key] = value

    def flush(self) -> None:
        if self.spool is None and _global_rank() == 0:
            self.replay()
            self.binding.flush()

    def end(self, error: BaseException | None = None, status: str | None = None) -> None:
        """Flush everything; end the run if this integration started it."""
        if self.spool is not None or _global_rank() != 0:
            return
        self.replay()
        self.binding.end(status or status_of(error), describe(error))


def _register_exit_replay(recorder: _Recorder) -> None:
    ref = weakref.ref(recorder)

    def _replay_at_exit() -> None:  # runs before labledger ends open runs (atexit is LIFO)
        alive = ref()
        if alive is not None:
            alive.replay()

    atexit.register(_replay_at_exit)
