"""The ``online`` commands: the report of an online experiment, and planning one."""

from __future__ import annotations

from pathlib import Path

import click

from labledger.cli.common import json_option, json_out, library_errors, store_option
from labledger.hooks.manager import hookimpl


@click.group()
def online() -> None:
    """Online experiments: A/B tests, interleaving and bandits (pip install 'labledger[online]').

    \b
    Example:
        labledger online report ranker-v7-vs-v6
        labledger online plan --baseline 0.10 --mde 0.01 --power 0.8
    """


@online.command()
@click.argument("ref", metavar="EXPERIMENT | RUN")
@click.option(
    "--html", "html_path", default=None, metavar="FILE", help="Also write the report as an HTML page."
)
@store_option
@json_option
@library_errors
def report(ref: str, html_path: str | None, store: str | None, as_json: bool) -> None:
    """The full report of an online experiment: sample ratio mismatch first, each metric's
    lift with its interval, the always-valid (mSPRT) p-values, the verdicts, and the offline
    runs behind each variant with their CV and backtest fold means ± std.

    EXPERIMENT gives its newest online run; RUN is a run id, prefix or experiment/name.

    \b
    Example:
        labledger online report ranker-v7-vs-v6 --html report.html
    """
    from labledger.online.record import find_online
    from labledger.online.report import online_report

    result = online_report(find_online(ref, store or None))
    if html_path:
        Path(html_path).write_text(result.to_html(), encoding="utf-8")
    if as_json:
        json_out(result.to_dict())
        return
    click.echo(result.render())
    if html_path:
        click.echo(f"\nwrote {html_path}")


@online.command()
@click.option("--baseline", type=float, default=None, help="The control's conversion rate, e.g. 0.10.")
@click.option("--std", type=float, default=None, help="Instead of --baseline: a mean metric's per-unit std.")
@click.option("--mde", type=float, required=True, help="Smallest change worth detecting (absolute).")
@click.option("--relative", is_flag=True, help="--mde is a fraction of the baseline (0.05 = 5 % lift).")
@click.option("--power", type=float, default=0.8, show_default=True)
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option(
    "--ratio", type=float, default=1.0, show_default=True, help="Units in treatment per control unit."
)
@json_option
@library_errors
def plan(
    baseline: float | None,
    std: float | None,
    mde: float,
    relative: bool,
    power: float,
    alpha: float,
    ratio: float,
    as_json: bool,
) -> None:
    """Units per variant a two-sided test needs to detect --mde with --power.

    \b
    Example:
        labledger online plan --baseline 0.10 --mde 0.01 --power 0.8
        labledger online plan --std 12.5 --mde 0.5
    """
    from labledger.online.power import sample_size, sample_size_means

    if (baseline is None) == (std is None):
        raise click.UsageError("give --baseline (a conversion rate) or --std (a mean metric), not both")
    if baseline is not None:
        n = sample_size(baseline, mde, power=power, alpha=alpha, relative=relative, ratio=ratio)
        what = f"a rate of {baseline:g} → {baseline * (1 + mde) if relative else baseline + mde:g}"
    else:
        if relative:
            raise click.UsageError("--relative applies to --baseline only")
        n = sample_size_means(std, mde, power=power, alpha=alpha, ratio=ratio)  # type: ignore[arg-type]
        what = f"a change of {mde:g} in a mean with std {std:g}"
    treated = int(-(-n * ratio // 1))
    if as_json:
        json_out({"control": n, "treatment": treated, "total": n + treated, "power": power, "alpha": alpha})
        return
    click.echo(
        f"{n:,} units in the control and {treated:,} in the treatment ({n + treated:,} in all) detect "
        f"{what} with {power:.0%} power at alpha {alpha:g} (two-sided)"
    )


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    cli.add_command(online)
