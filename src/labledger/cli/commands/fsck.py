"""The ``fsck`` command: check a store, and repair what can be repaired."""

from __future__ import annotations

import sys

import click

from labledger.cli.common import json_option, json_out, library_errors, store_option
from labledger.hooks.manager import hookimpl


@click.command()
@click.option("--repair", is_flag=True, help="Remove orphaned blobs and leftover temporary files.")
@store_option
@json_option
@library_errors
def fsck(repair: bool, store: str | None, as_json: bool) -> None:
    """Check the store: database integrity, damaged rows, every blob's hash, orphaned and
    missing blobs, leftover temporary files.

    Exits with status 1 while problems remain. --repair removes orphaned blobs
    and leftover temporary files, and says what it cannot repair. Reading
    only, it works on a store on read-only media and beside running writers.

    \b
    Example:
        labledger fsck --store /tmp/ledger --repair
    """
    from labledger.store.fsck import fsck as check

    report = check(store or None, repair=repair)
    if as_json:
        json_out(report.to_dict())
    else:
        click.echo(report.render())
    if not report.ok:
        sys.exit(1)


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    cli.add_command(fsck)
