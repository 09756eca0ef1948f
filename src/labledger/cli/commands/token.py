"""The ``token``, ``grant`` and ``group`` commands: API tokens and experiment permissions of a
labledger server, kept in its PostgreSQL database (``labledger[server]``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from labledger.cli.common import json_option, json_out, library_errors
from labledger.hooks.manager import hookimpl

if TYPE_CHECKING:
    import psycopg

LEVELS = ("read", "write", "admin")

backend_option = click.option(
    "--backend",
    required=True,
    metavar="URI",
    help="The server's database, e.g. postgresql://user@host:5432/ledger (password: ~/.pgpass).",
)


@contextmanager
def _database(backend: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the server's database at the accounts' schema; database errors in one line."""
    import psycopg

    from labledger.server.accounts import check_schema
    from labledger.store.postgres import connect, is_postgres, redact
    from labledger.store.postgres.connection import one_line

    if not is_postgres(backend):
        raise click.ClickException(
            f"--backend {redact(backend)!r} is not a PostgreSQL URI: give postgresql://user@host:port/database"
        )
    with connect(backend) as conn:
        try:
            check_schema(conn)
            yield conn
        except psycopg.Error as e:
            raise click.ClickException(f"database {redact(backend)}: {one_line(e)}") from e


@click.group()
def token() -> None:
    """Create, list and revoke the API tokens of a labledger server.

    \b
    Example:
        labledger token create --backend postgresql://db.example.com/ledger --user alice --scope write
    """


@token.command(short_help="Create a token and print it (once).")
@backend_option
@click.option("--user", required=True, help="Whose token it is (names ignore case).")
@click.option("--scope", required=True, type=click.Choice(LEVELS), help="The most the token may do.")
@click.option("--name", default=None, help="What the token is for (default: '<scope> token').")
@click.option("--expires-in", type=click.IntRange(min=1), metavar="DAYS", help="Expire after DAYS days.")
@click.option("--create-user", is_flag=True, help="Create the user when there is none by that name.")
@library_errors
def create(
    backend: str, user: str, scope: str, name: str | None, expires_in: int | None, create_user: bool
) -> None:
    """Create an API token for a user and print it: the only time it is shown (only its hash
    is stored). The token is the last word of the output.

    \b
    Example:
        labledger token create --backend postgresql://db.example.com/ledger --user alice --scope read
    """
    from datetime import timedelta

    from labledger.server import accounts

    expires = timedelta(days=expires_in) if expires_in else None
    with _database(backend) as conn, conn.transaction():
        if accounts.find_user(conn, user) is None:
            if not create_user:
                raise click.ClickException(f"no user {user!r}: add --create-user to create it")
            accounts.create_user(conn, user)
            click.echo(f"created user {user}")
        secret = accounts.create_token(conn, user, scope, name=name, expires=expires)
    until = f", expires in {expires_in} days" if expires_in else ""
    click.echo(f"{scope} token for {user}{until}; store it now, it is not shown again:")
    click.echo(secret)


@token.command(short_help="Revoke a token: it stops working at once.")
@backend_option
@click.argument("token_ref", metavar="TOKEN_ID_OR_PREFIX")
@library_errors
def revoke(backend: str, token_ref: str) -> None:
    """Revoke a token, given by its id or its prefix (as ``labledger token list`` shows them).

    \b
    Example:
        labledger token revoke --backend postgresql://db.example.com/ledger ll_Jx0abcd
    """
    from labledger.server import accounts

    with _database(backend) as conn, conn.transaction():
        info = accounts.find_token(conn, token_ref)
        done = accounts.revoke_token(conn, info.id)
    what = f"token {info.id} ({info.prefix or 'no prefix'}, {info.name!r} of {info.user})"
    click.echo(f"revoked {what}" if done else f"{what} was revoked already")


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


@token.command(name="list", short_help="List tokens (never their secrets).")
@backend_option
@click.option("--user", default=None, help="Only this user's tokens.")
@json_option
@library_errors
def list_(backend: str, user: str | None, as_json: bool) -> None:
    """List the tokens, revoked ones included, oldest first; secrets are never stored nor shown.

    \b
    Example:
        labledger token list --backend postgresql://db.example.com/ledger --user alice
    """
    from dataclasses import asdict

    from labledger import formatting as fmt
    from labledger.server import accounts

    with _database(backend) as conn:
        tokens = accounts.list_tokens(conn, user=user)
    if as_json:
        json_out([asdict(t) for t in tokens])
        return
    rows = [
        (t.id, t.prefix or "", t.user, t.name, t.scope, _when(t.created_at), _when(t.last_used_at),
         _when(t.expires_at), "revoked" if t.revoked_at else "")
        for t in tokens
    ]  # fmt: skip
    headers = ["id", "prefix", "user", "name", "scope", "created", "last used", "expires", "state"]
    click.echo(fmt.table(rows, headers))


@click.command(short_help="Give a user or group a role on an experiment.")
@backend_option
@click.option("--experiment", required=True, help="The experiment's name.")
@click.option("--user", default=None, help="The user given the role.")
@click.option("--group", default=None, help="The group given the role.")
@click.option("--role", type=click.Choice(LEVELS), default=None, help="read, write (and read) or admin.")
@click.option("--remove", is_flag=True, help="Take the user's or group's role away instead.")
@library_errors
def grant(
    backend: str, experiment: str, user: str | None, group: str | None, role: str | None, remove: bool
) -> None:
    """Give a user or a group a role on an experiment (replacing the one they had), or take it
    away with --remove. An experiment nobody was given is seen by the administrators only.

    \b
    Example:
        labledger grant --backend postgresql://db/ledger --experiment digits --group vision --role read
    """
    from labledger.server import accounts

    if (user is None) == (group is None):
        raise click.UsageError("give either --user or --group")
    if (role is None) != remove:
        raise click.UsageError("give --role, or --remove to take the role away")
    who = f"user {user}" if user else f"group {group}"
    with _database(backend) as conn, conn.transaction():
        if remove:
            done = accounts.revoke_grant(conn, experiment, user=user, group=group)
            click.echo(f"{who} {'lost its' if done else 'had no'} role on {experiment}")
            return
        assert role is not None
        accounts.grant(conn, experiment, user=user, group=group, role=role)
    click.echo(f"{who} may {role} experiment {experiment}")


@click.command(short_help="Put users in a group (creating it), or take them out.")
@backend_option
@click.argument("group_name", metavar="GROUP")
@click.argument("users", nargs=-1)
@click.option("--remove", is_flag=True, help="Take the users out of the group instead.")
@library_errors
def group(backend: str, group_name: str, users: tuple[str, ...], remove: bool) -> None:
    """Put users in a group, creating the group when there is none; --remove takes them out.

    \b
    Example:
        labledger group --backend postgresql://db.example.com/ledger vision alice bob
    """
    from labledger.server import accounts

    created = False
    with _database(backend) as conn, conn.transaction():
        if remove:
            for user in users:
                accounts.remove_from_group(conn, group_name, user)
        else:
            try:
                accounts.create_group(conn, group_name)
                created = True
            except accounts.AccountExistsError:
                pass
            for user in users:
                accounts.add_to_group(conn, group_name, user)
    if created:
        click.echo(f"created group {group_name}")
    if users:
        moved = "took {} out of group {}" if remove else "added {} to group {}"
        click.echo(moved.format(", ".join(users), group_name))


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    cli.add_command(token)
    cli.add_command(grant)
    cli.add_command(group)
