"""An experiment's hypothesis journal page served by the app (no browser): the journal of real
scikit-learn runs chained by ``follows=``, checked against :func:`labledger.journal`.

The page in a real browser: ``tests/ui/browser/test_journal_page.py``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("jinja2")
pytest.importorskip("pyarrow")
pytest.importorskip("sklearn")

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from starlette.testclient import TestClient

import labledger as ll
from labledger import formatting as fmt
from labledger.ui import create_app

XSS = "<script>alert(1)</script>"
EXPERIMENT = "cancer"


def cancer_runs(store: Path, experiment: str = EXPERIMENT) -> dict[str, Any]:
    """A stump, a linear model following it (with a note), a deeper tree following it (a hostile
    note by another author), each with 5-fold scores and its test predictions."""
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)

    def track(name: str, model: Any, hypothesis: str, follows: Any = None) -> Any:
        with ll.start_run(experiment, name=name, hypothesis=hypothesis, follows=follows, store=store) as run:
            run.log_folds("accuracy", cross_val_score(model, X_tr, y_tr, cv=cv), cv=cv, X=X_tr, y=y_tr)
            model.fit(X_tr, y_tr)
            run.log_predictions(y_te, model.predict(X_te), proba=model.predict_proba(X_te))
        return run

    stump = track("stump", DecisionTreeClassifier(max_depth=1, random_state=0), "a single split is enough")
    logreg = track(
        "logreg",
        make_pipeline(StandardScaler(), LogisticRegression()),
        "a linear model on all features beats the stump",
        follows=stump,
    )
    deeper = track(
        "tree-4",
        DecisionTreeClassifier(max_depth=4, random_state=0),
        "a deeper tree closes the gap",
        stump.id,
    )
    ll.add_note(stump.id, "error analysis of stump: large tumours are its weak slice", store=store)
    ll.add_note(deeper.id, XSS, author="ada", store=store)
    return {"stump": stump.id, "logreg": logreg.id, "deeper": deeper.id}


@pytest.fixture
def runs(store_path: Path) -> dict[str, Any]:
    return cancer_runs(store_path)


@pytest.fixture
def client(store_path: Path) -> TestClient:
    return TestClient(create_app(store_path))


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def _entries(page: str) -> dict[str, str]:
    """Each journal entry's HTML by its run id."""
    found = re.findall(r'<section class="journal-entry" id="journal-([0-9a-f]+)"(.*?)</section>', page, re.S)
    return {run_id: body for run_id, body in found}


def _field(entry: str, css: str) -> str:
    found = re.search(rf'<dd class="{css}[^"]*">(.*?)</dd>', entry, re.S)
    assert found is not None, f"no {css} in {entry[:300]}"
    return _text(found.group(1))


def test_the_page_shows_the_journal_of_the_library(
    client: TestClient, runs: dict[str, Any], store_path: Path
) -> None:
    page = client.get(f"/experiments/{EXPERIMENT}/journal")
    assert page.status_code == 200
    assert 'data-page="journal"' in page.text
    assert f"{EXPERIMENT}: the hypothesis journal" in page.text
    assert "accuracy, split test; 3 runs" in page.text
    journal = ll.journal(EXPERIMENT, store=store_path)
    entries = _entries(page.text)
    assert list(entries) == [e.run.id for e in journal.entries]  # the journal's order
    assert [e.run.name for e in journal.entries] == ["stump", "logreg", "tree-4"]
    for number, e in enumerate(journal.entries, 1):
        part = entries[e.run.id]
        assert f'data-depth="{e.depth}"' in part
        heading = re.search(r"<h2>(.*?)</h2>", part, re.S)
        assert heading is not None and _text(heading.group(1)).startswith(f"{number}. {e.run.name}")
        assert f'href="/runs/{e.run.id}"' in part
        assert _field(part, "journal-hypothesis") == e.run.hypothesis
        assert _field(part, "journal-result") == e.result
        assert _field(part, "journal-verdict") == e.verdict
        if e.follows:
            assert _field(part, "journal-follows").startswith(e.follows)
        else:
            assert "journal-follows" not in part
        notes = [_text(n) for n in re.findall(r'<li class="journal-note">(.*?)</li>', part, re.S)]
        assert notes == [f"{n['text']} ({fmt.when(n['created_at'])}, {n['author']})" for n in e.notes]
        led = re.findall(r'<a class="led-to-run" href="/runs/([0-9a-f]+)">(.*?)</a>', part)
        assert led == [(r.id, r.name) for r in e.led_to]
    stump, logreg, deeper = journal.entries
    # the verdict is compare's and McNemar's on the shared test examples, as the CLI prints it
    assert logreg.verdict.startswith("against the run it follows, stump: ") and "McNemar" in logreg.verdict
    assert f"verdict:    {logreg.verdict}" in journal.render()
    assert [r.name for r in stump.led_to] == ["logreg", "tree-4"]
    assert deeper.notes[0]["author"] == "ada"


def test_every_run_link_opens_the_run_page(client: TestClient, runs: dict[str, Any]) -> None:
    page = client.get(f"/experiments/{EXPERIMENT}/journal").text
    linked = set(re.findall(r'href="/runs/([0-9a-f]+)"', page))
    assert linked == {runs["stump"], runs["logreg"], runs["deeper"]}
    for run_id in linked:
        opened = client.get(f"/runs/{run_id}")
        assert opened.status_code == 200 and f"/runs/{run_id}" in str(opened.url)
    # the chain's links within the page point at entries that are there
    anchors = set(re.findall(r'href="#journal-([0-9a-f]+)"', page))
    assert anchors and anchors <= set(_entries(page))


def test_the_runs_page_links_to_the_journal(client: TestClient, runs: dict[str, Any]) -> None:
    page = client.get(f"/experiments/{EXPERIMENT}").text
    assert f'id="journal-link" class="button" href="/experiments/{EXPERIMENT}/journal"' in page


def test_hostile_notes_and_names_render_as_text(
    client: TestClient, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancer_runs(store_path)
    monkeypatch.setenv("LABLEDGER_EXPERIMENT_PATTERN", ".+")
    with ll.start_run("hostile", name=XSS, hypothesis=XSS, store=store_path) as run:
        run.log_folds("accuracy", [0.9, 0.91, 0.92])
    ll.add_note(run.id, XSS, author=XSS, store=store_path)
    for path in (f"/experiments/{EXPERIMENT}/journal", "/experiments/hostile/journal"):
        page = client.get(path)
        assert page.status_code == 200
        assert XSS not in page.text and html.escape(XSS, quote=False) in page.text
    hostile = client.get("/experiments/hostile/journal").text
    assert hostile.count(html.escape(XSS, quote=False)) >= 4  # name, hypothesis, note, author


def test_an_unknown_experiment_answers_the_404_page(client: TestClient, runs: dict[str, Any]) -> None:
    page = client.get("/experiments/no-such-experiment/journal")
    assert page.status_code == 404
    assert 'data-page="missing"' in page.text and "experiment &#39;no-such-experiment&#39;" in page.text


def test_an_experiment_named_like_a_journal_keeps_its_runs_page(
    client: TestClient, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABLEDGER_EXPERIMENT_PATTERN", ".+")
    with ll.start_run("team/journal", name="only", store=store_path):
        pass
    page = client.get("/experiments/team/journal")
    assert page.status_code == 200 and 'data-page="runs"' in page.text and "/runs/" in page.text
    journal = client.get("/experiments/team/journal/journal")
    assert journal.status_code == 200 and 'data-page="journal"' in journal.text


def test_a_run_without_folds_or_hypothesis_still_has_its_entry(client: TestClient, store_path: Path) -> None:
    with ll.start_run("plain", name="first", store=store_path) as run:
        run.log_metric("loss", float(np.log(2)))
    page = client.get("/experiments/plain/journal")
    assert page.status_code == 200
    (entry,) = _entries(page.text).values()
    (expected,) = ll.journal("plain", store=store_path).entries
    assert _field(entry, "journal-hypothesis") == "(none recorded)"
    assert _field(entry, "journal-verdict") == expected.verdict == "no verdict: no fold results"
