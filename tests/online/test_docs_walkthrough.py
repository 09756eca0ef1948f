"""docs/online.md runs as written: its Python blocks in order, its printed output as shown,
and its ``labledger online`` command lines."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("scipy")
pytest.importorskip("statsmodels")
pytest.importorskip("sklearn")
pytest.importorskip("tabulate")

from click.testing import CliRunner

import labledger as ll

PAGE = Path(__file__).resolve().parents[2] / "docs" / "online.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
#: what differs from one execution to the next: run ids and generated run names
RUN_ID = re.compile(r"\b[0-9a-f]{12}\b")
RUN_NAME = re.compile(r"(?<=/)[a-z]+-[a-z]+-\d+\b")


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(PAGE.read_text(encoding="utf-8")) if lang == language]


def normalised(text: str) -> str:
    return RUN_NAME.sub("<name>", RUN_ID.sub("<id>", text)).strip()


def commands() -> list[list[str]]:
    """The ``$ labledger ...`` lines of the page's console blocks, as argument lists."""
    lines = [line for body in blocks("console") for line in body.splitlines()]
    return [shlex.split(line[len("$ labledger ") :]) for line in lines if line.startswith("$ labledger ")]


@pytest.fixture
def walkthrough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run every Python block of the page, in order, in one namespace and a fresh store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABLEDGER_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("LABLEDGER_COMPLETENESS", "off")
    namespace: dict = {"__name__": "docs_online"}
    code = blocks("python")
    assert len(code) >= 6, "docs/online.md lost its Python blocks"
    for i, block in enumerate(code):
        exec(compile(block, f"docs/online.md, Python block {i + 1}", "exec"), namespace)
    return namespace, capsys.readouterr().out


def test_the_walkthrough_runs_and_reads_as_documented(walkthrough):
    ns, printed = walkthrough
    report = ns["report"]
    text = report.render()

    # the A/B test: SRM first and clean, the plan reached, the decision from the primary metric
    assert "no sample ratio mismatch" in text
    assert report.srm is not None and not report.srm.flagged
    assert report.reached and report.planned_units is not None
    assert report.decision == "ship treatment"
    assert "decision: ship treatment" in text
    assert "treatment better than control on ctr" in text
    revenue = next(m for m in report.metrics if m.metric == "revenue")
    assert revenue.lift is not None and revenue.lift.variance_reduction is not None  # CUPED applied
    assert revenue.lift.variance_reduction < 0.6  # last month's revenue explains over 40 % of it

    # the offline evidence: both model runs, each split's fold mean as stored
    for run, variant in ((ns["run_v6"], "control"), (ns["run_v7"], "treatment")):
        stats = ll.get_run(run.id).fold_stats
        assert set(stats) == {("roc_auc", "cv"), ("roc_auc", "backtest")}
        for (key, split), s in stats.items():
            row = rf"\b{variant}\s.*\s{split}\s+{key} {s['mean']:.4g} ± {s['std']:.2g} \({s['n']} folds\)"
            assert re.search(row, text), f"{variant}'s {split} folds are missing from the report"
        assert run.id[:12] in text

    # the printed output is the page's: the A/B report up to the offline table (which depends on
    # scikit-learn's solver, checked above against the store), then the bandit's report in full
    shown = [normalised(body) for body in blocks("text")]
    assert len(shown) == 2
    ab_report, bandit_report = printed.split("online experiment ranker-bandit/", 1)
    offline = "offline runs behind the variants"
    assert normalised(ab_report).split(offline)[0] == shown[0].split(offline)[0]
    assert normalised("online experiment ranker-bandit/" + bandit_report) == shown[1]

    # the other designs and the helpers, as the comments on the page say
    assert ns["planned"] == 14_745
    assert ns["counts"] == {"events": 5000, "units": 2444, "periods": 3}
    assert ns["preference"].decision == "users prefer v7"
    assert ns["preference"].interleaving.winner == "b"
    assert len(ns["daily_clicks"]) == 14
    assert ns["ctr_lift"] == pytest.approx(report.metrics[0].lift.relative)
    assert f"{ns['ctr_lift']:+.2%}" == "+7.91%"


def test_the_page_s_commands_run(walkthrough):
    from labledger.cli.app import main

    if "online" not in main.commands:
        pytest.skip("the labledger online commands are not part of this build")
    found = commands()
    assert [c[:2] for c in found] == [["online", "plan"], ["online", "report"]]
    runner = CliRunner()
    outputs = {}
    for args in found:
        result = runner.invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        outputs[args[1]] = result.output
    assert "14,745" in outputs["plan"]
    assert "no sample ratio mismatch" in outputs["report"]
    assert "decision: ship treatment" in outputs["report"]
    page = Path("report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "Sequential monitoring: ctr" in page
    assert "ship treatment" in page
