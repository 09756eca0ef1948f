"""The ``labledger`` command: a thin shell over the library.

Every command takes ``--store PATH`` (default ``$LABLEDGER_STORE`` or
``./.labledger``) and most take ``--json`` for scripts.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from labledger import formatting as fmt
from labledger.cli.common import json_option, json_out, library_errors, store_option
from labledger.cli.render import render_run, render_runs

F = TypeVar("F", bound=Callable[..., Any])


_library_errors = library_errors
_json_out = json_out


@click.group()
@click.version_option(package_name="labledger")
def main() -> None:
    """labledger: experiment tracking for machine learning.

    \b
    Example:
        labledger runs digits-svm
    """
    from labledger import settings
    from labledger.errors import SettingsError

    try:
        settings.check()
    except SettingsError as e:
        raise click.ClickException(str(e)) from e


@main.command()
@store_option
@json_option
@_library_errors
def experiments(store: str | None, as_json: bool) -> None:
    """List experiments with their run counts.

    \b
    Example:
        labledger experiments --json
    """
    from labledger.query.runs import experiments as list_experiments

    rows = list_experiments(store or None)
    if as_json:
        _json_out(rows)
        return
    click.echo(
        fmt.table(
            [(r["name"], r["runs"], r["running"] or 0, fmt.when(r["last_run"])) for r in rows],
            ["experiment", "runs", "running", "last run"],
        )
    )


def _damage_reported(f: F) -> F:
    """Print each damaged field a command met as one ``Error:`` line on stderr, after its output.

    The command still shows the run, with the field marked ``<damaged>``, and exits 0.
    """

    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from labledger.query.damage import DamagedRecordWarning

        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DamagedRecordWarning)
                return f(*args, **kwargs)
        finally:
            for w in caught:
                if issubclass(w.category, DamagedRecordWarning):
                    click.echo(f"Error: {w.message}", err=True)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    return wrapper  # type: ignore[return-value]


@main.command()
@click.argument("experiment", required=False)
@click.option(
    "--where", "-w", default=None, help="Filter, e.g. 'metrics.val_acc > 0.9 and params.model = \"svc\"'."
)
@click.option(
    "--order-by", "order_by", multiple=True, help="Sort by a field; '-' first for descending (repeatable)."
)
@click.option("--columns", "-c", default=None, help="Comma-separated fields to show instead of the headline.")
@click.option("--children/--no-children", default=True, help="Include nested (child) runs.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Show at most this many runs.")
@store_option
@json_option
@_library_errors
@_damage_reported
def runs(
    experiment: str | None,
    where: str | None,
    order_by: tuple[str, ...],
    columns: str | None,
    children: bool,
    limit: int | None,
    store: str | None,
    as_json: bool,
) -> None:
    """List runs (newest first) with their headline params and metrics.

    --where takes the filter language: params.<key>, metrics.<key>,
    folds.<key>[.mean|.std|.n], tags.<key>, dataset.train, pipeline, status,
    name, author, experiment, parent, start_time; =, !=, <, <=, >, >=, in (...),
    like, is null; and, or, not, parentheses.

    \b
    Example:
        labledger runs digits-svm --where 'folds.accuracy > 0.95 and status = "finished"' \\
            --order-by -folds.accuracy --columns name,params.C,folds.accuracy --limit 20
    """
    from labledger.query.runs import run_rows

    rows = run_rows(
        experiment,
        store or None,
        include_children=children,
        limit=limit,
        where=where,
        order_by=list(order_by),
    )
    fields = [c.strip() for c in columns.split(",") if c.strip()] if columns else []
    from labledger.store import open_store

    st = open_store(store or None, create=False)
    if fields:
        from labledger.query.listing import column_values

        values = column_values(st, rows, fields)
        picked = [{"id": r["id"], **v} for r, v in zip(rows, values, strict=True)]
        if as_json:
            _json_out(picked)
            return
        cells = [
            [fmt.short_id(p["id"], st)]
            + [
                fmt.mean_std(r["folds"][f[6:]]["mean"], r["folds"][f[6:]]["std"])
                if f.startswith("folds.") and f[6:] in r.get("folds", {})
                else fmt.value(p.get(f))
                for f in fields
            ]
            for p, r in zip(picked, rows, strict=True)
        ]
        click.echo(fmt.table(cells, ["id", *fields]) if rows else "no matching runs")
        return
    if as_json:
        _json_out(rows)
        return
    if not rows:
        scope = f" in experiment {experiment!r}" if experiment else ""
        click.echo(("no matching runs" if where else "no runs yet") + scope)
        return
    click.echo(render_runs(rows, st))


@main.command()
@click.argument("run_ref", metavar="RUN")
@store_option
@json_option
@_library_errors
@_damage_reported
def show(run_ref: str, store: str | None, as_json: bool) -> None:
    """Show everything about one run: params, metrics, folds, artifacts, children.

    RUN is a run id, a unique id prefix, or experiment/name.

    \b
    Example:
        labledger show digits-demo/svc-rbf-c10
    """
    from labledger.query.runs import get_run

    run = get_run(run_ref, store or None)
    online = _online_report(run)
    if as_json:
        data = run.to_dict()
        data["folds"] = [{"key": k, "split": s, **v} for (k, s), v in run.fold_stats.items()]
        if online is not None:
            data["online"] = online.to_dict()
        _json_out(data)
        return
    click.echo(render_run(run))
    if online is not None:
        click.echo("\n" + online.render())


def _online_report(run: Any) -> Any:
    """An online run's report (``None`` for offline runs); a missing extra becomes a warning."""
    if run.kind != "online":
        return None
    from labledger.online.report import OnlineExtraMissingError, online_report

    try:
        return online_report(run)
    except OnlineExtraMissingError as e:
        click.echo(f"online report not shown: {e}", err=True)
        return None


@main.command()
@click.option("--experiment", default="digits-demo", show_default=True)
@store_option
@_library_errors
def demo(experiment: str, store: str | None) -> None:
    """Track a small scikit-learn experiment on the bundled digits data, then list its runs.

    Several runs with different params, cross-validated fold scores, the
    fitted model as an artifact, and one run that fails on purpose.

    \b
    Example:
        labledger demo --store /tmp/ledger
    """
    try:
        from labledger.cli.demo import run_demo
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise click.ClickException(
            f"the demo needs scikit-learn ({e}); pip install 'labledger[sklearn]'"
        ) from e
    run_demo(experiment=experiment, store=store or None, echo=click.echo)


_commands_added_for: list[object] = []  # the plugin manager the CLI asked for commands


def _register_plugin_commands() -> None:
    """Register the built-in command modules as plugins, then let every plugin add commands.

    The hook is historic: a plugin registered afterwards adds its commands when it registers.
    Asked once per plugin manager (a rebuilt manager is asked again).
    """
    import pkgutil

    from labledger.cli import commands
    from labledger.hooks import manager as plugins

    pm = plugins.get_plugin_manager()
    if _commands_added_for and _commands_added_for[0] is pm:
        return
    for info in pkgutil.iter_modules(commands.__path__):
        plugins.register_builtin(f"labledger.cli.commands.{info.name}")
    plugins.call_historic("labledger_register_commands", cli=main)
    _commands_added_for[:] = [pm]


_register_plugin_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
