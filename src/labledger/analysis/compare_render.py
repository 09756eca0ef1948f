"""The text of ``labledger compare``: runs side by side, issues first, then the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labledger import formatting as fmt

if TYPE_CHECKING:
    from labledger.analysis.compare import Comparison


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
        _render_tests(comparison, add, style)
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


def _render_tests(comparison: Comparison, add: Callable[[str], None], style: Callable[..., str]) -> None:
    """The paired tests (raw and adjusted p), the Bayesian view, how the ratio was found, verdicts."""
    pairs = comparison.pairs
    adjusted = comparison.correction != "none" and any(p.family_size > 1 for p in pairs)
    sided = (
        ""
        if comparison.alternative == "two-sided"
        else f", one-sided: H1 A − B {_SIGN[comparison.alternative]} 0"
    )
    add(f"\npaired tests{sided}")
    rows = []
    for p in pairs:
        res = p.result
        row = [
            f"{p.labels[0]} vs {p.labels[1]}",
            p.metric,
            p.direction,
            "-" if res is None else f"{res.mean_difference:+.4g}",
            "-" if res is None else f"{res.statistic:.3g}",
            "-" if res is None or res.df is None else str(res.df),
            "-" if res is None else f"{res.p_value:.3g}",
        ]
        if adjusted:
            row.append("-" if p.p_adjusted is None else f"{p.p_adjusted:.3g}")
        row.append(p.description or ("-" if res is None else res.description))
        rows.append(row)
    header = ["pair", "metric", "better", "mean diff", "statistic", "df", "p"]
    if adjusted:
        header.append(f"p ({comparison.correction})")
    add(fmt.table(rows, [*header, "test"]))
    if adjusted:
        from labledger.analysis.multiple_testing import CORRECTIONS

        sizes = sorted({p.family_size for p in pairs if p.result is not None})
        add(
            f"multiple comparisons: {CORRECTIONS[comparison.correction]} over the "
            f"{'/'.join(map(str, sizes))} tests of each metric; the verdicts use the adjusted p"
        )
    for source in sorted({p.ratio_source for p in pairs if p.ratio_source}):
        add(f"correction: {source}")
    bayes = [p for p in pairs if p.posterior is not None]
    if bayes:
        rope = comparison.rope or 0.0
        add(
            "\nBayesian view (correlated t posterior of the mean difference, Benavoli et al. 2017"
            + (f"; practically equivalent: |difference| ≤ {rope:g})" if rope > 0 else ")")
        )
        rows = []
        for p in bayes:
            post = p.posterior
            assert post is not None
            lo, hi = post.interval(0.95)
            row = [f"{p.labels[0]} vs {p.labels[1]}", p.metric, f"{p.p_a_better:.3f}", f"{p.p_b_better:.3f}"]
            if rope > 0:
                row.append(f"{post.p_rope:.3f}")
            rows.append([*row, f"[{lo:+.4g}, {hi:+.4g}]"])
        header = ["pair", "metric", "P(first better)", "P(second better)"]
        if rope > 0:
            header.append("P(equivalent)")
        add(fmt.table(rows, [*header, "95% interval (first − second)"]))
    if comparison.test == "wilcoxon":
        from labledger.analysis.stats import smallest_wilcoxon_p

        for n in sorted({p.result.n for p in pairs if p.result}):
            add(
                f"note: with {n} folds the exact Wilcoxon test cannot go below p={smallest_wilcoxon_p(n):.3g}"
            )
    add("\nverdict")
    several = len(pairs) > 1
    for p in pairs:
        color = "red" if not p.comparable else ("green" if p.significant else None)
        text = f"{p.labels[0]} vs {p.labels[1]}: {p.verdict}" if several else p.verdict
        add("  " + (style(text, fg=color, bold=not p.comparable) if color else text))


_SIGN = {"greater": ">", "less": "<"}
