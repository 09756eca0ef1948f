"""How a Lightning recorder's run ends, and how it crosses into spawned worker processes.

Private to :mod:`labledger.integrations.lightning`. A run an integration started
ends on ``end()``, when a fit fails, when its logger or callback is
garbage-collected, when another Lightning integration object starts a run of its
own while this one is idle (no trainer call under way), or at exit. Used again
after that, the recorder goes on in a new run tagged ``continues=<previous id>``.

With spawn-based strategies the logger is pickled into each worker: the rank-0
worker records into a :class:`~labledger.integrations._lightning_spool.Spool` that the
main process replays into the run, with what the worker learnt (params logged,
fits, steps, checkpoints stored) so the next trainer call goes on from there.
"""

from __future__ import annotations

import atexit
import os
import pickle
import tempfile
import threading
import weakref
from typing import TYPE_CHECKING, Any

try:
    from lightning.pytorch.utilities.rank_zero import rank_zero_only
except ImportError:  # the standalone distribution
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

import labledger as ll
from labledger.integrations._lightning_spool import Spool
from labledger.integrations.base import RunBinding, report_failure, safe

if TYPE_CHECKING:
    from labledger.integrations._lightning_recorder import _Recorder

INTEGRATION = "lightning"

#: Runs handed to spawned workers, by id: a copy unpickled in this process logs to the same run.
_live_runs: weakref.WeakValueDictionary[str, ll.Run] = weakref.WeakValueDictionary()
#: Every recorder of this process (for the "another one starts" rule).
_recorders: weakref.WeakSet[Any] = weakref.WeakSet()


def global_rank() -> int:
    return int(getattr(rank_zero_only, "rank", 0) or 0)


def end_idle_runs(starting: Any) -> None:
    """``starting`` began a run of its own: end the runs of the recorders that are idle."""
    for other in list(_recorders):
        if other is not starting and other.idle_own_run():
            other.close_for_another()


def watch(owner: Any, recorder: Any) -> None:
    """End ``recorder``'s own run when ``owner`` (the logger or callback) is garbage-collected."""
    _recorders.add(recorder)
    finalizer = weakref.finalize(owner, _collected, recorder)
    finalizer.atexit = False  # at exit labledger ends open runs with the right status


def _collected(recorder: Any) -> None:
    run = recorder.binding.resolved
    if recorder.binding.owned and recorder.spool is None and run is not None and not run.ended:
        # a garbage collection may run while a lock of the run is held in this thread: end it from another
        threading.Thread(target=recorder.end, name="labledger-lightning-end", daemon=True).start()


class SpawnMixin:
    """Pickling of a recorder for spawned workers, and the replay of what they recorded."""

    binding: RunBinding
    spool: Spool | None
    run_ref: tuple[str, str, str] | None
    pending_spools: list[str]
    exit_replay: bool
    _direct: ll.Run | None
    params: dict[str, str]
    fits: int
    next_step: int
    checkpoints: Any
    offsets: weakref.WeakKeyDictionary[Any, int]

    def _resolve(self, reading: bool = False) -> ll.Run:  # provided by the recorder
        raise NotImplementedError

    def replay(self) -> None:
        """Main process: bring in what spawned workers recorded."""
        while self.pending_spools:
            folder = self.pending_spools.pop(0)
            self._adopt(folder)
            with safe(INTEGRATION, "what a spawned worker recorded"):
                Spool.replay(folder, self._resolve())

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.spool is None and global_rank() == 0:
            run: ll.Run | None = None
            try:  # resolved here, every worker shares it (no replay: a worker may be writing already)
                run = self._resolve(reading=True)
            except Exception as e:
                report_failure(INTEGRATION, "the run spawned workers record into", e)
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
        state.update(trainer=None, pending_spools=[], _direct=None, stage=None, pending_hparams=[])
        state.update(datasets_seen=set(), offsets={})
        state["binding"] = self.binding.renewed()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        folder = state.pop("spool", None)
        offsets = state.pop("offsets", {})
        self.__dict__.update(state)
        self.offsets = weakref.WeakKeyDictionary(offsets)
        self.spool = None
        ref = self.run_ref
        if ref is not None and ref[0] in _live_runs:  # a copy inside the main process
            self.binding = RunBinding(_live_runs[ref[0]], integration=INTEGRATION, origin=self.binding.origin)
        elif folder is not None:
            self.spool = Spool(folder, ref)
        _recorders.add(self)

    def save_state(self) -> None:
        """Worker: leave what the main process needs to go on where this worker stopped."""
        if self.spool is not None:
            state = {"params": self.params, "fits": self.fits, "next_step": self.next_step}
            with open(self.spool.folder / "state.pkl", "wb") as f:
                pickle.dump({**state, "checkpoints": self.checkpoints}, f)

    def _adopt(self, folder: str) -> None:
        try:
            with open(os.path.join(folder, "state.pkl"), "rb") as f:
                state = pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError):
            return
        self.params.update(state["params"])
        self.fits, self.next_step = state["fits"], state["next_step"]
        self.checkpoints = state["checkpoints"]


def _register_exit_replay(recorder: _Recorder | SpawnMixin) -> None:
    ref = weakref.ref(recorder)

    def _replay_at_exit() -> None:  # runs before labledger ends open runs (atexit is LIFO)
        alive = ref()
        if alive is not None:
            alive.replay()

    atexit.register(_replay_at_exit)
