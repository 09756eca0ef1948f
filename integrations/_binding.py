"""The run an integration records into, and the status that run ends with.

Part of :mod:`labledger.integrations.base`.
"""

from __future__ import annotations

import functools
import inspect
import re
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import labledger as ll
from labledger.errors import InvalidValueError
from labledger.integrations._safety import safe

__all__ = ["RunBinding", "error_text", "final_status"]

T = TypeVar("T")

_ORIGIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,20}")


@functools.cache
def _start_run_arguments() -> frozenset[str]:
    """What a run a binding starts may be given: ``labledger.start_run``'s arguments but its own two."""
    return frozenset(inspect.signature(ll.start_run).parameters) - {"activate", "origin"}


def final_status(error: BaseException | None) -> str:
    """The status a run ends with when ``error`` left the training (``None``: nothing did).

    ``finished`` without an error; ``killed`` for an interruption: ``KeyboardInterrupt``
    (Ctrl-C) or ``SystemExit`` (SIGTERM as labledger raises it, ``sys.exit()`` in the
    middle of training; Lightning turns Ctrl-C into ``SystemExit`` before its callbacks
    hear of it); ``failed`` for any other exception.

    >>> final_status(None), final_status(KeyboardInterrupt()), final_status(ValueError("nan loss"))
    ('finished', 'killed', 'failed')
    """
    if error is None:
        return "finished"
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return "killed"
    return "failed"


def error_text(error: BaseException | None) -> str | None:
    """The traceback of ``error`` as text, what :meth:`labledger.Run.end` stores (``None`` for none).

    >>> run.end(final_status(error), error=error_text(error))  # doctest: +SKIP
    """
    if error is None:
        return None
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


class RunBinding:
    """The run an integration records into: the one given, else the user's active run, else its own.

    The run is chosen when it is first needed (:meth:`get`): the run given to the
    integration; else the run active in this thread or task at that moment
    (:func:`labledger.active_run`); else a run the binding starts with
    :func:`labledger.start_run` — ``origin`` and ``start_run_kwargs`` given, and
    ``activate=False``, so that it never captures the program's own logging. Only
    such a run of its own is ended by :meth:`end`; a given or active run is flushed
    and stays the user's.

    :param run: record into this run (never ended by the integration).
    :param integration: the integration's name, as its warnings show it (see :class:`safe`).
    :param origin: the dotted name of what the user called (``"ledger_torchloop.track"``):
        recorded with a run the binding starts, and named by completeness warnings as
        the place to give a hypothesis.
    :param start_run_kwargs: :func:`labledger.start_run` arguments of a run the binding
        starts (``experiment``, ``name``, ``hypothesis``, ``tags``, ``seed``, …); ``None``
        values are left out.
    :raises TypeError: an argument :func:`labledger.start_run` does not take.
    :raises labledger.errors.InvalidValueError: ``run`` given together with arguments of
        a run to start, or an ``origin`` that is not a dotted name.

    >>> binding = RunBinding(None, integration="torchloop", origin="ledger_torchloop.track",
    ...                      experiment="mnist", hypothesis="a wider layer helps")   # doctest: +SKIP
    >>> binding.call(lambda run: run.log_params({"lr": 0.1}), "the params")       # doctest: +SKIP
    >>> binding.end(error)   # finished, failed or killed: see final_status      # doctest: +SKIP
    """

    def __init__(
        self, run: ll.Run | None = None, *, integration: str, origin: str, **start_run_kwargs: Any
    ) -> None:
        allowed = _start_run_arguments()
        unknown = sorted(set(start_run_kwargs) - allowed)
        if unknown:
            raise TypeError(
                f"{integration}: unexpected argument {unknown[0]!r}; the run it starts takes "
                f"labledger.start_run's arguments: {', '.join(sorted(allowed))}"
            )
        kwargs = {key: value for key, value in start_run_kwargs.items() if value is not None}
        if run is not None and kwargs:
            key = next(iter(kwargs))
            raise InvalidValueError(
                key,
                kwargs[key],
                f"{integration} records into the run given with run=; pass this to ll.start_run(...) for "
                "that run, or drop run= to let the integration start a run of its own",
            )
        if not (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
            raise InvalidValueError(
                "origin", origin, "give the dotted name the user called, e.g. 'pkg.track'"
            )
        self.integration = integration
        self.origin = origin
        self._kwargs = kwargs
        self._run = run
        self._owned = False

    def __repr__(self) -> str:
        run = self._run
        return f"<RunBinding of {self.integration} to {run.id[:12] if run is not None else 'no run yet'}>"

    @property
    def start_run_kwargs(self) -> dict[str, Any]:
        """The :func:`labledger.start_run` arguments of a run the binding starts (a copy)."""
        return dict(self._kwargs)

    @property
    def resolved(self) -> ll.Run | None:
        """The run once chosen or started, else ``None`` (never starts one)."""
        return self._run

    @property
    def owned(self) -> bool:
        """Whether the binding started the run itself (and ends it)."""
        return self._owned

    def get(self) -> ll.Run:
        """The run, chosen on first use: the given one, the active one, or a new one of its own.

        :raises labledger.errors.LabledgerError: the run could not be started (a bad experiment
            name, an unusable store); call it inside :class:`safe` to go on without it.
        """
        if self._run is None:
            active = ll.active_run()
            if active is not None:
                self._run = active
            else:
                self._run = ll.start_run(**self._kwargs, origin=self.origin, activate=False)
                self._owned = True
        return self._run

    def call(self, action: Callable[[ll.Run], T], what: str) -> T | None:
        """``action(run)`` inside :class:`safe`: a failure (starting the run included) is reported
        and gives ``None``.

        >>> binding.call(lambda run: run.log_params({"lr": 0.1}), "the params")  # doctest: +SKIP
        """
        with safe(self.integration, what):
            return action(self.get())
        return None

    def flush(self) -> None:
        """Write what the run holds in memory (nothing happens before a run was chosen)."""
        run = self._run
        if run is not None and not run.ended:
            with safe(self.integration, "the run's buffered records"):
                run.flush()

    def end(
        self, error: BaseException | None = None, *, status: str | None = None, detail: str | None = None
    ) -> None:
        """Training is over: end the run if the binding started it, else flush it.

        :param error: the exception that ended the training, if any: the status is
            :func:`final_status` of it and the stored error its traceback.
        :param status: the status instead (``finished``, ``failed`` or ``killed``).
        :param detail: the stored error text instead of the traceback.
        """
        run = self._run
        if run is None:
            return
        with safe(self.integration, "the end of the run"):
            if self._owned:
                run.end(status or final_status(error), error=error_text(error) if detail is None else detail)
            elif not run.ended:
                run.flush()

    def renewed(self) -> RunBinding:
        """A binding with the same settings and no run yet: the next training's run is chosen afresh.

        >>> binding = binding.renewed()  # a new fit, a new run  # doctest: +SKIP
        """
        fresh = RunBinding(integration=self.integration, origin=self.origin)
        fresh._kwargs = dict(self._kwargs)
        return fresh
