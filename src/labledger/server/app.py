"""The labledger server as one ASGI app: the API (:mod:`labledger.server.api`), the dashboard
(:func:`labledger.ui.app.create_app`) and, with accounts, the login pages, all behind
:class:`~labledger.server.auth.TokenAuth` and over one :class:`~labledger.server.scoped.ScopedBackend`,
so pages and API show each user only what they may read.

The server keeps no state of its own beyond caches: several processes (``--workers``) or hosts
may serve one database. :func:`app_from_environment` builds the app in each uvicorn worker
from the variable :class:`ServerSettings` names.

>>> import uvicorn
>>> uvicorn.run("labledger.server.app:app_from_environment", factory=True, workers=4)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labledger.errors import SettingsError, StoreError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from labledger.server.api_accounts import PostgresAccounts
    from labledger.store.backend import Backend
    from labledger.store.objects.base import ObjectStore

__all__ = ["ServerSettings", "app_from_environment", "create_server_app", "open_backend"]

#: Read tokens may ``POST`` under these prefixes (reads whose arguments travel in the body).
SAFE_PATHS = ("/api/v1/read/",)


def create_server_app(
    store: Backend,
    *,
    objects: ObjectStore | None,
    accounts: PostgresAccounts | None = None,
    max_body: int | None = None,
    max_object: int | None = None,
    auth_cache_ttl: float = 5.0,
    schema: int | None = None,
) -> Starlette:
    """The server's app over ``store``; artifact bytes go to ``objects``.

    :param accounts: the server's accounts (anything with ``authenticate(token)``,
        ``experiment_exists(name)`` and ``create_experiment(name, description, user)``); ``None`` serves
        everything to everyone (``--no-auth``: loopback only).
    :param max_body: the largest call or metric batch taken, in bytes (default 64 MiB).
    :param max_object: the largest object upload taken, in bytes (default 5 GiB).
    :param auth_cache_ttl: seconds a token's lookup is remembered (``0``: asked every request).
    :param schema: the database's schema version, shown by ``/api/v1/info``.

    >>> from starlette.testclient import TestClient
    >>> app = create_server_app(open_store("/tmp/ledger"), objects=open_objects("/tmp/ledger/artifacts"))
    ... # doctest: +SKIP
    >>> TestClient(app).get("/api/v1/info").json()["api"]  # doctest: +SKIP
    1
    """
    from starlette.applications import Starlette
    from starlette.routing import BaseRoute, Mount

    from labledger.server.api import MAX_BODY, MAX_OBJECT, Api, ApiConfig
    from labledger.server.api_access import BindAccess
    from labledger.server.auth import PUBLIC_PATHS, TokenAuth
    from labledger.server.login import LOGIN_PATHS, login_routes
    from labledger.server.scoped import ScopedBackend
    from labledger.ui.app import create_app
    from labledger.ui.security import SecurityHeaders

    scoped = ScopedBackend(store, accounts)
    config = ApiConfig(
        artifacts=objects.uri if objects is not None else None,
        schema=schema,
        max_body=max_body or MAX_BODY,
        max_object=max_object or MAX_OBJECT,
        spool=store.path / "uploads",
    )
    routes: list[BaseRoute] = Api(scoped, objects, config).routes()
    if accounts is not None:
        routes += login_routes(accounts.authenticate)
    routes.append(Mount("", app=create_app(scoped)))  # type: ignore[arg-type]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for held in (store, accounts):
            close = getattr(held, "close", None)
            if callable(close):
                close()

    inner = Starlette(routes=routes)
    inner.state.store = scoped
    if accounts is None:
        app: Any = inner
    else:
        app = TokenAuth(
            BindAccess(inner, renew=accounts.authenticate),
            authenticate=accounts.authenticate,
            cache_ttl=auth_cache_ttl,
            public=PUBLIC_PATHS | LOGIN_PATHS,
            safe_paths=SAFE_PATHS,
            login_path="/login",
        )
    secured: Any = SecurityHeaders(app)
    outer = Starlette(routes=[Mount("", app=secured)], lifespan=lifespan)
    outer.state.store = scoped
    return outer


@dataclass(frozen=True)
class ServerSettings:
    """What a server process is started with; travels to uvicorn's workers as one environment
    variable, :data:`VARIABLE` (JSON).

    >>> env = ServerSettings("postgresql://db/ledger", "s3://ledger/artifacts").environment()
    >>> ServerSettings.from_environment(env).artifacts
    's3://ledger/artifacts'
    """

    backend: str
    artifacts: str | None = None
    no_auth: bool = False
    max_body: int | None = None
    max_object: int | None = None
    auth_cache_ttl: float = 5.0

    #: The variable ``labledger server`` sets for its worker processes.
    VARIABLE: ClassVar[str] = "LABLEDGER_SERVER_CONFIG"

    def environment(self) -> dict[str, str]:
        """``{VARIABLE: JSON}``, which :meth:`from_environment` reads back."""
        return {self.VARIABLE: json.dumps(asdict(self))}

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        """The settings in ``env`` (default ``os.environ``).

        :raises SettingsError: the variable is missing or malformed.
        """
        text = (os.environ if env is None else env).get(cls.VARIABLE, "").strip()
        if not text:
            raise SettingsError(cls.VARIABLE, "", "name the server's store (labledger server sets it)")
        try:
            values = json.loads(text)
            settings = cls(**values)
        except (ValueError, TypeError) as e:
            raise SettingsError(cls.VARIABLE, text[:80], f"the JSON labledger server writes ({e})") from None
        if not isinstance(settings.backend, str) or not settings.backend:
            raise SettingsError(cls.VARIABLE, text[:80], "a backend URI or folder")
        return settings


def open_backend(settings: ServerSettings) -> tuple[Backend, ObjectStore, PostgresAccounts | None]:
    """The store, the object store and the accounts ``settings`` name.

    A PostgreSQL store needs ``artifacts`` and has accounts (unless ``no_auth``); a store
    folder keeps its artifacts in its own ``artifacts`` folder and has no accounts.

    :raises StoreError: the combination cannot be served.
    """
    from labledger.store.objects import open_objects
    from labledger.store.postgres import is_postgres, redact

    if is_postgres(settings.backend):
        if not settings.artifacts:
            raise StoreError(
                redact(settings.backend), "give --artifacts s3://bucket/prefix or file:///folder"
            )
        from labledger.server.api_accounts import PostgresAccounts
        from labledger.store.postgres.store import PostgresStore

        store: Backend = PostgresStore(settings.backend, artifacts=settings.artifacts)
        accounts = None if settings.no_auth else PostgresAccounts(settings.backend)
        return store, open_objects(settings.artifacts), accounts
    from labledger.store import open_store
    from labledger.store.objects import FileObjectStore

    if not settings.no_auth:
        raise StoreError(
            settings.backend,
            "a store folder has no accounts (they live in PostgreSQL): serve it with --no-auth on "
            "loopback, or serve a PostgreSQL database",
        )
    if settings.artifacts:
        raise StoreError(
            settings.backend, "a store folder keeps its artifacts in its own folder: drop --artifacts"
        )
    local = open_store(settings.backend)
    local.create()
    return local, FileObjectStore(Path(local.blobs.root)), None


def app_from_environment() -> Starlette:
    """The server's app as :class:`ServerSettings` in the environment describe it (a uvicorn factory).

    >>> uvicorn.run("labledger.server.app:app_from_environment", factory=True, workers=2)  # doctest: +SKIP
    """
    settings = ServerSettings.from_environment()
    store, objects, accounts = open_backend(settings)
    if accounts is not None:
        schema: int | None = accounts.schema_version()
    else:
        version = getattr(store, "schema_version", None)
        schema = version() if callable(version) else None
    return create_server_app(
        store,
        objects=objects,
        accounts=accounts,
        max_body=settings.max_body,
        max_object=settings.max_object,
        auth_cache_ttl=settings.auth_cache_ttl,
        schema=schema,
    )
