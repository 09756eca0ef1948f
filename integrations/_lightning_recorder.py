"""What the Lightning logger and callback share: the recorder that turns trainer events into a run.

Private to :mod:`labledger.integrations.lightning`. Rules it keeps (how runs end:
:mod:`labledger.integrations._lightning_lifecycle`):

- Steps: the first fit's steps are Lightning's own. A later ``fit`` recorded by the
  same logger (another trainer, or a resume) is shifted, if needed, so that its
  first point comes after every point recorded before; each trainer keeps its shift
  for its later ``validate``/``test`` calls. No key gets two points at one step from
  different fits.
- Settings: the first fit's are recorded as they are; a later fit's settings that
  differ go under ``fit/<n>/`` (``fit/2/trainer/max_epochs``); a ``validate``,
  ``test`` or ``predict`` call only adds settings not recorded yet.
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from collections.abc import Mapping
from typing import Any

import labledger as ll
from labledger.integrations import _lightning_setup as setup
from labledger.integrations._lightning_checkpoints import CheckpointLog
from labledger.integrations._lightning_lifecycle import INTEGRATION, SpawnMixin, end_idle_runs, global_rank
from labledger.integrations._lightning_spool import Spool
from labledger.integrations.base import RunBinding, plain, report_failure, safe, scalars

#: The artifact kind of LightningCLI's config file.
CONFIG_KIND = "config" if "config" in ll.ARTIFACT_KINDS else "other"

_LOADERS = {"train": "train_dataloader", "validation": "val_dataloaders", "test": "test_dataloaders"}
#: What a run method records, as a warning names it.
_WHAT = {
    "log_params": "params",
    "log_metrics": "metrics",
    "log_artifact": "an artifact",
    "log_dataset": "a dataset",
    "set_tags": "tags",
}


class _Recorder(SpawnMixin):
    """Translates Lightning events into calls on one run; shared by the logger and the callback."""

    def __init__(self, binding: RunBinding, log_checkpoints: bool | str = True) -> None:
        self.binding = binding
        self.spool: Spool | None = None  # set in a spawned worker
        self.run_ref: tuple[str, str, str] | None = None  # (id, experiment, name) seen by a worker
        self.pending_spools: list[str] = []  # main process: worker folders still to replay
        self.checkpoints = CheckpointLog(log_checkpoints)
        self.trainer: weakref.ReferenceType[Any] | None = None
        self.datasets_seen: set[int] = set()
        self.exit_replay = False  # main process: an exit hook replays what workers left
        self.stage: Any = None  # the trainer stage of the last metrics (datasets are looked at on a change)
        self._direct: ll.Run | None = None  # the run, once nothing is left to replay: the fast path
        self.params: dict[str, str] = {}  # flat key -> JSON of the value this recorder logged
        self.pending_hparams: list[Any] = []
        self.fits = 0
        self.call: str | None = None  # the trainer call under way: fit, validate, test, predict
        self.next_step = 0  # one more than the highest step recorded
        self.offset = 0
        self.offsets: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self.rebase = False  # a later fit began: its first step decides its shift
        self.busy = False  # a trainer call is under way (or the run was used outside one)
        self.ended_by_rule = False

    # -- where records go ---------------------------------------------------

    def _resolve(self, reading: bool = False) -> ll.Run:
        """The run, started on first use; to write after it was ended for another's, a continuation."""
        run = self.binding.resolved
        if run is not None and self.ended_by_rule and run.ended and not reading:
            return self._continue(run)
        if run is None:
            run = self.binding.get()
            if self.binding.owned:
                self.busy = True
                end_idle_runs(self)
        return run

    def _continue(self, previous: ll.Run) -> ll.Run:
        """Used again after its run was ended for another's: go on in a new run that says so."""
        self.ended_by_rule = False
        self.binding = self.binding.renewed()
        run = self._resolve()
        run.set_tags({"continues": previous.id})
        run.log_params(json_params(self.params))
        self.checkpoints.new_run()
        return run

    def _ready(self) -> tuple[bool, Any]:
        """``(False, stand-in)`` off rank 0 (``None``) or in a spawned worker (the spool); else
        ``(True, None)`` after replaying what waited for the run."""
        if global_rank() != 0:
            return False, None
        if self.spool is not None:
            return False, self.spool
        self.replay()
        if self.pending_hparams:
            self.flush_hparams()
        return True, None

    def _sink(self) -> Any:
        ready, stand_in = self._ready()
        if not ready:
            return stand_in
        run = self._direct = self._resolve()
        return run

    def _do(self, method: str, *args: Any, **kwargs: Any) -> None:
        with safe(INTEGRATION, _WHAT.get(method, method)):
            sink = self._sink()
            if sink is not None:
                getattr(sink, method)(*args, **kwargs)

    def run(self) -> Any:
        """The run (a :class:`Spool` standing in for it in a spawned rank-0 worker; ``None`` off rank 0)."""
        ready, stand_in = self._ready()
        if not ready:
            return stand_in
        with safe(INTEGRATION, "the run"):
            return self._resolve(reading=True)
        return None

    # -- a trainer call -----------------------------------------------------

    def begin(self, trainer: Any, module: Any) -> None:
        """A trainer call is set up: its kind, the step shift, the settings."""
        self.trainer = weakref.ref(trainer)
        self.busy = True
        self.call = str(getattr(trainer.state.fn, "value", trainer.state.fn))
        if self.call == "fit":
            self.fits += 1
            self.rebase = self.next_step > 0
        self.offset = self.offsets.get(trainer, 0)
        params = setup.trainer_params(trainer, module)
        params.update(setup.callback_params(trainer))
        self.record_params(params)

    def record_resume(self, trainer: Any) -> None:
        """A fit resumed from ``ckpt_path``: where it came from (``resumed_from/*``)."""
        path = getattr(trainer, "ckpt_path", None)
        if self.call != "fit" or not path:
            return
        run = self.binding.resolved
        store = run.store if isinstance(run, ll.Run) else None
        with safe(INTEGRATION, "where the fit resumed from"):
            self.record_params({"resumed_from": setup.checkpoint_origin(store, path)})

    def record_cli(self, trainer: Any, folder: str | None = None, move_to: str | None = None) -> None:
        """A LightningCLI config: its values as ``cli/*`` params, its file as an artifact.

        :param folder: where the CLI's ``SaveConfigCallback`` writes (the logger's ``save_dir``).
        :param move_to: the run's folder: the file written in ``folder`` moves there once stored, so
            that the next run in ``folder`` can write its own.
        """
        found, text = None, None
        with safe(INTEGRATION, "the LightningCLI config"):
            found = setup.cli_config(trainer, folder)
            if found is not None and found[2] is None:  # not written: dumped with the CLI's parser
                text = setup.cli_text(trainer)
        if found is None or (found[2] is None and text is None):
            return
        values, name, written = found
        self.record_params({"cli": values})
        meta = {"source": "LightningCLI", "role": "config"}
        if written is not None:
            self._do("log_artifact", written, kind=CONFIG_KIND, name=name, metadata=meta)
            if move_to is not None:
                with safe(INTEGRATION, "the LightningCLI config (moving it to the run's folder)"):
                    os.makedirs(move_to, exist_ok=True)
                    os.replace(written, os.path.join(move_to, name))
            return
        with tempfile.TemporaryDirectory(prefix="labledger-cli-") as tmp:
            path = os.path.join(tmp, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text or "")
            self._do("log_artifact", path, kind=CONFIG_KIND, name=name, metadata=meta)

    def finish(self, error: BaseException | None = None, status: str | None = None) -> None:
        """A trainer call has returned (or raised ``error``): store what a fit leaves, then flush or end."""
        trainer = self.trainer() if self.trainer is not None else None
        if trainer is not None and self.call == "fit":
            self.checkpoints.sync(getattr(trainer, "checkpoint_callbacks", []), self._do, final=True)
            stopper = getattr(trainer, "early_stopping_callback", None)
            stopped = getattr(stopper, "stopped_epoch", 0)
            if stopped:
                self._do(
                    "log_metrics",
                    {"stopped_epoch": float(stopped)},
                    step=max(self.next_step - 1, 0),
                    epoch=stopped,
                )
        self.save_state()
        if error is not None or status is not None:
            self.end(error, status)
        else:
            self.flush()
        self.busy = False
        self.call = None

    # -- what gets recorded -------------------------------------------------

    def record_hparams(self, hparams: Any) -> None:
        """Hyperparameters as Lightning's loggers get them (namespaces flattened, no LightningCLI internals).

        Kept until the trainer call they belong to is known (the next event), so that a later
        fit's differing values get its ``fit/<n>/`` prefix.
        """
        if hparams is not None:
            self.pending_hparams.append(hparams)

    def flush_hparams(self) -> None:
        pending, self.pending_hparams = self.pending_hparams, []
        for hparams in pending:
            clean = setup.without_internals(hparams)
            if not isinstance(clean, Mapping):
                clean = vars(clean) if hasattr(clean, "__dict__") else {}
            if clean:
                self.record_params(dict(clean))

    def record_params(self, params: Mapping[str, Any]) -> None:
        """Log what is new; a later fit's changed values go under ``fit/<n>/`` (see the module's rules)."""
        new: dict[str, Any] = {}
        prefix = f"fit/{self.fits}/" if self.call == "fit" and self.fits > 1 else None
        described = plain(setup.without_internals(dict(params)))
        flat = setup.flat(described) if isinstance(described, dict) else {}
        for key, value in flat.items():
            text = json.dumps(value, sort_keys=True)
            old = self.params.get(key)
            if old is not None and old != text and self.call is None:
                new[key] = value  # a conflict outside a trainer call is the caller's: the run reports it
                continue
            if old is not None and old != text and prefix is not None and prefix + key not in self.params:
                key = prefix + key
            elif old is not None:
                continue
            new[key] = value
            self.params[key] = text
        if new:
            self._do("log_params", new)

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
        try:
            found = ll.fingerprint(dataset)
        except TypeError:  # no plugin fingerprints this type of dataset
            return
        self._do("log_dataset", role, role=role, fingerprint=found.digest, **found.summary)

    def record_metrics(self, metrics: Mapping[str, Any], step: int | None, epoch: int | None = None) -> None:
        """Log the numeric entries of ``metrics`` (``epoch`` is a metric and the epoch); the hot path."""
        values = scalars(metrics)
        if not values:
            return
        if "epoch" in values:
            epoch = int(values["epoch"])
        if step is not None:
            if type(step) is not int:  # Lightning before 2.2 hands over a user-logged `step` as a float
                step = int(step)
            if self.rebase:
                self._rebase(step)
            step += self.offset
            if step >= self.next_step:
                self.next_step = step + 1
        run = self._direct
        if run is None:
            self._do("log_metrics", values, step=step, epoch=epoch)
            return
        try:
            run.log_metrics(values, step=step, epoch=epoch)
        except Exception as e:  # the hot path: no context manager
            report_failure(INTEGRATION, "metrics", e)

    def _rebase(self, step: int) -> None:
        self.rebase = False
        self.offset = max(self.offset, self.next_step - step, 0)
        trainer = self.trainer() if self.trainer is not None else None
        if trainer is not None:
            self.offsets[trainer] = self.offset

    def record_step(self, metrics: Mapping[str, Any], step: int | None) -> None:
        """What the logger gets from Lightning: metrics, and the datasets when the trainer's stage changed."""
        trainer = self.trainer() if self.trainer is not None else None
        if trainer is not None:
            stage = trainer.state.stage
            if stage != self.stage:
                self.stage = stage
                self.record_datasets(trainer)
        self.record_metrics(metrics, step)

    def checkpoint_saved(self, callback: Any, path: str | None = None) -> None:
        """A ``ModelCheckpoint`` has written a file (``path``, else the one it saved last)."""
        trainer = self.trainer() if self.trainer is not None else None
        path = path or getattr(callback, "_last_checkpoint_saved", "") or ""
        epoch = trainer.current_epoch if trainer is not None else None
        step = trainer.global_step + self.offset if trainer is not None else None
        self.checkpoints.wrote(callback, path, epoch, step, global_rank())
        if self.checkpoints.mode == "all":
            self.checkpoints.sync([callback], self._do, final=False)

    def flush(self) -> None:
        if self.spool is None and global_rank() == 0:
            self.replay()
            if self.pending_hparams:
                self.flush_hparams()
            self.binding.flush()

    def end(self, error: BaseException | None = None, status: str | None = None) -> None:
        """Flush everything; end the run if this integration started it."""
        if self.spool is not None or global_rank() != 0:
            return
        self.replay()
        if self.pending_hparams:
            self.flush_hparams()
        self.binding.end(error, status=status)
        self._direct = None

    def idle_own_run(self) -> bool:
        run = self.binding.resolved
        return (
            self.binding.owned and not self.busy and self.spool is None and run is not None and not run.ended
        )

    def close_for_another(self) -> None:
        """Another Lightning integration started a run while this one is idle: end this one."""
        self.end()
        self.ended_by_rule = True


def json_params(params: Mapping[str, str]) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in params.items()}
