"""The ``errors`` command: where a run fails, by slice; or what a second run fixed and broke."""

from __future__ import annotations

from typing import Any

import click

from labledger.cli.common import json_option, json_out, library_errors, store_option
from labledger.hooks.manager import hookimpl


def _table(frame: Any, floatfmt: str = ".4g") -> str:
    from tabulate import tabulate

    return tabulate(frame, headers="keys", tablefmt="simple", showindex=False, floatfmt=floatfmt)


def _records(frame: Any) -> Any:
    return None if frame is None else frame.to_dict(orient="records")


def _summary_lines(report: Any) -> list[str]:
    s = report.summary
    if report.task == "classification":
        figures = ", ".join(f"{k} {s[k]:.4g}" for k in ("accuracy", "f1_macro", "log_loss") if k in s)
        lines = [f"{s['n']:,} examples (classification): {figures}"]
        lines += ["", "per class", _table(s["per_class"].reset_index())]
        lines += [
            "",
            "confusion matrix (rows: truth, columns: prediction)",
            _table(s["confusion"].reset_index()),
        ]
        return lines
    figures = ", ".join(f"{k} {s[k]:.4g}" for k in ("rmse", "mae", "r2", "mean_residual"))
    quantiles = s["residual_quantiles"].to_frame("residual (truth − prediction)").T.reset_index(drop=True)
    return [f"{s['n']:,} examples (regression): {figures}", "", _table(quantiles)]


@click.command("errors")
@click.argument("run_refs", metavar="RUN [RUN_B]", nargs=-1, required=True)
@click.option("--by", "by", multiple=True, help="Feature column to slice by (repeat for several).")
@click.option(
    "--metric", "-m", default=None, help="accuracy (default), error_rate, f1_macro, log_loss; rmse, mae."
)
@click.option(
    "--auto", is_flag=True, help="Search one- and two-column slices; report the significantly weak ones."
)
@click.option("--split", default="test", show_default=True, help="Which stored predictions.")
@click.option("--top", default=10, show_default=True, help="How many of the hardest examples to list.")
@store_option
@json_option
@library_errors
def errors_command(
    run_refs: tuple[str, ...],
    by: tuple[str, ...],
    metric: str | None,
    auto: bool,
    split: str,
    top: int,
    store: str | None,
    as_json: bool,
) -> None:
    """Error analysis on a run's stored predictions (run.log_predictions).

    With one RUN: overall metrics (per class and the confusion matrix, or residuals), each
    --by column's slices with support, gap to overall and an interval (worst impact first),
    --auto's weak slices (false-discovery-rate corrected), and the hardest examples.

    With two runs: their predictions joined on example id (refused when the examples
    differ), McNemar's test on the paired right/wrong outcomes (or a paired test on the
    per-example loss), and the flips — fixed and broken examples — per --by slice.

    \b
    Example:
        labledger errors digits/svc --by region --auto
        labledger errors digits/svc digits/logreg --by region
    """
    if len(run_refs) > 2:
        raise click.UsageError("give one run, or two to compare on the same examples")
    if len(run_refs) == 2:
        _paired(run_refs, by, split, store, as_json)
        return
    from labledger.predictions.analysis import error_report

    report = error_report(
        run_refs[0], by=by, metric=metric, split=split, auto=auto, top=top, store=store or None
    )
    if as_json:
        summary = {
            k: (_records(v.reset_index()) if hasattr(v, "reset_index") else v)
            for k, v in report.summary.items()
        }
        json_out(
            {
                "run_id": report.run_id,
                "task": report.task,
                "summary": summary,
                "slices": {k: _records(v) for k, v in report.slices.items()},
                "weak_slices": _records(report.weak),
                "hardest": _records(report.hardest),
            }
        )
        return
    lines = _summary_lines(report)
    for column, frame in report.slices.items():
        lines += ["", f"by {column}", _table(frame)]
    if report.weak is not None:
        lines += [""]
        if len(report.weak):
            lines += ["weak slices (significantly worse than the rest, FDR-corrected)", _table(report.weak)]
        else:
            lines.append("no slice is significantly worse than the rest (FDR-corrected)")
    if report.hardest is not None and len(report.hardest):
        lines += ["", "hardest examples", _table(report.hardest)]
    click.echo("\n".join(lines))


def _paired(
    run_refs: tuple[str, ...], by: tuple[str, ...], split: str, store: str | None, as_json: bool
) -> None:
    from labledger.predictions.analysis import paired

    report = paired(run_refs[0], run_refs[1], by=by, split=split, store=store or None)
    loss = report.loss_test
    if as_json:
        json_out(
            {
                "examples": report.examples,
                "task": report.task,
                "mcnemar": None if report.mcnemar is None else vars(report.mcnemar),
                "loss_test": vars(loss),
                "flips": _records(report.flips),
            }
        )
        return
    a, b = run_refs
    lines = [f"{a} vs {b}: {report.examples:,} shared examples ({report.task})"]
    if report.mcnemar is not None:
        lines.append(report.mcnemar.describe())
    lines.append(loss.describe())
    if report.flips is not None and len(report.flips):
        lines += [
            "",
            "flips (fixed: wrong in A, right in B; broken: right in A, wrong in B)",
            _table(report.flips),
        ]
    click.echo("\n".join(lines))


@hookimpl
def labledger_register_commands(cli: click.Group) -> None:
    cli.add_command(errors_command)
