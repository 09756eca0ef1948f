"""An online experiment's run page served by the app (no browser): its report as a section.

The section in a real browser: ``tests/ui/browser/test_online_page.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("jinja2")
pytest.importorskip("scipy")
pytest.importorskip("statsmodels")

from starlette.testclient import TestClient

import labledger as ll
from labledger.errors import LabledgerError
from labledger.ui import create_app

XSS = "<script>alert(1)</script>"


def _offline(store: Path, name: str, folds: list[float]) -> str:
    with ll.start_run("ranker", name=name, store=store, params={"model": name}) as run:
        run.log_folds("ndcg", folds)
    return run.id


def _ab(store: Path, models: dict[str, str], exposures: tuple[int, int], name: str) -> str:
    with ll.start_online(
        "ranker-online",
        name=name,
        variants=models,
        primary_metric="ctr",
        hypothesis="v7's offline gain carries over",
        planned_units=40_000,
        store=store,
    ) as exp:
        exp.log_exposures({"v6": exposures[0], "v7": exposures[1]}, period="2026-11-30")
        exp.log_outcomes(
            "ctr",
            {"v6": (exposures[0] // 10, exposures[0]), "v7": (exposures[1] * 112 // 1000, exposures[1])},
            period="2026-11-30",
        )
    return exp.id


@pytest.fixture
def online(store_path: Path) -> dict[str, str]:
    return fill(store_path)


def fill(store_path: Path) -> dict[str, str]:
    """Two offline runs, an A/B test between them with a clean split and one with a 51/49 split."""
    v6 = _offline(store_path, "v6", [0.70, 0.71, 0.69, 0.70, 0.72])
    v7 = _offline(store_path, "v7", [0.74, 0.75, 0.73, 0.74, 0.76])
    models = {"v6": v6, "v7": v7}
    clean = _ab(store_path, models, (50_000, 50_000), "clean")
    skewed = _ab(store_path, models, (51_000, 49_000), "skewed")
    return {"v6": v6, "v7": v7, "clean": clean, "skewed": skewed, "store": str(store_path)}


@pytest.fixture
def client(online: dict[str, str]) -> TestClient:
    return TestClient(create_app(online["store"]))


def _section(html: str) -> str:
    start = html.index('<section id="online">')
    return html[start : html.index("</section>", start)]


def test_online_run_page_shows_decision_verdicts_and_offline_links(
    client: TestClient, online: dict[str, str]
) -> None:
    page = client.get(f"/runs/{online['clean']}")
    assert page.status_code == 200
    section = _section(page.text)
    report = ll.get_run(online["clean"], online["store"])
    from labledger.online.report import online_report

    expected = online_report(report)
    assert "Online experiment" in section
    assert expected.decision.startswith("ship v7")
    assert f"decision: {expected.decision}" in section
    for verdict in expected.verdicts():
        assert verdict in section
    assert "v7 better than v6 on ctr" in section
    for header in ("difference (CI)", "p (Holm)", "always-valid p (Holm)", "confidence sequence"):
        assert header in section
    for variant in ("v6", "v7"):
        assert f'href="/runs/{online[variant]}"' in section
    assert "no sample ratio mismatch" in section
    assert "srm-flagged" not in section and "SAMPLE RATIO MISMATCH" not in section
    assert "not audited" in page.text  # completeness audits training runs only
    api = client.get(f"/api/runs/{online['clean']}").json()["online"]
    assert api["decision"] == expected.decision and api["srm"]["flagged"] is False


def test_flagged_sample_ratio_mismatch_is_loud(client: TestClient, online: dict[str, str]) -> None:
    section = _section(client.get(f"/runs/{online['skewed']}").text)
    assert 'class="problem loud srm-flagged"' in section
    assert "SAMPLE RATIO MISMATCH" in section
    assert "do not ship: sample ratio mismatch" in section


def test_bandit_and_interleaving_lines(client: TestClient, online: dict[str, str]) -> None:
    store = online["store"]
    with ll.start_online("ranker-online", design="bandit", variants=["v6", "v7"], store=store) as bandit:
        bandit.log_pulls({"v6": (500, 40.0), "v7": (500, 60.0)}, period=1)
        bandit.log_pulls({"v6": (100, 8.0), "v7": (900, 110.0)}, period=2)
    with ll.start_online("ranker-online", design="interleaving", variants=["a", "b"], store=store) as il:
        il.log_interleaving([(1, 0)] * 30 + [(0, 1)] * 60 + [(0, 0)] * 10)
    section = _section(client.get(f"/runs/{bandit.id}").text)
    assert 'id="online-bandit"' in section and "v7: 1,400 pulls" in section
    assert "decision: v7 leads" in section
    section = _section(client.get(f"/runs/{il.id}").text)
    assert 'id="online-interleaving"' in section and "users prefer b" in section


def test_offline_run_page_has_no_online_section(client: TestClient, online: dict[str, str]) -> None:
    page = client.get(f"/runs/{online['v7']}")
    assert page.status_code == 200
    assert 'id="online"' not in page.text
    assert "online" not in client.get(f"/api/runs/{online['v7']}").json()


@pytest.mark.parametrize("error", [LabledgerError("the aggregates do not add up"), ImportError("scipy")])
def test_a_failing_analysis_shows_a_message_not_an_error(
    client: TestClient, online: dict[str, str], monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def fail(*_: Any, **__: Any) -> None:
        raise error

    monkeypatch.setattr("labledger.online.report.online_report", fail)
    page = client.get(f"/runs/{online['clean']}")
    assert page.status_code == 200
    section = _section(page.text)
    assert 'id="online-problem"' in section
    assert ("do not add up" if isinstance(error, LabledgerError) else "pip install") in section


def test_stored_text_in_the_section_is_escaped(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABLEDGER_EXPERIMENT_PATTERN", ".+")
    hostile = _offline(store_path, "v6", [0.7, 0.71, 0.69])
    with ll.start_run(XSS, name="plain", store=store_path) as other:
        other.log_folds("ndcg", [0.7, 0.72, 0.71])
    run = _ab(store_path, {"v6": hostile, "v7": other.id}, (1_000, 1_000), "escaped")
    html = TestClient(create_app(store_path)).get(f"/runs/{run}").text
    section = _section(html)
    assert XSS not in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;/plain" in section
