"""The ``labledger online`` commands, and ``show`` / ``compare`` / ``leaderboard`` on online runs."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("scipy")
pytest.importorskip("statsmodels")

from click.testing import CliRunner
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

import labledger as ll
from labledger.cli import main


def _ab(name: str = "checkout", treated: int = 1_150, cv: list[float] | None = None) -> ll.Run:
    with ll.start_run("models") as model:
        model.log_folds("auc", cv or [0.81, 0.83, 0.82], split="cv")
    with ll.start_online(
        name, variants={"old": None, "new": model.id}, primary_metric="converted", planned_units=10_000
    ) as exp:
        for day, (a, b) in enumerate([(5_000, 5_000), (5_000, 5_000)]):
            exp.log_exposures({"old": a, "new": b}, period=f"2026-11-2{day}")
            exp.log_outcomes(
                "converted", {"old": (500, a), "new": (treated // 2, b)}, period=f"2026-11-2{day}"
            )
    return exp.run


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_report_by_experiment_prints_and_writes_html(tmp_path):
    run = _ab()
    out = _cli("online", "report", "checkout", "--html", str(tmp_path / "r.html"))
    assert run.id[:12] in out and "no sample ratio mismatch" in out
    assert "new better than old on converted" in out and "decision: ship new" in out
    assert "auc 0.82 ± 0.0082 (3 folds)" in out
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and "new better than old on converted" in page
    data = json.loads(_cli("online", "report", run.id, "--json"))
    assert data["decision"] == "ship new" and data["metrics"][0]["treatment"] == "new"


def test_report_on_an_offline_run_or_nothing_is_a_clean_error():
    with ll.start_run("plain") as run:
        pass
    result = CliRunner().invoke(main, ["online", "report", run.id])
    assert result.exit_code == 1 and "not an online experiment" in result.output
    result = CliRunner().invoke(main, ["online", "report", "no-such-experiment"])
    assert result.exit_code == 1 and "no run matches" in result.output


def test_plan_matches_statsmodels():
    out = _cli("online", "plan", "--baseline", "0.10", "--mde", "0.01", "--power", "0.8")
    n = NormalIndPower().solve_power(proportion_effectsize(0.11, 0.10), alpha=0.05, power=0.8)
    assert out.startswith(f"{int(-(-n // 1)):,} units in the control")
    data = json.loads(_cli("online", "plan", "--std", "10", "--mde", "0.5", "--json"))
    assert data["control"] == int(-(-NormalIndPower().solve_power(0.05, alpha=0.05, power=0.8) // 1))
    result = CliRunner().invoke(main, ["online", "plan", "--baseline", "1.5", "--mde", "0.01"])
    assert result.exit_code == 1 and "baseline" in result.output and "Traceback" not in result.output


def test_show_compare_and_leaderboard_speak_the_same_verdicts():
    first = _ab("checkout")
    second = _ab("checkout", treated=1_000)
    shown = _cli("show", first.id)
    assert "decision: ship new" in shown and "online experiment checkout/" in shown
    assert json.loads(_cli("show", first.id, "--json"))["online"]["decision"] == "ship new"
    compared = _cli("compare", first.id, second.id)
    assert f"checkout/{first.name} (online): ship new" in compared
    assert "new better than old on converted, p=" in compared
    assert "no significant difference on converted for new" in compared
    board = _cli("leaderboard", "checkout", "-m", "lift/converted/new")
    assert board.index(first.id[:12]) < board.index(second.id[:12])
