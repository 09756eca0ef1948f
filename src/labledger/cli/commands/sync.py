"""The ``sync`` command: copy runs between stores, or send records left in the spool."""

from __future__ import annotations

import sys

import click

from labledger.cli.common import json_option, json_out, library_errors, store_option
from labledger.hooks.manager import hookimpl


@click.command()
@store_option
@click.option("--to", "target", metavar="URI", help="The store to copy into (a folder or a URI).")
@click.option("--experiment", "-e", metavar="NAME", help="Copy only this experiment's runs.")
@click.option(
    "--spool",
    is_flag=True,
    help="Send the records that processes which are gone left spooled for a server (--to: only that one).",
)
@json_option
@library_errors
def sync(store: str | None, target: str | None, experiment: str | None, spool: bool, as_json: bool) -> None:
    """Copy runs, with all their records and artifacts, from a store into another, or send
    spooled records to their server.

    Each record is copied once: syncing again, or after an interrupted sync, duplicates
    nothing. A running run is copied as it is and finished by a later sync.

    \b
    Examples:
        labledger sync --to https://ledger.example.com:8443
        labledger sync --store ./.labledger --to postgresql://labledger@db/ledger -e digits
        labledger sync --spool
    """
    if spool:
        _send_spools(target, as_json)
        return
    if not target:
        raise click.UsageError("give --to URI (the store to copy into), or --spool")
    from labledger.store import open_store
    from labledger.store.sync import sync as copy

    source = open_store(store, create=False)
    destination = open_store(target)
    if destination is source:
        raise click.UsageError("--to names the store the runs come from")

    def progress(done: int, total: int, run_id: str) -> None:
        if not as_json and sys.stderr.isatty():
            click.echo(f"\r{done}/{total} runs", nl=False, err=True)

    report = copy(source, destination, experiment=experiment, progress=progress)
    if not as_json and sys.stderr.isatty():
        click.echo("", err=True)
    if as_json:
        json_out(report.to_dict())
    else:
        click.echo(report.render())
    if report.conflicts:
        sys.exit(1)


def _send_spools(target: str | None, as_json: bool) -> None:
    from labledger.store.remote.spools import replay_spools

    outcomes = replay_spools(target)
    if as_json:
        json_out([vars(o) for o in outcomes])
    elif not outcomes:
        click.echo("no spooled records")
    for o in [] if as_json else outcomes:
        line = f"{o.url}: {o.sent} records sent, {o.rejected} refused, {o.left} left"
        if o.busy_folders:
            line += f" ({o.busy_folders} spools belong to running processes)"
        click.echo(line + (f" — {o.error}" if o.error else ""))
    if any(o.error or o.left for o in outcomes):
        sys.exit(1)


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    cli.add_command(sync)
