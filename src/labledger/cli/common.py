"""Pieces shared by the core CLI and the command plugins (kept apart so plugins need not import cli)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from labledger.errors import LabledgerError

F = TypeVar("F", bound=Callable[..., Any])


def library_errors(f: F) -> F:
    """Turn labledger's errors into clean ``click`` errors (message, exit status 1, no traceback)."""

    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except LabledgerError as e:
            raise click.ClickException(str(e)) from e

    return wrapper  # type: ignore[return-value]


def json_out(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, allow_nan=True))


store_option = click.option(
    "--store",
    envvar="LABLEDGER_STORE",
    default=None,
    metavar="PATH",
    help="Store folder (default: $LABLEDGER_STORE or ./.labledger).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
