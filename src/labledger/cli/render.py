"""The text of ``labledger runs`` and ``labledger show``: tables of runs, one run in full."""

from __future__ import annotations

import json
from typing import Any

import click

from labledger import formatting as fmt

__all__ = ["render_run", "render_runs"]

MAX_HEADLINE = 4


#: params that record an online experiment's bookkeeping, not a choice worth a column
_BOOKKEEPING_PARAMS = ("online.period.", "online.metric.", "online.cuped.")


def _headline(rows: list[dict[str, Any]]) -> tuple[list[str], list[str], list[str]]:
    """Params that differ between runs, metric keys and fold keys worth a column.

    Linear in the number of keys: first-seen order is kept with dicts, never by
    searching lists (a run with 100k metric keys lists in well under a second).
    """
    seen: dict[str, set[str]] = {}
    for r in rows:
        for k, v in r["params"].items():
            if not k.startswith(_BOOKKEEPING_PARAMS):
                seen.setdefault(k, set()).add(json.dumps(v, sort_keys=True, default=str))
    varying = [k for k, vals in seen.items() if len(vals) > 1 or len(rows) == 1]
    param_keys = sorted(varying)[:MAX_HEADLINE]
    # an online run's per-period aggregates stay out; its lift/p summaries are the headline
    metric_keys = dict.fromkeys(k for r in rows for k in r["metrics"] if not k.startswith("online/"))
    fold_keys = dict.fromkeys(k for r in rows for k in r.get("folds", {}))
    return param_keys, list(metric_keys)[:MAX_HEADLINE], list(fold_keys)[:MAX_HEADLINE]


def render_runs(rows: list[dict[str, Any]], store: Any = None) -> str:
    """The runs table shown by ``labledger runs`` and the demo.

    Ids are printed as their shortest unique prefix in ``store`` (default: the open stores).
    """
    import time

    params, metrics, folds = _headline(rows)

    def ids(run_id: str) -> str:
        return fmt.short_id(run_id, store)

    now = time.time()
    table_rows = []
    for r in rows:
        name = r["name"] if r["parent_id"] is None else f"└ {r['name']}"
        table_rows.append(
            [
                ids(r["id"]),
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
                [
                    (a.name, a.kind, a.size, str(a.sha256)[:12], _artifact_state(run, a))
                    for a in run.artifacts
                ],
                ["name", "kind", "bytes", "sha256", "stored"],
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
                [(fmt.short_id(c.id, run.store), c.name, c.status) for c in run.children],
                ["id", "name", "status"],
            )
        )
    if run.error:
        add("\nerror")
        add(run.error.rstrip())
    if run.damaged:  # known once every field was read: shown under the status
        out.insert(2, f"damaged     {', '.join(run.damaged)} (unreadable, shown as <damaged> or left out)")
    return "\n".join(out)


def _artifact_state(run: Any, art: Any) -> str:
    """``ok``, ``missing`` (its bytes are gone) or ``damaged`` (its digest is not a SHA-256)."""
    from labledger.query.damage import report
    from labledger.store.integrity import is_sha256

    if not is_sha256(art.sha256):
        return "damaged"
    path = art.store.blobs.path_for(art.sha256)
    if path.exists():
        return "ok"
    field = f"artifacts[{art.name!r}]"
    run.damaged[field] = "stored bytes missing"
    report(run.id, field, f"its stored bytes are missing ({path})")
    return "missing"
