"""The dashboard's HTML pages served by the app (no browser): content, escaping, errors, headers.

The pages' scripts and charts are driven in a real browser by ``tests/ui/browser``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("jinja2")

from starlette.testclient import TestClient

import labledger as ll
from labledger.ui import create_app
from labledger.ui.downsample import chart_indices

XSS = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
CV = {"cv/n_train": 80, "cv/n_test": 20, "cv/random_state": 0}


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A search-like parent with halving children, two runs with folds, a failed run, hostile text."""
    store = tmp_path / "ledger"
    plot = tmp_path / "curve.svg"
    plot.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(3)</script></svg>')
    table = tmp_path / "preds.csv"
    table.write_text("id,y_true,y_pred\n" + "".join(f"{i},{i % 2},{(i + 1) % 2}\n" for i in range(50)))
    ids: dict[str, str] = {}
    with ll.start_run("digits", name="a", store=store, params={"C": 1.0, "kernel": "rbf", **CV}) as a:
        a.log_folds("accuracy", [0.91, 0.92, 0.93, 0.92, 0.94])
        for i in range(300):
            a.log_metric("train/loss", math.exp(-i / 50), step=i, epoch=i // 100)
            a.log_metric("val/loss", math.exp(-i / 60) + 0.1, step=i, epoch=i // 100)
        a.log_artifact(plot, kind="plot")
        a.log_artifact(table, kind="table")
    with ll.start_run("digits", name="b", store=store, params={"C": 10.0, "kernel": "rbf", **CV}) as b:
        b.log_folds("accuracy", [0.81, 0.83, 0.82, 0.80, 0.84])
    with ll.start_run("digits", name="search", store=store, params={"grid": "C"}) as search:
        for it in (0, 1):
            for c in (1, 2):
                params = {
                    "C": c,
                    "candidate/index": it * 2 + c,
                    "halving/iter": it,
                    "halving/n_resources": 20,
                }
                name = f"cand-{it}-{c}"
                with ll.start_run(
                    "digits", name=name, parent=search, store=store, params={**params, **CV}
                ) as cand:
                    cand.log_folds("accuracy", [0.5 + it / 10 + c / 100 + f / 1000 for f in range(5)])
    with (
        pytest.raises(ValueError),
        ll.start_run("digits", name="bad", store=store, params={"C": -1.0}) as bad,
    ):
        raise ValueError("C must be positive\nmore detail")
    monkeypatch.setenv("LABLEDGER_EXPERIMENT_PATTERN", ".+")  # a store written with a loose convention
    with ll.start_run(XSS, name=XSS, store=store, params={"html": "<b>bold</b>"}, hypothesis=IMG) as x:
        x.set_tags({"note": IMG})
        x.log_metric(XSS, 1.0)
    ids.update(a=a.id, b=b.id, search=search.id, bad=bad.id, xss=x.id, store=str(store))
    return ids


@pytest.fixture
def client(filled: dict[str, str]) -> TestClient:
    return TestClient(create_app(filled["store"]))


def test_experiments_page_lists_experiments_with_best_headline(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'data-page="experiments"' in page.text
    assert page.text.count('class="experiment"') == 2
    best = re.search(r'<span class="metric-name">accuracy</span> ([\d.]+) ± ([\d.]+)', page.text)
    assert best is not None and best.groups() == (
        "0.924",
        "0.0102",
    )  # population std, as scikit-learn reports it
    assert client.get("/", params={"q": "dig"}).text.count('class="experiment"') == 1
    assert "No experiment matches" in client.get("/", params={"q": "zzz"}).text


def test_runs_page_table_children_and_failed_runs(client: TestClient, filled: dict[str, str]) -> None:
    page = client.get("/experiments/digits")
    assert page.status_code == 200
    assert '<span id="total">4 runs</span>' in page.text
    rows = re.findall(r'<tr class="run( child)?" data-run-id="(\w+)" data-status="(\w+)"', page.text)
    top = [(rid, status) for child, rid, status in rows if not child]
    assert (filled["bad"], "failed") in top and len(top) == 4
    assert sum(1 for child, _, _ in rows if child) == 4
    assert page.text.count('<tr class="iteration"') == 2
    assert "ValueError: C must be positive" in page.text
    assert "more detail" not in page.text.split('id="runs"')[1]


def test_runs_page_filter_sort_columns_and_paging(client: TestClient, filled: dict[str, str]) -> None:
    page = client.get("/experiments/digits", params={"filter": "params.C > 5"})
    assert '<span id="total">1 run</span>' in page.text and filled["b"] in page.text
    bad = client.get("/experiments/digits", params={"filter": "params.C >> 5"})
    assert bad.status_code == 400
    error = re.search(r'<pre id="filter-error"[^>]*>(.*?)</pre>', bad.text, re.S)
    assert error is not None and "^" in error.group(1) and "params.C &gt;&gt; 5" in error.group(1)
    sorted_page = client.get("/experiments/digits", params={"sort": "-folds.accuracy"}).text
    assert sorted_page.index(filled["a"]) < sorted_page.index(filled["b"])
    picked = client.get("/experiments/digits", params={"columns": "params.kernel,completeness"}).text
    assert ">params.kernel<" in picked and ">completeness<" in picked and "/9" in picked
    first = client.get("/experiments/digits", params={"limit": 2, "sort": "name"}).text
    assert 'id="next-page"' in first and 'id="prev-page"' not in first
    second = client.get("/experiments/digits", params={"limit": 2, "offset": 2, "sort": "name"}).text
    assert 'id="prev-page"' in second and "3–4 of 4" in second
    assert 'class="column-choice" type="checkbox" value="params.grid"' in first  # a run on page 2


def test_run_page_sections(client: TestClient, filled: dict[str, str]) -> None:
    page = client.get(f"/runs/{filled['a']}")
    assert page.status_code == 200
    for section in ("overview", "charts", "folds", "params", "artifacts", "lineage"):
        assert f'<section id="{section}">' in page.text
    assert f'src="/api/runs/{filled["a"]}/artifacts/curve.svg?inline=1"' in page.text
    assert "<th>y_true</th>" in page.text and page.text.count("<tr><td>") >= 20
    assert 'id="live-indicator"' not in page.text
    assert client.get("/runs/ffffffffffff").status_code == 404


def test_inline_svg_is_sandboxed_and_downloads_are_attachments(
    client: TestClient, filled: dict[str, str]
) -> None:
    inline = client.get(f"/api/runs/{filled['a']}/artifacts/curve.svg", params={"inline": "1"})
    assert inline.headers["content-type"].startswith("image/svg+xml")
    assert inline.headers["content-disposition"].startswith("inline")
    assert "sandbox" in inline.headers["content-security-policy"]
    download = client.get(f"/api/runs/{filled['a']}/artifacts/preds.csv", params={"inline": "1"})
    assert download.headers["content-disposition"].startswith("attachment")


def test_compare_page_shows_the_verdict(client: TestClient, filled: dict[str, str]) -> None:
    page = client.get("/compare", params={"runs": f"{filled['a']},{filled['b']}"})
    assert page.status_code == 200
    verdict = re.search(r'<p class="verdict-text">(.*?)</p>', page.text, re.S)
    assert verdict is not None and "better than" in verdict.group(1)
    assert ll.compare([filled["a"], filled["b"]], store=filled["store"]).pairs[0].verdict == verdict.group(1)
    assert '<tr class="differs"><th>C</th>' in page.text
    assert client.get("/compare", params={"runs": filled["a"]}).status_code == 400
    api = client.get("/api/compare", params={"runs": f"{filled['a']},{filled['b']}"}).json()
    assert api["tests"][0]["winner"] == "a"


def test_compare_refuses_loudly_when_not_comparable(client: TestClient, filled: dict[str, str]) -> None:
    children = [r for r in ll.runs("digits", store=filled["store"], include_children=True).itertuples()]
    stages = [r.id for r in children if r.name in ("cand-0-1", "cand-1-1")]
    page = client.get("/compare", params={"runs": ",".join(stages), "metric": "accuracy"})
    assert page.status_code == 200, page.text[page.text.find("compare-problem") :][:300]
    box = re.search(r'<div id="not-comparable"[^>]*>(.*?)</div>', page.text, re.S)
    assert box is not None and "Not comparable" in box.group(1)
    assert "different successive-halving iterations" in box.group(1)


def test_hostile_text_renders_as_text_everywhere(client: TestClient, filled: dict[str, str]) -> None:
    from urllib.parse import quote

    pages = [
        client.get("/").text,
        client.get("/experiments/" + quote(XSS, safe="")).text,
        client.get(f"/runs/{filled['xss']}").text,
        client.get("/compare", params={"runs": f"{filled['xss']},{filled['a']}"}).text,
    ]
    for text in pages:
        assert XSS not in text and IMG not in text and "<b>bold</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[2] and "&lt;b&gt;bold&lt;/b&gt;" in pages[2]


def test_security_headers_and_only_get(client: TestClient) -> None:
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    for path in ("/", "/experiments/digits", "/compare", "/static/charts.js"):
        assert client.post(path).status_code == 405


def test_static_files_are_served_from_the_package(client: TestClient) -> None:
    script = client.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert script.status_code == 200 and "uPlot" in script.text[:200]
    assert client.get("/static/vendor/uplot/LICENSE").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_chart_indices_use_minmax_lttb_and_fall_back_on_nan() -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal(100_000).cumsum()
    values[777] = 1e6
    steps = np.arange(len(values))
    keep, method = chart_indices(steps, values, 1000)
    assert method == "minmax-lttb" and len(keep) <= 1000 and 777 in keep
    assert keep[0] == 0 and keep[-1] == len(values) - 1
    values[5] = np.nan
    keep, method = chart_indices(steps, values, 1000)
    assert method == "minmax" and 777 in keep
