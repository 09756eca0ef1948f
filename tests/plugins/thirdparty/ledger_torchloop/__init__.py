"""ledger_torchloop: record a plain PyTorch training loop into labledger.

A third-party integration, written only against labledger's public API and its
integration toolkit, :mod:`labledger.integrations.base`. Its hook module,
:mod:`ledger_torchloop.hooks`, is registered under the ``labledger`` entry-point group.

>>> import ledger_torchloop
>>> with ledger_torchloop.track(model, optimizer, experiment="xor", hypothesis="8 units suffice",
...                             params={"epochs": 50}) as tracker:          # doctest: +SKIP
...     for step in range(50):
...         loss = train_one_step()
...         tracker.step(step, loss=loss)

Recorded: ``params`` as given, the model's class and parameter count (``model/*``),
the optimizer's class and settings (``optimizer/*``), the metrics of every step, and the
trained weights (``model.pt``, ``torch.save`` of the ``state_dict``) as a ``model``
artifact. The run is the one given, else the active one, else its own, which ends
with the loop: ``finished``, ``failed`` (an exception) or ``killed`` (Ctrl-C).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

import labledger as ll
from labledger.integrations.base import RunBinding, plain, qualified_name, safe, scalars

__all__ = ["Tracker", "track"]

INTEGRATION = "ledger_torchloop"
ORIGIN = "ledger_torchloop.track"


class Tracker:
    """Records one training loop: params when it begins, metrics each step, the model when it ends.

    :param model: the module being trained.
    :param optimizer: its optimizer (its class and settings are recorded).
    :param params: more params to record (epochs, batch size, …).
    :param run: record into this run (never ended by the tracker).
    :param log_model: store the trained weights as ``model.pt`` when the loop ends without an error.
    :param start_run_kwargs: :func:`labledger.start_run` arguments of a run it starts
        (``experiment``, ``name``, ``hypothesis``, ``tags``, ``seed``, …).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        params: Mapping[str, object] | None = None,
        run: ll.Run | None = None,
        log_model: bool = True,
        **start_run_kwargs: Any,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.params = dict(params or {})
        self.log_model = log_model
        self.binding = RunBinding(run, integration=INTEGRATION, origin=ORIGIN, **start_run_kwargs)

    @property
    def run(self) -> ll.Run | None:
        """The run, once the loop began."""
        return self.binding.resolved

    def __enter__(self) -> Tracker:
        self.begin()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.end(error)

    def begin(self) -> None:
        """Record the params: the ones given, the model's and the optimizer's."""
        weights = list(self.model.parameters())
        params: dict[str, object] = {
            **self.params,
            "model/class": qualified_name(self.model),
            "model/parameters": sum(w.numel() for w in weights),
        }
        if self.optimizer is not None:
            settings = {k: v for k, v in self.optimizer.defaults.items() if v is not None}
            params["optimizer"] = {"class": qualified_name(self.optimizer), **settings}
        values = plain(params)
        self.binding.call(lambda run: run.log_params(values), "the params")

    def step(self, step: int, **metrics: object) -> None:
        """Record one step's metrics (numbers, or one-element tensors such as a loss)."""
        values = scalars(metrics)
        if values:
            self.binding.call(lambda run: run.log_metrics(values, step=step), "the step's metrics")

    def end(self, error: BaseException | None = None) -> None:
        """The loop is over (``error`` stopped it, if given): store the model, end an own run."""
        run = self.binding.resolved
        if error is None and self.log_model and run is not None:
            self._store_model(run)
        self.binding.end(error)

    @safe(INTEGRATION, "the model")
    def _store_model(self, run: ll.Run) -> None:
        with tempfile.TemporaryDirectory(prefix="ledger-torchloop-") as folder:
            path = Path(folder) / "model.pt"
            torch.save(self.model.state_dict(), path)
            meta = {"format": "torch.save(state_dict)"}
            run.log_model(self.model, name="model.pt", path=path, metadata=meta)


def track(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, **options: Any) -> Tracker:
    """A :class:`Tracker` for ``model``, to use as a context manager around the loop.

    >>> with track(model, optimizer, experiment="xor") as tracker:   # doctest: +SKIP
    ...     tracker.step(0, loss=loss)
    """
    return Tracker(model, optimizer, **options)
