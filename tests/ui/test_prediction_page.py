"""A run page's "Error analysis" section served by the app (no browser): the error analysis of
real scikit-learn models' stored predictions, checked against ``ll.errors`` and scikit-learn.

The section in a real browser: ``tests/ui/browser/test_prediction_page.py``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("starlette")
pytest.importorskip("jinja2")
pytest.importorskip("pyarrow")
pytest.importorskip("sklearn")

from sklearn.datasets import load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    mean_squared_error,
    precision_recall_fscore_support,
)
from sklearn.model_selection import train_test_split
from starlette.testclient import TestClient

import labledger as ll
from labledger.errors import LabledgerError
from labledger.predictions.analysis import error_report
from labledger.ui import create_app
from labledger.ui.prediction_section import MAX_SLICES, TOP_EXAMPLES

XSS = "<script>alert(1)</script>"
REGIONS = np.array(["north", "south", "east", "west"])


def digits_run(store: Path, name: str = "logreg", **start: Any) -> tuple[str, dict[str, Any]]:
    """A logistic regression on the digits, its test predictions logged with two slicing columns."""
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te, _, idx = train_test_split(X, y, np.arange(len(y)), test_size=0.3, random_state=0)
    model = LogisticRegression(max_iter=300, solver="newton-cg").fit(X_tr / 16, y_tr)
    pred, proba = model.predict(X_te / 16), model.predict_proba(X_te / 16)
    features = pd.DataFrame(
        {"region": REGIONS[np.random.default_rng(0).integers(0, 4, len(y_te))], "ink": X_te.sum(axis=1)}
    )
    with ll.start_run("digits", name=name, store=store, **start) as run:
        run.log_predictions(y_te, pred, proba=proba, ids=idx, features=features, classes=model.classes_)
    return run.id, {"y": y_te, "pred": pred, "proba": proba, "ids": idx, "features": features}


def diabetes_run(store: Path) -> tuple[str, dict[str, Any]]:
    """A ridge regression on the diabetes data, its test predictions logged with two slicing columns."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    pred = Ridge(alpha=0.1).fit(X_tr, y_tr).predict(X_te)
    features = pd.DataFrame({"sex": np.where(X_te["sex"] > 0, "m", "f"), "bmi": X_te["bmi"].to_numpy()})
    with ll.start_run("diabetes", name="ridge", store=store) as run:
        run.log_predictions(y_te, pred, ids=X_te.index.to_numpy(), features=features)
    return run.id, {"y": y_te.to_numpy(), "pred": pred}


@pytest.fixture
def client(store_path: Path) -> TestClient:
    return TestClient(create_app(store_path))


def section(page: str) -> str:
    """The page's "Error analysis" section (HTML)."""
    start = page.index('<section id="error-analysis">')
    return page[start : page.index("</section>", start)]


def _cells(table_html: str) -> list[list[str]]:
    """The text of each body row's cells of the first table in ``table_html``."""
    body = table_html[table_html.index("<tbody>") : table_html.index("</tbody>")]
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[dh][^>]*>.*?</t[dh]>", row)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    ]


def _table(part: str, css: str) -> str:
    start = part.index(f'class="{css}"') if f'class="{css}"' in part else part.index(f'{css}"')
    return part[start : part.index("</table>", start)]


def test_classification_section_equals_sklearn_and_ll_errors(client: TestClient, store_path: Path) -> None:
    run_id, d = digits_run(store_path)
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    part = section(page.text)
    assert "Error analysis" in part and 'data-split="test"' in part
    accuracy = accuracy_score(d["y"], d["pred"])
    assert f"accuracy {accuracy:.4g}</strong> on {len(d['y'])} examples" in part

    precision, recall, f1, support = precision_recall_fscore_support(d["y"], d["pred"], zero_division=0)
    rows = _cells(_table(part, "grid compact pred-classes"))
    assert [r[0] for r in rows] == [str(c) for c in range(10)]
    for i, row in enumerate(rows):
        assert row[1:] == [f"{precision[i]:.4g}", f"{recall[i]:.4g}", f"{f1[i]:.4g}", str(support[i])]
    matrix = confusion_matrix(d["y"], d["pred"])
    shown = _cells(_table(part, "pred-confusion"))
    assert [[int(c) for c in r[1:]] for r in shown] == matrix.tolist()

    api = client.get(f"/api/runs/{run_id}").json()["predictions"]
    (table,) = api["tables"]
    assert table["overall"] == pytest.approx(accuracy) and table["support"] == len(d["y"])
    assert [[c["count"] for c in r["cells"]] for r in table["confusion"]["rows"]] == matrix.tolist()
    expected = pd.concat(
        [
            ll.errors(run_id, by=[c], store=store_path).rename(columns={c: "value"}).assign(column=c)
            for c in ("region", "ink")
        ]
    ).sort_values("impact", ascending=False, kind="stable")
    got = pd.DataFrame(table["slices"]["rows"])
    assert table["slices"]["count"] == len(expected) == len(got) == 8
    for key in ("support", "accuracy", "gap", "ci_low", "ci_high", "impact"):
        assert got[key].tolist() == pytest.approx(expected[key].tolist()), key
    assert got["column"].tolist() == expected["column"].tolist()
    assert got["value"].tolist() == expected["value"].astype(str).tolist()
    slices = _cells(_table(part, "grid compact pred-slices"))
    assert [r[:3] for r in slices] == [
        [c, v, str(n)] for c, v, n in zip(got["column"], got["value"], got["support"], strict=True)
    ]

    hardest = error_report(run_id, store=store_path, top=TOP_EXAMPLES).hardest
    assert hardest is not None
    assert [r["id"] for r in table["hardest"]["rows"]] == [str(i) for i in hardest["id"]]
    assert [r["loss"] for r in table["hardest"]["rows"]] == pytest.approx(hardest["loss"].tolist())
    assert table["hardest"]["loss"] == "log loss"
    assert [r[0] for r in _cells(_table(part, "grid compact pred-hardest"))] == [
        str(i) for i in hardest["id"]
    ]


def test_regression_section_shows_rmse_residuals_and_slices(client: TestClient, store_path: Path) -> None:
    run_id, d = diabetes_run(store_path)
    part = section(client.get(f"/runs/{run_id}").text)
    rmse = float(np.sqrt(mean_squared_error(d["y"], d["pred"])))
    assert f"rmse {rmse:.4g}</strong> on {len(d['y'])} examples (regression)" in part
    assert "pred-confusion" not in part
    residual = d["y"] - d["pred"]
    quantiles = np.quantile(residual, [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1])
    assert _cells(_table(part, "grid compact pred-residuals")) == [[f"{q:.4g}" for q in quantiles]]
    table = client.get(f"/api/runs/{run_id}").json()["predictions"]["tables"][0]
    assert table["metric"] == "rmse" and table["overall"] == pytest.approx(rmse)
    assert list(table["residuals"].values()) == pytest.approx(quantiles.tolist())
    by_sex = ll.errors(run_id, by=["sex"], store=store_path)
    got = {r["value"]: r for r in table["slices"]["rows"] if r["column"] == "sex"}
    for _, row in by_sex.iterrows():
        assert got[row["sex"]]["rmse"] == pytest.approx(row["rmse"])
        assert [got[row["sex"]]["ci_low"], got[row["sex"]]["ci_high"]] == pytest.approx(
            [row["ci_low"], row["ci_high"]]
        )
    worst = int(np.argmax(residual**2))
    assert table["hardest"]["loss"] == "squared error"
    assert table["hardest"]["rows"][0]["loss"] == pytest.approx(residual[worst] ** 2)


def test_a_run_that_follows_another_links_to_it(client: TestClient, store_path: Path) -> None:
    first, _ = digits_run(store_path, "first")
    second, _ = digits_run(store_path, "second", follows=first, hypothesis="the same, again")
    part = section(client.get(f"/runs/{second}").text)
    assert f'<a class="follows-run" href="/runs/{first}">digits/first</a>' in part
    assert client.get(f"/api/runs/{second}").json()["predictions"]["follows"] == {
        "id": first,
        "ref": "digits/first",
    }
    assert "follows-run" not in section(client.get(f"/runs/{first}").text)


def test_a_run_without_predictions_has_no_section(client: TestClient, store_path: Path) -> None:
    with ll.start_run("digits", name="plain", store=store_path) as run:
        run.log_metric("loss", 0.5)
    assert 'id="error-analysis"' not in client.get(f"/runs/{run.id}").text
    assert "predictions" not in client.get(f"/api/runs/{run.id}").json()


def test_each_table_is_read_once_per_page(
    client: TestClient, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    _, d = digits_run(store_path)
    with ll.start_run("digits", name="val", store=store_path) as run:
        run.log_predictions(d["y"], d["pred"], split="val", features=d["features"])
        run.log_predictions(d["y"], d["pred"], split="test", name="holdout")
    reads: list[Any] = []
    real = pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: reads.append(a) or real(*a, **k))
    part = section(client.get(f"/runs/{run.id}").text)
    assert len(reads) == 2
    names = re.findall(r'class="pred-table" data-name="([^"]+)" data-split="([^"]+)"', part)
    assert names == [("holdout", "test"), ("predictions", "val")]
    assert "No slicing columns logged" in part  # the holdout table has none


def test_many_slices_are_cut_to_the_first_rows(client: TestClient, store_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    pred = np.where(rng.random(2000) < 0.2, 1 - y, y)
    with ll.start_run("many", name="slices", store=store_path) as run:
        run.log_predictions(y, pred, features=pd.DataFrame({"user": [f"u{i % 300}" for i in range(2000)]}))
    table = client.get(f"/api/runs/{run.id}").json()["predictions"]["tables"][0]
    assert table["slices"]["count"] == 300 and len(table["slices"]["rows"]) == MAX_SLICES
    part = section(client.get(f"/runs/{run.id}").text)
    assert f"the first {MAX_SLICES} of 300 slices" in part
    assert len(_cells(_table(part, "grid compact pred-slices"))) == MAX_SLICES


def test_an_unreadable_table_shows_a_problem(client: TestClient, store_path: Path, tmp_path: Path) -> None:
    run_id, _ = digits_run(store_path)
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with ll.start_run("digits", name="broken", store=store_path) as run:
        run.log_artifact(str(broken), kind="predictions", metadata={"split": "test", "name": "broken"})
    page = client.get(f"/runs/{run.id}")
    assert page.status_code == 200
    part = section(page.text)
    assert 'class="problem pred-problem"' in part and "could not be analysed" in part
    assert client.get(f"/api/runs/{run.id}").json()["predictions"]["tables"][0]["problem"]
    assert "pred-problem" not in section(client.get(f"/runs/{run_id}").text)


@pytest.mark.parametrize("error", [LabledgerError("the table is damaged"), ImportError("pyarrow")])
def test_a_failing_analysis_shows_a_message_not_an_error(
    client: TestClient, store_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    run_id, _ = digits_run(store_path)

    def fail(*_: Any, **__: Any) -> None:
        raise error

    monkeypatch.setattr("labledger.predictions.read.get_predictions", fail)
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    part = section(page.text)
    assert ("table is damaged" if isinstance(error, LabledgerError) else "pip install") in part


def test_without_pyarrow_the_section_says_so(
    client: TestClient, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, _ = digits_run(store_path)
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    part = section(client.get(f"/runs/{run_id}").text)
    assert 'id="pred-problem"' in part and "pip install &#39;labledger[parquet]&#39;" in part
    assert client.get(f"/api/runs/{run_id}").json()["predictions"]["tables"] == []


def test_stored_text_in_the_section_is_escaped(client: TestClient, store_path: Path) -> None:
    y = np.array([0, 1, 1, 0, 1, 0])
    with ll.start_run("hostile", name="xss", store=store_path) as run:
        run.log_predictions(
            y,
            np.array([0, 1, 0, 0, 1, 1]),
            ids=[XSS, "b", "c", "d", "e", "f"],
            features=pd.DataFrame({XSS: [XSS, XSS, "ok", "ok", XSS, "ok"]}),
            name="preds",
        )
    part = section(client.get(f"/runs/{run.id}").text)
    assert XSS not in part
    escaped = html.escape(XSS, quote=True)
    assert part.count(escaped) >= 3  # the column, the slice, the hardest example's id


def test_the_predictions_artifact_previews_as_a_parquet_table(client: TestClient, store_path: Path) -> None:
    """A stored blob has no extension of its own: the artifact's name tells its format."""
    run_id, d = digits_run(store_path)
    page = client.get(f"/runs/{run_id}").text
    start = page.index('<section id="artifacts">')
    artifacts = page[start : page.index("</section>", start)]
    assert "y_true" in artifacts and "region" in artifacts, artifacts[:2000]
    assert f"{len(d['y']):,} rows in all" in artifacts
    assert "PAR1" not in artifacts  # not the file's bytes read as CSV


def test_a_brief_run_read_leaves_the_analysis_out_and_reads_no_table(
    client: TestClient, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live run's page polls its run every second with ?brief=1: no table is read for it."""
    import pyarrow.parquet as pq

    run_id, _ = digits_run(store_path)
    reads: list[Any] = []
    real = pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: reads.append(a) or real(*a, **k))
    brief = client.get(f"/api/runs/{run_id}", params={"brief": "1"}).json()
    assert (
        "predictions" not in brief and brief["metrics"] == client.get(f"/api/runs/{run_id}").json()["metrics"]
    )
    assert len(reads) == 1  # the full read only
