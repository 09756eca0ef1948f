"""The ``journal`` command: an experiment's hypotheses, results, verdicts and notes, in order."""

from __future__ import annotations

from pathlib import Path

import click

from labledger.cli.common import library_errors, store_option
from labledger.hooks.manager import hookimpl


@click.command()
@click.argument("experiment")
@click.option(
    "--metric", "-m", default=None, help="Fold metric the verdicts compare (default: the most logged)."
)
@click.option("--split", default="test", show_default=True, help="Which fold split.")
@click.option(
    "--markdown", "markdown", default=None, metavar="FILE", help="Write it as Markdown ('-': print)."
)
@store_option
@library_errors
def journal(experiment: str, metric: str | None, split: str, markdown: str | None, store: str | None) -> None:
    """The experiment's memory in one page: what was tried, what worked, and why.

    Each run with its hypothesis, result (fold mean ± std), verdict (the paired test against
    the run it follows — start_run(..., follows=run) — or against the leader, with McNemar's
    test when both stored predictions on the same examples), its notes, and the runs that
    followed it.

    \b
    Example:
        labledger journal digits-demo
        labledger journal digits-demo --markdown review.md
    """
    from labledger.analysis.journal import journal as make_journal

    result = make_journal(experiment, metric, split=split, store=store or None)
    if markdown == "-":
        click.echo(result.to_markdown())
        return
    if markdown:
        Path(markdown).write_text(result.to_markdown(), encoding="utf-8")
        click.echo(f"wrote {markdown}")
        return
    click.echo(result.render())


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.argument("text")
@click.option("--author", default=None, help="Who wrote it (default: the current user).")
@store_option
@library_errors
def note(run_ref: str, text: str, author: str | None, store: str | None) -> None:
    """Add a note to a run — ended ones too: what an analysis found afterwards, with its time and
    author. The journal shows it.

    \b
    Example:
        labledger note digits-demo/svc-rbf-c1 "digit 6 is its weakest slice; try a smoother kernel"
    """
    from labledger.tracking.notes import add_note

    stored = add_note(run_ref, text, author=author, store=store or None)
    click.echo(f"noted on {run_ref} by {stored['author']}")


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    cli.add_command(journal)
    cli.add_command(note)
