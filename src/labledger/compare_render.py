"""The text of ``labledger compare``: runs side by side, issues first, then the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labledger import _format as fmt

if TYPE_CHECKING:
    from labledger.compare import Comparison


def _plain(text: str, **_: Any) -> str:
    return text


def render_comparison(comparison: Comparison, style: Callable[..., str] | None = None) -> str:
    """Params (differences marked ``*``), metrics with mean ± std over folds, issues and verdicts."""
    style = style or _plain
    runs, labels = comparison.runs, comparison.labels
    out: list[str] = []
    add = out.append
    for lab, r in zip(labels, runs, strict=True):
        add(f"{lab} = {r.experiment}/{r.name}  ({fmt.short_id(r.id, r.store)}, {r.status})")
    blocking = list(dict.fromkeys(i.message for p in comparison.pairs for i in p.issues if i.blocking))
    notes = list(dict.fromkeys(i.message for p in comparison.pairs for i in p.issues if not i.blocking))
    if blocking:
        add("")
        for message in blocking:
            if message.startswith("not comparable"):
                message = "NOT COMPARABLE" + message[len("not comparable") :]
            add(style(f"!! {message}", fg="red", bold=True))
    differing = set(comparison.differing_params)
    keys = sorted({k for r in runs for k in r.params})
    if keys:
        add("\nparams (* = differs)")
        rows = []
        for k in keys:
            mark = "*" if k in differing else " "
            cells = [fmt.value(r.params.get(k)) for r in runs]
            if k in differing:
                cells = [style(c, fg="yellow", bold=True) for c in cells]
            rows.append([mark, k, *cells])
        add(fmt.table(rows, ["", "key", *labels]))
    if comparison.fold_keys:
        add(f"\ncross-validated metrics (mean ± std over folds, split {comparison.split})")
        rows = []
        for k in comparison.fold_keys:
            cells = []
            for r in runs:
                st = r.fold_stats.get((k, comparison.split))
                cells.append(f"{fmt.mean_std(st['mean'], st['std'])} ({st['n']})" if st else "-")
            rows.append([k, *cells])
        add(fmt.table(rows, ["key", *labels]))
    if comparison.metric_keys:
        add("\nmetrics (last value)")
        add(
            fmt.table(
                [
                    [k, *(fmt.value(r.summary.get(k, {}).get("last")) for r in runs)]
                    for k in comparison.metric_keys
                ],
                ["key", *labels],
            )
        )
    if comparison.pairs:
        add("\npaired tests")
        rows = []
        for p in comparison.pairs:
            a, b = labels[runs.index(_by_id(runs, p.a))], labels[runs.index(_by_id(runs, p.b))]
            res = p.result
            rows.append(
                [
                    f"{a} vs {b}",
                    p.metric,
                    p.direction,
                    "-" if res is None else f"{res.mean_difference:+.4g}",
                    "-" if res is None else f"{res.statistic:.3g}",
                    "-" if res is None or res.df is None else str(res.df),
                    "-" if res is None else f"{res.p_value:.3g}",
                ]
            )
        add(fmt.table(rows, ["pair", "metric", "better", "mean diff", "statistic", "df", "p"]))
        sources = sorted({p.ratio_source for p in comparison.pairs if p.ratio_source})
        for s in sources:
            add(f"Nadeau–Bengio correction: {s}")
        if comparison.test == "wilcoxon":
            from labledger.stats import smallest_wilcoxon_p

            ns = sorted({p.result.n for p in comparison.pairs if p.result})
            for n in ns:
                add(
                    f"note: with {n} folds the exact Wilcoxon test cannot go below "
                    f"p={smallest_wilcoxon_p(n):.3g}"
                )
        add("\nverdict")
        for p in comparison.pairs:
            text = p.verdict
            color = "red" if not p.comparable else ("green" if p.significant else None)
            add("  " + (style(text, fg=color, bold=not p.comparable) if color else text))
    else:
        add(
            "\nno paired test: the compared metric has no per-fold values in these runs "
            "(log cross-validation folds with run.log_folds to get one)"
        )
    if notes:
        add("")
        for message in notes:
            add(f"note: {message}")
    return "\n".join(out)


def _by_id(runs: list[Any], run_id: str) -> Any:
    return next(r for r in runs if r.id == run_id)
