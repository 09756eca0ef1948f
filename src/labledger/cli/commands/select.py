"""Commands for choosing between runs: compare, leaderboard, plot, export, metric-direction."""

from __future__ import annotations

from typing import Any

import click

from labledger.cli.common import json_option, json_out, library_errors, store_option
from labledger.hooks.manager import hookimpl

TEST_CHOICES = ("nadeau-bengio", "paired-t", "wilcoxon")

test_option = click.option(
    "--test",
    type=click.Choice(TEST_CHOICES),
    default="nadeau-bengio",
    show_default=True,
    help="Paired test on the folds: the Nadeau–Bengio corrected resampled t-test, "
    "a plain paired t-test, or the Wilcoxon signed-rank test.",
)
alpha_option = click.option(
    "--alpha", type=float, default=0.05, show_default=True, help="Significance level."
)
split_option = click.option("--split", default="test", show_default=True, help="Which fold split to use.")
correction_option = click.option(
    "--correction",
    type=click.Choice(("holm", "bonferroni", "none")),
    default="holm",
    show_default=True,
    help="Multiple-comparison correction of the p-values when several pairs are tested.",
)
ratio_option = click.option(
    "--test-train-ratio",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="n_test/n_train for the corrected test, when the runs did not record their fold sizes "
    "(or to override them).",
)


@click.command()
@click.argument("run_refs", metavar="RUN_A RUN_B [RUN...]", nargs=-1, required=True)
@click.option(
    "--metric", "-m", default=None, help="Fold key to test (default: every fold key the runs share)."
)
@test_option
@click.option(
    "--alternative",
    type=click.Choice(("two-sided", "greater", "less")),
    default="two-sided",
    show_default=True,
    help="H1 about the values of A − B: they differ, A's are greater, or A's are less.",
)
@click.option(
    "--reference",
    default=None,
    help="Test every run against this one (a label A, B, … or a run given) instead of all pairs.",
)
@correction_option
@click.option(
    "--rope",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Half-width of the region of practical equivalence of the Bayesian view (e.g. 0.01).",
)
@ratio_option
@alpha_option
@split_option
@store_option
@json_option
@library_errors
def compare(
    run_refs: tuple[str, ...],
    metric: str | None,
    test: str,
    alternative: str,
    reference: str | None,
    correction: str,
    rope: float,
    test_train_ratio: float | None,
    alpha: float,
    split: str,
    store: str | None,
    as_json: bool,
) -> None:
    """Compare runs side by side, with a paired test on their folds.

    Shows params (differences marked *), metrics as mean ± std over folds, and
    a paired test for each pair of runs (or each run against --reference) that
    accounts for the overlapping training sets of cross-validation: the
    corrected resampled t-test from the recorded fold sizes (the corrected
    repeated k-fold test on repeated CV; on time-ordered folds a paired t-test
    with a caveat), p-values adjusted for multiple comparisons, a Bayesian view
    (P(A better), P(B better), P(equivalent) within --rope) and a plain verdict.
    Runs with different train data, CV folds or metric definitions are reported
    as not comparable instead of being ranked; without recorded fold sizes no
    corrected p-value is given unless --test-train-ratio is passed.

    \b
    Example:
        labledger compare digits/svc-rbf digits/logreg --metric accuracy
        labledger compare grid/rbf grid/linear grid/poly -m roc_auc --rope 0.01
    """
    from labledger.analysis.compare import compare as compare_runs

    if len(run_refs) < 2:
        raise click.UsageError("give at least two runs to compare")
    offline, online = _split_online(run_refs, store or None)
    if online:
        # an online run is a comparison in itself: its variants on the same traffic
        for report in online:
            click.echo(f"{report.data.experiment}/{report.data.name} (online): {report.decision}")
            for verdict in report.verdicts():
                click.echo(f"  {verdict}")
        if len(offline) < 2:
            return
        click.echo("")
    result = compare_runs(
        offline,
        metric=metric,
        split=split,
        test=test,
        alpha=alpha,
        store=store or None,
        alternative=alternative,
        correction=correction,
        reference=reference,
        rope=rope,
        test_train_ratio=test_train_ratio,
    )
    from labledger.predictions.analysis import paired_verdicts

    paired_lines = paired_verdicts(offline, split=split, store=store or None)
    if as_json:
        json_out({**result.to_dict(), "paired_on_examples": paired_lines})
        return
    click.echo(result.render(click.style))
    if paired_lines:
        click.echo("\npaired on the same examples (stored predictions)")
        for line in paired_lines:
            click.echo(f"  {line}")


def _split_online(run_refs: tuple[str, ...], store: str | None) -> tuple[list[str], list[Any]]:
    """The offline refs as given, and the reports of the online runs among them."""
    from labledger.query.runs import get_run

    offline, online = [], []
    for ref in run_refs:
        run = get_run(ref, store)
        if run.kind == "online":
            from labledger.online.report import online_report

            online.append(online_report(run))
        else:
            offline.append(ref)
    return offline, online


@click.command()
@click.argument("experiment")
@click.option("--metric", "-m", required=True, help="Fold key (or logged metric) to rank by.")
@click.option("--where", default=None, help="Only runs matching this filter.")
@click.option("--children/--no-children", default=False, help="Include nested (child) runs.")
@test_option
@correction_option
@ratio_option
@alpha_option
@split_option
@store_option
@json_option
@library_errors
def leaderboard(
    experiment: str,
    metric: str,
    where: str | None,
    children: bool,
    test: str,
    correction: str,
    test_train_ratio: float | None,
    alpha: float,
    split: str,
    store: str | None,
    as_json: bool,
) -> None:
    """Rank every run of an experiment by a metric's mean over folds.

    All runs are listed with std and fold count; runs not significantly
    different from the leader (p-values adjusted for multiple comparisons,
    Holm by default) are marked "≈ leader"; failed, killed and crashed runs
    come last with their status. The metric's direction is the one the runs
    recorded (a scikit-learn scorer's), else `labledger metric-direction`
    (default: min for loss/error names).

    \b
    Example:
        labledger leaderboard digits-svm --metric accuracy
    """
    from labledger.analysis.leaderboard import leaderboard as make_leaderboard

    board = make_leaderboard(
        experiment,
        metric,
        split=split,
        test=test,
        alpha=alpha,
        where=where,
        include_children=children,
        store=store or None,
        correction=correction,
        test_train_ratio=test_train_ratio,
    )
    if as_json:
        json_out(board.to_dict())
        return
    if not board.entries:
        click.echo(f"no runs in experiment {experiment!r}" + (f" matching {where!r}" if where else ""))
        return
    click.echo(board.render(click.style))


@click.command()
@click.argument("targets", metavar="RUN... | EXPERIMENT", nargs=-1, required=True)
@click.option("--metric", "-m", "metrics", multiple=True, help="Metric (repeat for several curves).")
@click.option("--output", "-o", required=True, help="Output file: .png, .svg or .html (interactive).")
@click.option("--folds", is_flag=True, help="Fold-score distributions per run (box + points).")
@click.option("--confusion", is_flag=True, help="A run's confusion matrix, from its stored predictions.")
@click.option("--calibration", is_flag=True, help="Reliability diagram of the runs' stored probabilities.")
@click.option(
    "--slices", "slices", default=None, metavar="COLUMN", help="A run's metric per slice of COLUMN."
)
@click.option(
    "--params", "-p", "params", multiple=True, help="Param(s) against the metric across EXPERIMENT."
)
@click.option("--x", "x_axis", type=click.Choice(["step", "epoch"]), default="step", show_default=True)
@click.option("--where", default=None, help="With --params: only runs matching this filter.")
@click.option(
    "--children/--no-children",
    default=False,
    help="With --params: include nested (child) runs, such as a search's candidates.",
)
@split_option
@store_option
@library_errors
def plot(
    targets: tuple[str, ...],
    metrics: tuple[str, ...],
    output: str,
    folds: bool,
    confusion: bool,
    calibration: bool,
    slices: str | None,
    params: tuple[str, ...],
    x_axis: str,
    where: str | None,
    children: bool,
    split: str,
    store: str | None,
) -> None:
    """Plot metric curves of runs, their fold scores (--folds), or params vs a metric (--params);
    from stored predictions: a confusion matrix (--confusion), a reliability diagram
    (--calibration), a metric per slice (--slices COLUMN).

    \b
    Examples:
        labledger plot digits/mlp-a digits/mlp-b --metric val_loss -o loss.png
        labledger plot digits/svc digits/logreg --folds --metric accuracy -o folds.html
        labledger plot digits --params C --params gamma --metric accuracy -o params.svg
        labledger plot digits-search --params svc__C --metric accuracy --children -o c.png
        labledger plot digits/svc --confusion -o confusion.png
        labledger plot digits/svc --slices region -o slices.html
    """
    from labledger.analysis import plots

    if sum(map(bool, (folds, params, confusion, calibration, slices))) > 1:
        raise click.UsageError("choose one of --folds, --params, --confusion, --calibration and --slices")
    st = store or None
    if confusion or calibration or slices:
        _plot_predictions(list(targets), output, confusion, slices, metrics, st)
        return
    if not metrics:
        raise click.UsageError("give --metric (repeat for several curves)")
    if params:
        if len(targets) != 1:
            raise click.UsageError("with --params give one EXPERIMENT")
        path = plots.plot_params(
            targets[0],
            list(params),
            metrics[0],
            output,
            split=split,
            where=where,
            store=st,
            include_children=children,
        )
    elif folds:
        path = plots.plot_folds(list(targets), metrics[0], output, split=split, store=st)
    else:
        path = plots.plot_curves(list(targets), list(metrics), output, x=x_axis, store=st)
    click.echo(f"wrote {path}")


def _plot_predictions(
    targets: list[str],
    output: str,
    confusion: bool,
    slices: str | None,
    metrics: tuple[str, ...],
    store: str | None,
) -> None:
    from labledger.analysis import plots_predictions as charts

    if (confusion or slices) and len(targets) != 1:
        raise click.UsageError("--confusion and --slices take one RUN")
    if confusion:
        path = charts.plot_confusion(targets[0], output, store=store)
    elif slices:
        path = charts.plot_slices(
            targets[0], slices, output, metric=metrics[0] if metrics else None, store=store
        )
    else:
        path = charts.plot_calibration(targets, output, store=store)
    click.echo(f"wrote {path}")


@click.command(name="export")
@click.argument("experiment", required=False)
@click.option(
    "--format",
    "-f",
    "fmt",
    metavar="FORMAT",
    default=None,
    help="csv, json, parquet, or a format a plugin adds (default: from the output file name).",
)
@click.option("--output", "-o", required=True, help="Output file.")
@click.option("--where", default=None, help="Only runs matching this filter.")
@click.option("--children/--no-children", default=True, help="Include nested (child) runs.")
@store_option
@library_errors
def export(
    experiment: str | None, fmt: str | None, output: str, where: str | None, children: bool, store: str | None
) -> None:
    """Export runs with params, summary metrics, folds and tags to CSV, JSON, Parquet, or a
    format a plugin adds (`labledger plugins` lists the plugins).

    \b
    Example:
        labledger export digits-svm --format parquet -o runs.parquet
    """
    from labledger.analysis.export import export_runs

    path = export_runs(
        experiment, output, format=fmt, where=where, include_children=children, store=store or None
    )
    click.echo(f"wrote {path}")


@click.command(name="metric-direction")
@click.argument("metric")
@click.argument("direction", type=click.Choice(["min", "max"]), required=False)
@store_option
@library_errors
def metric_direction(metric: str, direction: str | None, store: str | None) -> None:
    """Show or declare whether lower (min) or higher (max) is better for a metric.

    \b
    Example:
        labledger metric-direction val_perplexity min
    """
    from labledger.query.aggregation import metric_direction as direction_of

    click.echo(f"{metric}: {direction_of(metric, direction, store=store or None)}")


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    for command in (compare, leaderboard, plot, export, metric_direction):
        cli.add_command(command)
