"""CLI commands about reproducibility: ``audit``, ``reproduce``, ``verify``, ``diff``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from labledger import formatting as fmt
from labledger.cli.common import json_option, store_option
from labledger.cli.common import json_out as _json_out
from labledger.cli.common import library_errors as _library_errors
from labledger.hooks.manager import hookimpl


@click.command()
@click.argument("experiment", required=False)
@click.option("--incomplete", is_flag=True, help="List only runs that lack something.")
@store_option
@json_option
@_library_errors
def audit(experiment: str | None, incomplete: bool, store: str | None, as_json: bool) -> None:
    """List runs with what each lacks of the nine parts of an experiment.

    The parts: dataset version, feature pipeline version, model type,
    hyperparameters, training configuration, evaluation metrics, random seeds,
    artifacts, notes/hypothesis. Child runs are covered by their parent.

    \b
    Example:
        labledger audit digits-demo --incomplete
    """
    from labledger.query.runs import get_run, run_rows

    rows = run_rows(experiment, store or None, include_children=False)
    reports = []
    for r in rows:
        report = get_run(r["id"], store or None).completeness
        if incomplete and report.complete:
            continue
        reports.append((r, report))
    if as_json:
        _json_out(
            [
                {
                    "id": r["id"],
                    "experiment": r["experiment"],
                    "name": r["name"],
                    "status": r["status"],
                    **rep.to_dict(),
                }
                for r, rep in reports
            ]
        )
        return
    if not reports:
        click.echo("no runs to audit" if not rows else "every run is complete")
        return
    click.echo(
        fmt.table(
            [
                (
                    fmt.short_id(r["id"]),
                    r["experiment"],
                    r["name"],
                    r["status"],
                    rep.score,
                    ", ".join(rep.missing) or "-",
                )
                for r, rep in reports
            ],
            ["id", "experiment", "name", "status", "complete", "missing"],
        )
    )


def _render_plan(plan: dict[str, Any]) -> str:
    out = [click.style(f"reproduce {plan['name']}", bold=True) + f"  ({plan['run']})", ""]
    code = plan.get("code")
    out.append("code")
    if code and code.get("commit"):
        out.append(
            f"  {code['checkout']}   (branch {code.get('branch')}, remote {code.get('remote') or '-'})"
        )
        if code.get("diff_artifact"):
            out.append(
                f"  uncommitted changes: artifact {code['diff_artifact']} ({code['diff_bytes']} bytes), "
                f"{code['diff_applies']}"
            )
            out.append(f"  write it out with: labledger reproduce {plan['run'][:12]} --diff changes.diff")
        elif code.get("dirty"):
            out.append("  the tree was dirty but no diff was stored")
        if code.get("diff_note"):
            out.append(f"  note: {code['diff_note']}")
    elif code and code.get("script_sha256"):
        out.append(f"  not in git; script {code['script']} sha256 {code['script_sha256'][:16]}")
    else:
        out.append("  not recorded")
    out.append("")
    out.append("command")
    env = " ".join(f"{k}={v}" for k, v in sorted(plan["env_vars"].items()))
    out.append(f"  cd {plan['cwd']}")
    out.append(f"  {env + ' ' if env else ''}{plan['command'] or '-'}")
    seeds = plan.get("seed") or {}
    out.append("")
    out.append(
        f"seed     {seeds.get('seed', '-')}"
        + (f"   (reached {', '.join(seeds.get('reached', []))})" if seeds.get("reached") else "")
        + (f"   observed {seeds['observed']}" if seeds.get("observed") else "")
    )
    out.append(
        f"packages {len(plan['packages'])} recorded"
        + ("   (export with --requirements FILE)" if plan["packages"] else "")
    )
    diff = plan["differences"]
    out.append("")
    out.append("differences from this environment")
    lines = []
    if diff.get("python"):
        lines.append(f"  python   {diff['python'][0]} -> {diff['python'][1]}")
    if diff.get("platform"):
        lines.append(f"  platform {diff['platform'][0]} -> {diff['platform'][1]}")
    pk = diff.get("packages") or {}
    for name, (old, new) in pk.get("changed", {}).items():
        lines.append(f"  changed  {name} {old} -> {new}")
    for name, version in pk.get("added", {}).items():
        lines.append(f"  added    {name} {version}")
    for name, version in pk.get("removed", {}).items():
        lines.append(f"  removed  {name} {version}")
    out.extend(lines or ["  none"])
    return "\n".join(out)


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--requirements",
    "requirements",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the recorded package versions to this requirements file.",
)
@click.option(
    "--diff",
    "diff_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the stored uncommitted diff to this file.",
)
@store_option
@json_option
@_library_errors
def reproduce(
    run_ref: str, requirements: str | None, diff_out: str | None, store: str | None, as_json: bool
) -> None:
    """Print how to re-run RUN: commit, command, env vars, seed, packages, and what differs now.

    \b
    Example:
        labledger reproduce digits-demo/svc-rbf-c10 --requirements requirements.lock
    """
    from labledger.lineage.reproduce import reproduction_plan, write_requirements
    from labledger.query.runs import get_run

    view = get_run(run_ref, store or None)
    plan = reproduction_plan(view)
    if requirements:
        write_requirements(plan["packages"], requirements)
    if diff_out:
        art = next((a for a in view.artifacts if a.kind == "code" and a.name == "uncommitted.diff"), None)
        if art is None:
            raise click.ClickException(f"run {view.id} has no stored uncommitted diff")
        art.download(diff_out)
    if as_json:
        _json_out(plan)
    else:
        click.echo(_render_plan(plan))
        if requirements:
            click.echo(f"\nwrote {len(plan['packages'])} pinned packages to {requirements}")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("run_ref", metavar="RUN")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option(
    "--rtol",
    type=float,
    default=1e-6,
    show_default=True,
    help="Relative tolerance for numeric params and final metrics.",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    help="Metric name patterns to skip (default: timings such as *time*, *seconds*).",
)
@store_option
@_library_errors
def verify(
    run_ref: str, command: tuple[str, ...], rtol: float, ignore: tuple[str, ...], store: str | None
) -> None:
    """Re-run COMMAND as a reproduction of RUN and check that it matches.

    The command's run is linked to RUN (``reproduction_of``). Params, dataset
    fingerprints, final metrics and fold means are compared within --rtol.
    Exits 0 with "reproduced", or 1 with a table of what differs.

    \b
    Example:
        labledger verify digits/svc-rbf -- python train.py --C 10
    """
    from labledger.lineage.reproduce import DEFAULT_IGNORE
    from labledger.lineage.reproduce import verify as verify_run

    click.echo(f"re-running {run_ref}: {' '.join(command)}", err=True)
    result = verify_run(
        run_ref, list(command), rtol=rtol, ignore=ignore or DEFAULT_IGNORE, store=store or None
    )
    original, again = result.original, result.reproduction
    if result.returncode != 0:
        click.echo(f"not reproduced: the command exited with status {result.returncode}")
        sys.exit(1)
    if again is None:
        click.echo("not reproduced: the command recorded no run (does it call ll.start_run?)")
        sys.exit(1)
    if result.reproduced:
        click.echo(
            f"reproduced: run {again.experiment}/{again.name} ({again.id[:12]}) matches "
            f"{original.name} within rtol={rtol:g}"
        )
        return
    click.echo(f"not reproduced: run {again.name} ({again.id[:12]}) differs from {original.name}")
    click.echo(
        fmt.table(
            [
                (d["section"], d["key"], fmt.value(d["original"]), fmt.value(d["reproduction"]))
                for d in result.differences
            ],
            ["section", "key", "original", "reproduction"],
        )
    )
    sys.exit(1)


@click.command(name="diff")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@store_option
@json_option
@_library_errors
def diff_command(run_a: str, run_b: str, store: str | None, as_json: bool) -> None:
    """Show what changed between two runs: params, data, pipeline, code, packages, seeds.

    \b
    Example:
        labledger diff digits-demo/svc-rbf-c1 digits-demo/svc-rbf-c10
    """
    from labledger.lineage.reproduce import diff_runs

    result = diff_runs(run_a, run_b, store or None)
    if as_json:
        _json_out(result)
        return
    shown = False
    for section, changes in result.items():
        if not changes:
            continue
        shown = True
        click.echo(click.style(section, bold=True))
        if section == "packages":
            for kind, items in changes.items():
                for name, value in items.items():
                    detail = f"{value[0]} -> {value[1]}" if kind == "changed" else value
                    click.echo(f"  {kind:8} {name} {detail}")
        else:
            click.echo(
                fmt.table([(k, _short(v[0]), _short(v[1])) for k, v in changes.items()], ["key", "A", "B"])
            )
        click.echo("")
    if not shown:
        click.echo("no differences in params, data, pipeline, model, code, packages, seeds or environment")


def _short(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)[:60]
    return fmt.value(value)


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    for command in (audit, reproduce, verify, diff_command):
        cli.add_command(command)
