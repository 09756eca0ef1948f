"""The ``server`` command: serve a store over HTTP, its API and dashboard (``labledger[server]``)."""

from __future__ import annotations

import importlib.util
import os
import socket
from typing import TYPE_CHECKING, Any

import click

from labledger.cli.commands.ui import _loopback
from labledger.cli.common import library_errors
from labledger.hooks.manager import hookimpl

if TYPE_CHECKING:
    from labledger.server.app import ServerSettings

MISSING = (
    "labledger server needs Starlette, uvicorn, Jinja2 and psycopg, which are not installed. "
    'Install the server extra: pip install "labledger[server,ui]"'
)
PROXY_DOCS = "docs/server.md, section 'TLS through a reverse proxy'"


def _size(text: str) -> int:
    """``64MiB``, ``5GiB``, ``1000000`` → bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    raw = text.strip().lower().removesuffix("b").removesuffix("i")
    factor = units.get(raw[-1:], 1) if raw else 1
    number = raw[:-1] if raw[-1:] in units else raw
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size (give bytes, or e.g. 64MiB, 5GiB)") from None
    if value <= 0:
        raise click.BadParameter(f"{text!r}: give a positive size")
    return value


def _check_binding(host: str, tls: bool, insecure: bool, no_auth: bool) -> None:
    loopback = _loopback(host)
    if no_auth and not loopback:
        raise click.ClickException(
            f"--no-auth serves every run to anyone who can connect: it is refused on {host}. "
            "Bind to 127.0.0.1 (the default), or serve a PostgreSQL database with accounts."
        )
    if not loopback and not tls and not insecure:
        raise click.ClickException(
            f"refusing to listen on {host} without TLS: API tokens would cross the network in clear. "
            "Give --tls-cert FILE --tls-key FILE, or put a reverse proxy that terminates TLS in front "
            f"and pass --insecure (see {PROXY_DOCS})."
        )


def _prepare(backend: str, artifacts: str | None) -> None:
    """Upgrade an older PostgreSQL schema and record the artifacts location for direct users."""
    from labledger.store.postgres import connect, is_postgres
    from labledger.store.postgres import upgrade as upgrade_schema
    from labledger.store.postgres.store import ARTIFACTS_SETTING, PostgresStore

    if not is_postgres(backend):
        return
    with connect(backend) as conn:
        before, after = upgrade_schema(conn)
    if after != before:
        click.echo(f"labledger server: database schema upgraded from version {before} to {after}")
    if artifacts:
        store = PostgresStore(backend, artifacts=artifacts)
        try:
            if store.setting(ARTIFACTS_SETTING) != artifacts:
                store.set_setting(ARTIFACTS_SETTING, artifacts)
        finally:
            store.close()


@click.command()
@click.option("--backend", required=True, metavar="URI", help="postgresql://user@host/db, or a store folder.")
@click.option(
    "--artifacts", metavar="URI", help="Where artifact bytes go: s3://bucket/prefix or file:///folder."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 256), help="Server processes."
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option(
    "--insecure", is_flag=True, help="Serve plain HTTP on a non-loopback address (behind a TLS proxy)."
)
@click.option("--no-auth", is_flag=True, help="No accounts: everyone may read and write (loopback only).")
@click.option("--max-body", default="64MiB", show_default=True, help="Largest API call or metric batch.")
@click.option("--max-object", default="5GiB", show_default=True, help="Largest artifact upload.")
@click.option(
    "--auth-cache", default=5.0, show_default=True, type=click.FloatRange(min=0), metavar="SECONDS",
    help="How long a token's lookup is remembered (a revoked token works that long; 0: never).",
)  # fmt: skip
@library_errors
def server(
    backend: str,
    artifacts: str | None,
    host: str,
    port: int,
    workers: int,
    tls_cert: str | None,
    tls_key: str | None,
    insecure: bool,
    no_auth: bool,
    max_body: str,
    max_object: str,
    auth_cache: float,
) -> None:
    """Serve a store to a team: the HTTP API clients log through, and the dashboard.

    The PostgreSQL schema is upgraded first when it is older than this labledger.
    Every request needs an API token (labledger token create) unless --no-auth,
    which only loopback may use. Another address than loopback needs TLS
    (--tls-cert and --tls-key) or --insecure behind a TLS proxy.

    \b
    Example:
        labledger server --backend postgresql://labledger@db/ledger \\
            --artifacts s3://ledger/artifacts --host 0.0.0.0 --workers 4 \\
            --tls-cert cert.pem --tls-key key.pem
    """
    if any(importlib.util.find_spec(m) is None for m in ("starlette", "uvicorn", "jinja2")):
        raise click.ClickException(MISSING)
    if (tls_cert is None) != (tls_key is None):
        raise click.ClickException("give both --tls-cert and --tls-key (or neither)")
    _check_binding(host, tls_cert is not None, insecure, no_auth)
    from labledger.server.app import ServerSettings, app_from_environment
    from labledger.store.postgres import is_postgres, redact

    if not is_postgres(backend) and not no_auth:
        raise click.ClickException(
            "a store folder has no accounts (they live in PostgreSQL), so the server cannot check "
            "tokens: pass --no-auth to serve it on loopback to yourself, or serve a PostgreSQL database."
        )
    settings = ServerSettings(backend, artifacts, no_auth, _size(max_body), _size(max_object), auth_cache)
    _prepare(backend, artifacts)
    os.environ.update(settings.environment())
    if workers == 1:
        app: Any = app_from_environment()
    else:  # each worker builds its own; fail here, with a clear message, on what they would fail on
        _check_backend(settings)
        app = "labledger.server.app:app_from_environment"
    _serve(app, host, port, workers, tls_cert, tls_key, redact(backend))


def _check_backend(settings: ServerSettings) -> None:
    from labledger.server.app import open_backend

    store, _, accounts = open_backend(settings)
    try:
        if accounts is not None:
            accounts.schema_version()
    finally:
        for held in (store, accounts):
            close = getattr(held, "close", None)
            if callable(close):
                close()


def _tcp(sock: socket.socket) -> socket.socket:
    """The listening socket with TCP as its protocol number, so that asyncio sets ``TCP_NODELAY``
    on the connections it accepts (uvicorn binds with protocol 0: without ``TCP_NODELAY`` every
    request on a kept-alive connection waits ~40 ms for the client's delayed acknowledgement)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto == socket.IPPROTO_TCP:
        return sock
    return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


def _serve(
    app: Any, host: str, port: int, workers: int, cert: str | None, key: str | None, shown: str
) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=cert,
        ssl_keyfile=key,
        log_level="warning",
        proxy_headers=True,
    )
    sock = _tcp(config.bind_socket())
    scheme = "https" if cert else "http"
    where = f"[{host}]" if ":" in host else host
    click.echo(f"labledger server: serving {shown} at {scheme}://{where}:{port}/ ({workers} worker(s))")
    server_ = uvicorn.Server(config)
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        server_.run(sockets=[sock])


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    cli.add_command(server)
