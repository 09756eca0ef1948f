"""The ``plugins`` command: what is loaded, where it came from, and the hooks each implements."""

from __future__ import annotations

import click

from labledger.cli.common import json_option, json_out
from labledger.hooks.manager import hookimpl


@click.command(name="plugins")
@json_option
def plugins_command(as_json: bool) -> None:
    """List the loaded plugins: name, where each came from (built-in, entry point, registered
    in code), its distribution and version, and the hooks it implements.

    LABLEDGER_DISABLE_PLUGINS=name,other blocks plugins by name; LABLEDGER_TRACE_PLUGINS=1
    prints every hook call.

    \b
    Example:
        labledger plugins --json
    """
    from labledger.hooks.manager import list_plugins

    listed = list_plugins()
    if as_json:
        json_out(listed)
        return
    from labledger import formatting as fmt

    rows = [
        (
            p["name"],
            p["source"],
            f"{p['distribution']} {p['version']}" if p["distribution"] else "",
            ", ".join(h.removeprefix("labledger_") for h in p["hooks"]),
        )
        for p in listed
    ]
    click.echo(fmt.table(rows, ["plugin", "from", "distribution", "hooks"]))


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    cli.add_command(plugins_command)
