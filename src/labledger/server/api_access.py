"""Who a request to a labledger server acts as, and the errors of what they may not do.

A small middleware (:class:`BindAccess`, inside :class:`~labledger.server.auth.TokenAuth`) binds
the request's :class:`Access` with :func:`acting_as`; a :class:`contextvars.ContextVar` holds it,
so it follows the request into the thread pool where the store is called
(:class:`~labledger.server.scoped.ScopedBackend` reads it from there).

>>> with acting_as(Access(Principal("alice", "read"))):  # doctest: +SKIP
...     scoped.run_ids()
"""

from __future__ import annotations

import contextvars
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from labledger.errors import LabledgerError
from labledger.server.accounts import Principal

__all__ = [
    "Access",
    "AccessError",
    "Accounts",
    "BindAccess",
    "ExperimentIndex",
    "ExperimentNotFoundError",
    "PermissionDeniedError",
    "RunIdTakenError",
    "acting_as",
    "current_access",
    "denied",
]

#: Run id -> experiment entries an :class:`ExperimentIndex` remembers at most.
RUN_CACHE_SIZE = 200_000


class AccessError(LabledgerError):
    """A request may not do what it asked; ``status`` is the HTTP status it answers."""

    status = 403


class PermissionDeniedError(AccessError, PermissionError):
    """The caller may not do this: their role on the experiment, or their token's scope, is too weak."""

    def __init__(self, problem: str, experiment: str | None = None) -> None:
        self.experiment = experiment
        super().__init__(problem)


class ExperimentNotFoundError(AccessError, LookupError):
    """No experiment by that name that the caller may see (missing and forbidden read the same)."""

    status = 404

    def __init__(self, experiment: str) -> None:
        self.experiment = experiment
        super().__init__(f"no experiment {experiment!r} (or no permission to see it)")


class RunIdTakenError(LabledgerError):
    """A run was created with an id that a run of another experiment already has."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run id {run_id} is taken by a run of another experiment: start the run again")


class Accounts(Protocol):
    """What :class:`ScopedBackend` asks of the server's accounts."""

    def experiment_exists(self, name: str) -> bool:
        """Whether an experiment of that name exists (whoever may see it)."""

    def create_experiment(self, name: str, description: str | None, user: str) -> bool:
        """Create the experiment with ``user`` as its admin, atomically; whether it was created."""


@dataclass
class Access:
    """Who the current request acts as; ``renew()`` asks the accounts again (a role granted since
    the principal was cached), used once per request before a write is refused."""

    principal: Principal
    renew: Callable[[], Principal | None] | None = None

    def renewed(self) -> bool:
        """Look the principal up again (once per request); whether it was found."""
        if self.renew is None:
            return False
        fresh, self.renew = self.renew(), None
        if fresh is None:
            return False
        self.principal = fresh
        return True


_current: contextvars.ContextVar[Access | None] = contextvars.ContextVar("labledger_access", default=None)


def denied(principal: Principal, experiment: str, action: str) -> PermissionDeniedError:
    """The error refusing ``principal`` to ``action`` an experiment they may read, saying why."""
    from dataclasses import replace

    from labledger.server.accounts import allowed

    if allowed(replace(principal, scope="admin"), experiment, action):
        why = f"this token's scope is {principal.scope}: use a token of scope {action} or more"
    else:
        why = f"{principal.user} has no {action} permission on it: ask one of its admins for access"
    return PermissionDeniedError(f"cannot {action} experiment {experiment!r}: {why}", experiment)


def current_access() -> Access | None:
    """The :class:`Access` bound to the current request, or None."""
    return _current.get()


@contextmanager
def acting_as(access: Access | None) -> Iterator[Access | None]:
    """Bind ``access`` to the current context (and the threads it hands work to) for the block.

    >>> with acting_as(Access(Principal("alice", "read"))):  # doctest: +SKIP
    ...     scoped.run_ids()
    """
    token = _current.set(access)
    try:
        yield access
    finally:
        _current.reset(token)


class BindAccess:
    """ASGI middleware binding the principal :class:`~labledger.server.auth.TokenAuth` found
    (``scope["state"]["principal"]``) as the request's :class:`Access`; ``renew(token)`` looks a
    token up again, bypassing any cache.

    >>> app = TokenAuth(BindAccess(app, renew=accounts.authenticate), authenticate=...)  # doctest: +SKIP
    """

    def __init__(self, app: Any, renew: Callable[[str], Principal | None] | None = None) -> None:
        self.app = app
        self.renew = renew

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from labledger.server.auth import token_of

        principal = scope.get("state", {}).get("principal")
        if not isinstance(principal, Principal):
            await self.app(scope, receive, send)
            return
        token, renew = token_of(scope, cookie=True), self.renew
        again = (lambda: renew(token)) if renew is not None and token is not None else None
        with acting_as(Access(principal, again)):
            await self.app(scope, receive, send)


class ExperimentIndex:
    """What this process knows of which experiment a run belongs to, and of experiment ids'
    names: neither ever changes, so entries are kept (the oldest runs forgotten past
    :data:`RUN_CACHE_SIZE`). Thread-safe.

    >>> index = ExperimentIndex()
    >>> index.learn([{"id": "0123abcd", "experiment_id": 1, "experiment": "digits"}])
    >>> index.run("0123abcd"), index.experiment(1)
    ('digits', 'digits')
    """

    def __init__(self) -> None:
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()

    def learn(self, rows: Iterable[dict[str, Any]]) -> None:
        """Remember the run ids and experiment ids of run rows (``id``, ``experiment_id``, ``experiment``)."""
        with self._lock:
            for row in rows:
                if "experiment" not in row:
                    continue
                if "id" in row:
                    self._runs[str(row["id"])] = str(row["experiment"])
                if row.get("experiment_id") is not None:
                    self._names[int(row["experiment_id"])] = str(row["experiment"])
            while len(self._runs) > RUN_CACHE_SIZE:
                self._runs.popitem(last=False)

    def name(self, experiment_id: int, name: str) -> None:
        """Remember that experiment ``experiment_id`` is named ``name``."""
        with self._lock:
            self._names[experiment_id] = name

    def run(self, run_id: str) -> str | None:
        """The experiment of a run, when known."""
        with self._lock:
            return self._runs.get(run_id)

    def experiment(self, experiment_id: int) -> str | None:
        """The name of an experiment id, when known."""
        with self._lock:
            return self._names.get(experiment_id)
