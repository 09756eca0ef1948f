"""The ``ui`` command: serve the dashboard and its JSON API over a store, read-only (``labledger[ui]``)."""

from __future__ import annotations

import importlib.util
import ipaddress

import click

from labledger.cli.common import library_errors, store_option
from labledger.hooks.manager import hookimpl

MISSING = (
    "labledger ui needs Starlette, uvicorn and Jinja2, which are not installed. "
    'Install the ui extra: pip install "labledger[ui]"'
)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option(
    "--port", default=5100, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the dashboard in a web browser.")
@library_errors
def ui(store: str | None, host: str, port: int, open_browser: bool) -> None:
    """Serve a store read-only over HTTP: the dashboard, and its JSON API under /api/.

    Binds to 127.0.0.1 unless --host says otherwise; there is no authentication,
    so binding to another address prints a warning. Stop it with Ctrl-C.

    \b
    Example:
        labledger ui --store /tmp/ledger --port 5100 --open
    """
    if any(importlib.util.find_spec(m) is None for m in ("starlette", "uvicorn", "jinja2")):
        raise click.ClickException(MISSING)
    import uvicorn

    from labledger.store import default_store_path
    from labledger.ui import create_app

    app = create_app(store or None)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    click.echo(f"labledger ui: serving {store or default_store_path()} read-only at {url}", nl=True)
    click.echo("Press Ctrl-C to stop.")
    if not _loopback(host):
        click.secho(
            f"Warning: listening on {host}, not loopback: anyone who can reach it reads the store "
            "(there is no authentication).",
            err=True,
            fg="yellow",
        )
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    cli.add_command(ui)
