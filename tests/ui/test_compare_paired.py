"""The compare page's "Paired on the same examples" section served by the app (no browser): the
paired tests on real scikit-learn models' stored predictions, checked against
:func:`labledger.predictions.analysis.paired_verdicts` and ``labledger compare``.
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

from click.testing import CliRunner
from sklearn.datasets import load_diabetes, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, cross_val_score, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from starlette.testclient import TestClient

import labledger as ll
from labledger.cli import main
from labledger.predictions.analysis import paired, paired_verdicts
from labledger.ui import create_app

XSS = "<script>alert(1)</script>"
CLASSIFIERS = {
    "logreg": lambda: LogisticRegression(max_iter=300, solver="newton-cg"),
    "nb": GaussianNB,
    "tree": lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
}


def digits_runs(store: Path, names: list[str], *, shifted: str | None = None) -> dict[str, str]:
    """One run per model on the digits: 5-fold accuracy and the test predictions (``shifted``'s
    on other examples: the ids moved by 10,000)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16
    X_tr, X_te, y_tr, y_te, _, idx = train_test_split(X, y, np.arange(len(y)), test_size=0.3, random_state=0)
    cv = KFold(5, shuffle=True, random_state=0)
    ids = {}
    for name in names:
        model = CLASSIFIERS[name.split("-")[0]]()
        with ll.start_run("digits", name=name, store=store) as run:
            run.log_folds("accuracy", cross_val_score(model, X_tr, y_tr, cv=cv), cv=cv, X=X_tr, y=y_tr)
            model.fit(X_tr, y_tr)
            shown = idx + 10_000 if name == shifted else idx
            run.log_predictions(y_te, model.predict(X_te), ids=shown, classes=model.classes_)
        ids[name] = run.id
    return ids


def diabetes_runs(store: Path) -> dict[str, str]:
    """A ridge regression and a regression tree on the diabetes data, their test predictions."""
    X, y = load_diabetes(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    ids = {}
    for name, model in (
        ("ridge", Ridge(alpha=0.1)),
        ("tree", DecisionTreeRegressor(max_depth=3, random_state=0)),
    ):
        with ll.start_run("diabetes", name=name, store=store) as run:
            run.log_predictions(y_te, model.fit(X_tr, y_tr).predict(X_te), task="regression")
        ids[name] = run.id
    return ids


@pytest.fixture
def client(store_path: Path) -> TestClient:
    return TestClient(create_app(store_path))


def _compare(client: TestClient, *run_ids: str) -> str:
    page = client.get("/compare", params={"runs": ",".join(run_ids)})
    assert page.status_code == 200, page.text[:500]
    return page.text


def _section(page: str) -> str | None:
    if '<section id="paired-examples">' not in page:
        return None
    start = page.index('<section id="paired-examples">')
    return page[start : page.index("</section>", start)]


def _pairs(section: str) -> list[dict[str, Any]]:
    """Each pair's run ids, labels and verdict text, as shown."""
    found = re.findall(
        r'<div class="verdict paired-pair[^"]*" data-a="(\w+)" data-b="(\w+)">\s*<p class="small">(.*?)</p>'
        r'\s*<p class="verdict-text paired-verdict">(.*?)</p>',
        section,
        re.S,
    )
    return [
        {"a": a, "b": b, "head": html.unescape(re.sub(r"<[^>]+>", "", head)), "verdict": html.unescape(text)}
        for a, b, head, text in found
    ]


def _library(line: str, a: str, b: str) -> str:
    prefix = f"{a} vs {b}: "
    assert line.startswith(prefix)
    return line[len(prefix) :]


def test_two_classifiers_show_mcnemar_as_the_library_and_the_cli(
    client: TestClient, store_path: Path
) -> None:
    ids = digits_runs(store_path, ["logreg", "nb"])
    a, b = ids["logreg"], ids["nb"]
    section = _section(_compare(client, a, b))
    assert section is not None and "Paired on the same examples" in section
    (shown,) = _pairs(section)
    (line,) = paired_verdicts([a, b], store=store_path)
    assert (shown["a"], shown["b"]) == (a, b) and shown["head"] == "A logreg vs B nb"
    assert shown["verdict"] == _library(line, a, b)
    m = paired(a, b, store=store_path).mcnemar
    assert m.n10 + m.n01 > 0
    counts = (
        f"B fixes {m.n10} examples A gets wrong and breaks {m.n01} A gets right "
        f"(net {m.n10 - m.n01:+d} of {m.n})"
    )
    assert shown["verdict"].startswith(counts) and f"p={m.p_value:.3g}" in shown["verdict"]
    # the command prints the same sentence for the same two runs
    printed = CliRunner().invoke(main, ["compare", a, b, "--store", str(store_path)])
    assert printed.exit_code == 0, printed.output
    assert "paired on the same examples (stored predictions)" in printed.output
    assert f"  {line}" in printed.output
    api = client.get("/api/compare", params={"runs": f"{a},{b}"}).json()["paired_on_examples"]
    assert api["problem"] is None
    assert [p["line"] for p in api["pairs"]] == [line] and api["pairs"][0]["tested"] is True


def test_with_three_runs_each_pair_names_the_page_labels(client: TestClient, store_path: Path) -> None:
    ids = digits_runs(store_path, ["logreg", "nb", "tree"])
    order = [ids["logreg"], ids["nb"], ids["tree"]]
    shown = _pairs(_section(_compare(client, *order)) or "")
    lines = paired_verdicts(order, store=store_path)
    assert [(p["a"], p["b"]) for p in shown] == [
        (order[0], order[1]),
        (order[0], order[2]),
        (order[1], order[2]),
    ]
    assert [p["head"] for p in shown] == ["A logreg vs B nb", "A logreg vs C tree", "B nb vs C tree"]
    assert shown[0]["verdict"] == _library(lines[0], order[0], order[1])
    # the pair (B, C): the library's A and B are the page's B and C
    library = _library(lines[2], order[1], order[2])
    assert shown[2]["verdict"] == re.sub(r"\b[AB]\b", lambda m: {"A": "B", "B": "C"}[m.group()], library)
    m = paired(order[1], order[2], store=store_path).mcnemar
    assert shown[2]["verdict"].startswith(
        f"C fixes {m.n10} examples B gets wrong and breaks {m.n01} B gets right"
    )


def test_regression_runs_show_the_paired_loss_test(client: TestClient, store_path: Path) -> None:
    ids = diabetes_runs(store_path)
    a, b = ids["ridge"], ids["tree"]
    (shown,) = _pairs(_section(_compare(client, a, b)) or "")
    (line,) = paired_verdicts([a, b], store=store_path)
    assert shown["verdict"] == _library(line, a, b)
    loss = paired(a, b, store=store_path).loss_test
    assert shown["verdict"].startswith(f"mean loss A − B = {loss.mean_difference:.4g}")
    assert f"paired t-test p={loss.p_value:.3g}" in shown["verdict"] and "McNemar" not in shown["verdict"]


def test_no_section_without_predictions_on_the_same_examples(client: TestClient, store_path: Path) -> None:
    ids = digits_runs(store_path, ["logreg", "nb-shifted"], shifted="nb-shifted")
    with ll.start_run("digits", name="folds-only", store=store_path) as plain:
        plain.log_folds("accuracy", [0.9, 0.91, 0.92, 0.93, 0.94])
    # one side without predictions: nothing to pair
    assert _section(_compare(client, ids["logreg"], plain.id)) is None
    api = client.get("/api/compare", params={"runs": f"{ids['logreg']},{plain.id}"}).json()
    assert api["paired_on_examples"] == {"pairs": [], "problem": None}
    # predictions on other examples: refused by the library, and the page says why, as the CLI does
    part = _section(_compare(client, ids["logreg"], ids["nb-shifted"]))
    assert part is not None and "no paired test" in part and "only in" in part
    (refused,) = client.get("/api/compare", params={"runs": f"{ids['logreg']},{ids['nb-shifted']}"}).json()[
        "paired_on_examples"
    ]["pairs"]
    assert refused["tested"] is False and "no paired test" in refused["verdict"]
    assert refused["line"] == paired_verdicts([ids["logreg"], ids["nb-shifted"]], store=store_path)[0]


def test_a_classifier_beside_a_regression_says_why_there_is_no_test(
    client: TestClient, store_path: Path
) -> None:
    digits = digits_runs(store_path, ["logreg"])
    diabetes = diabetes_runs(store_path)
    section = _section(_compare(client, digits["logreg"], diabetes["ridge"]))
    assert section is not None and 'id="paired-problem"' in section
    assert "two classification or two regression runs" in html.unescape(section)


def test_hostile_run_names_render_as_text(
    client: TestClient, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = digits_runs(store_path, ["logreg"])
    monkeypatch.setenv("LABLEDGER_EXPERIMENT_PATTERN", ".+")
    X, y = load_digits(return_X_y=True)
    _, _, _, y_te, _, idx = train_test_split(X, y, np.arange(len(y)), test_size=0.3, random_state=0)
    with ll.start_run("digits", name=XSS, store=store_path) as run:
        run.log_predictions(y_te, np.zeros_like(y_te), ids=idx)  # always 0: many examples broken
    page = _compare(client, ids["logreg"], run.id)
    section = _section(page)
    assert section is not None and XSS not in page
    assert html.escape(XSS, quote=False) in section
    (shown,) = _pairs(section)
    assert shown["head"] == f"A logreg vs B {XSS}" and "B is less accurate than A" in shown["verdict"]
