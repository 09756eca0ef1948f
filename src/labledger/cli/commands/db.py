"""The ``db`` commands: look after the PostgreSQL database of a labledger server (``labledger[server]``)."""

from __future__ import annotations

import click

from labledger.cli.common import library_errors
from labledger.hooks.manager import hookimpl


@click.group()
def db() -> None:
    """Look after the PostgreSQL database of a labledger server.

    \b
    Example:
        labledger db upgrade --backend postgresql://labledger@db.example.com/ledger
    """


@db.command(short_help="Create or upgrade the database's schema.")
@click.option(
    "--backend",
    required=True,
    metavar="URI",
    help="The database, e.g. postgresql://user@host:5432/ledger (the password may come from ~/.pgpass).",
)
@library_errors
def upgrade(backend: str) -> None:
    """Bring the database's schema to this labledger's version (creating it in an empty database).

    Each migration is one transaction; running it again, or from several machines
    at once, is safe. A database a newer labledger upgraded is refused.

    \b
    Example:
        labledger db upgrade --backend postgresql://labledger@db.example.com/ledger
    """
    from labledger.store.postgres import connect, is_postgres, redact
    from labledger.store.postgres import upgrade as upgrade_schema

    if not is_postgres(backend):
        raise click.ClickException(
            f"--backend {redact(backend)!r} is not a PostgreSQL URI: give "
            "postgresql://user@host:port/database (a store folder is upgraded when labledger opens it)."
        )
    with connect(backend) as conn:
        before, after = upgrade_schema(conn)
    click.echo(f"schema version {before} → {after}" if after != before else f"already at version {after}")


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    cli.add_command(db)
