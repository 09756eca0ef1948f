"""The ``labledger`` command: a thin shell over the library.

Every command takes ``--store PATH`` (default ``$LABLEDGER_STORE`` or
``./.labledger``) and most take ``--json`` for scripts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from labledger import _format as fmt
from labledger._cli_common import json_option, json_out, library_errors, store_option

F = TypeVar("F", bound=Callable[..., Any])

MAX_HEADLINE = 4


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
    from labledger.query import experiments as list_experiments

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


def _headline(rows: list[dict[str, Any]]) -> tuple[list[str], list[str], list[str]]:
    """Params that differ between runs, metric keys and fold keys worth a column."""
    param_keys: list[str] = []
    seen: dict[str, set[str]] = {}
    for r in rows:
        for k, v in r["params"].items():
            seen.setdefault(k, set()).add(json.dumps(v, sort_keys=True, default=str))
    varying = [k for k, vals in seen.items() if len(vals) > 1 or len(rows) == 1]
    param_keys = sorted(varying)[:MAX_HEADLINE]
    metric_keys: list[str] = []
    fold_keys: list[str] = []
    for r in rows:
        for k in r["metrics"]:
            if k not in metric_keys:
                metric_keys.append(k)
        for k in r.get("folds", {}):
            if k not in fold_keys:
                fold_keys.append(k)
    return param_keys, metric_keys[:MAX_HEADLINE], fold_keys[:MAX_HEADLINE]


def render_runs(rows: list[dict[str, Any]]) -> str:
    """The runs table shown by ``labledger runs`` and the demo."""
    import time

    params, metrics, folds = _headline(rows)
    now = time.time()
    table_rows = []
    for r in rows:
        name = r["name"] if r["parent_id"] is None else f"└ {r['name']}"
        table_rows.append(
            [
                fmt.short_id(r["id"]),
                r["experiment"],
                name,
                r["status"],
                fmt.when(r["start_time"]),
                fmt.duration((r["end_time"] or now) - r["start_time"]),
            ]
            + [fmt.value(r["params"].get(k)) for k in params]
            + [
                fmt.mean_std(
                    r.get("folds", {}).get(k, {}).get("mean"), r.get("folds", {}).get(k, {}).get("std")
                )
                for k in folds
            ]
            + [fmt.value(r["metrics"].get(k)) for k in metrics]
        )
    headers = (
        ["id", "experiment", "name", "status", "start", "duration"]
        + params
        + [f"{k} (cv)" for k in folds]
        + metrics
    )
    return fmt.table(table_rows, headers)


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
@click.option("--limit", type=int, default=None, help="Show at most this many runs.")
@store_option
@json_option
@_library_errors
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
    from labledger.query import run_rows

    rows = run_rows(
        experiment,
        store or None,
        include_children=children,
        limit=limit,
        where=where,
        order_by=list(order_by),
    )
    fields = [c.strip() for c in columns.split(",") if c.strip()] if columns else []
    if fields:
        from labledger.listing import column_values
        from labledger.store import open_store

        values = column_values(open_store(store or None), rows, fields)
        picked = [{"id": r["id"], **v} for r, v in zip(rows, values, strict=True)]
        if as_json:
            _json_out(picked)
            return
        cells = [
            [fmt.short_id(p["id"])]
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
    click.echo(render_runs(rows))


@main.command()
@click.argument("run_ref", metavar="RUN")
@store_option
@json_option
@_library_errors
def show(run_ref: str, store: str | None, as_json: bool) -> None:
    """Show everything about one run: params, metrics, folds, artifacts, children.

    RUN is a run id, a unique id prefix, or experiment/name.

    \b
    Example:
        labledger show digits-demo/svc-rbf-c10
    """
    from labledger.query import get_run

    run = get_run(run_ref, store or None)
    if as_json:
        data = run.to_dict()
        data["folds"] = [{"key": k, "split": s, **v} for (k, s), v in run.fold_stats.items()]
        _json_out(data)
        return
    click.echo(render_run(run))


def _lineage_lines(run: Any) -> list[str]:
    """Code, environment, seeds, model, pipeline and completeness lines of ``labledger show``."""
    lines = []
    lineage = run.lineage
    who = lineage.get("author") or {}
    if who.get("name"):
        lines.append(f"git author  {who['name']} <{who.get('email') or '-'}>")
    git = (lineage.get("code") or {}).get("git")
    if git:
        dirty = " (dirty: uncommitted.diff stored)" if git.get("dirty") else ""
        lines.append(
            f"code        {str(git.get('commit'))[:12]} on {git.get('branch')}{dirty}"
            f"   remote {git.get('remote') or '-'}"
        )
    elif (lineage.get("code") or {}).get("script_sha256"):
        lines.append(f"code        not in git; script sha256 {lineage['code']['script_sha256'][:16]}")
    env = run.environment
    if env.get("python"):
        gpu = env.get("gpu") or {}
        gpus = ", ".join(gpu.get("devices") or []) or "none"
        lines.append(
            f"environment Python {env['python']} on {env.get('platform', '-')}, "
            f"{env.get('cpu_count', '?')} × {env.get('cpu') or 'cpu'}, GPUs {gpus}, "
            f"{len(run.packages)} packages"
        )
    seeds = lineage.get("seeds") or {}
    if seeds:
        seen = ", ".join(f"{k}={v}" for k, v in (seeds.get("observed") or {}).items())
        lines.append(
            f"seeds       {seeds.get('seed', '-')}"
            + (f" (reached {', '.join(seeds.get('reached') or [])})" if seeds.get("reached") else "")
            + (f"   observed {seen}" if seen else "")
        )
    if run.model_type:
        lines.append(f"model       {run.model_type}")
    for p in run.pipelines:
        lines.append(f"pipeline    {p['name']} version {p['version'][:16]}")
    if run.reproduction_of:
        lines.append(f"reproduces  {run.reproduction_of}")
    if run.parent_id is None:
        report = run.completeness
        missing = f"   missing: {', '.join(report.missing)}" if report.missing else ""
        lines.append(f"complete    {report.score}{missing}")
    return lines


def render_run(run: Any) -> str:
    """The text of ``labledger show``."""
    out: list[str] = []
    add = out.append
    add(click.style(f"{run.experiment}/{run.name}", bold=True) + f"  ({run.id})")
    add(f"status      {run.status}")
    add(f"started     {fmt.when(run.start_time)}   duration {fmt.duration(run.duration)}")
    if run.parent_id:
        add(f"parent      {run.parent_id}")
    add(f"author      {run.author or '-'}   host {run.host or '-'}   kind {run.kind}")
    if run.hypothesis:
        add(f"hypothesis  {run.hypothesis}")
    argv = " ".join(run.source.get("argv") or [])
    if argv:
        add(f"command     {argv}")
    out.extend(_lineage_lines(run))
    if run.params:
        add("\nparams")
        add(fmt.table([(k, fmt.value(v)) for k, v in run.params.items()], ["key", "value"]))
    if run.summary:
        add("\nmetrics")
        add(
            fmt.table(
                [
                    (
                        k,
                        fmt.value(s["last"]),
                        s["last_step"],
                        fmt.value(s["min"]),
                        fmt.value(s["max"]),
                        s["count"],
                    )
                    for k, s in run.summary.items()
                ],
                ["key", "last", "step", "min", "max", "points"],
            )
        )
    if run.fold_stats:
        add("\ncross-validation folds")
        folds = run.folds
        rows = []
        for (key, split), st in run.fold_stats.items():
            vals = folds[(folds["key"] == key) & (folds["split"] == split)]["value"].tolist()
            rows.append(
                (
                    key,
                    split,
                    st["n"],
                    fmt.mean_std(st["mean"], st["std"]),
                    " ".join(fmt.value(v) for v in vals),
                )
            )
        add(fmt.table(rows, ["key", "split", "folds", "mean ± std", "values"]))
    if run.tags:
        add("\ntags")
        add(fmt.table(list(run.tags.items()), ["key", "value"]))
    if run.datasets:
        add("\ndatasets")
        add(
            fmt.table(
                [(d["name"], d["role"], (d["fingerprint"] or "-")[:16]) for d in run.datasets],
                ["name", "role", "fingerprint"],
            )
        )
    if run.artifacts:
        add("\nartifacts")
        add(
            fmt.table(
                [(a.name, a.kind, a.size, a.sha256[:12]) for a in run.artifacts],
                ["name", "kind", "bytes", "sha256"],
            )
        )
    if run.notes:
        add("\nnotes")
        for n in run.notes:
            add(f"  [{fmt.when(n['created_at'])}] {n['text']}")
    if run.children:
        add(f"\nchildren ({len(run.children)})")
        add(
            fmt.table(
                [(fmt.short_id(c.id), c.name, c.status) for c in run.children], ["id", "name", "status"]
            )
        )
    if run.error:
        add("\nerror")
        add(run.error.rstrip())
    return "\n".join(out)


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
        from labledger.demo import run_demo
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise click.ClickException(
            f"the demo needs scikit-learn ({e}); pip install 'labledger[sklearn]'"
        ) from e
    run_demo(experiment=experiment, store=store or None, echo=click.echo)


def _register_plugin_commands() -> None:
    """Register the built-in command modules as plugins, then let every plugin add commands."""
    import importlib
    import pkgutil

    from labledger import commands, plugins

    pm = plugins.get_plugin_manager()
    for info in pkgutil.iter_modules(commands.__path__):
        name = f"labledger.commands.{info.name}"
        if pm.has_plugin(name) or pm.is_blocked(name):
            continue
        module = importlib.import_module(name)
        if not pm.has_plugin(name):
            pm.register(module, name=name)
    plugins.notify("labledger_register_commands", cli=main)


_register_plugin_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
