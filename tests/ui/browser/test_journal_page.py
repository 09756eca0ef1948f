"""An experiment's hypothesis journal page in the browser: runs chained by ``follows=``.

The session's filled store chains no runs, so this module serves a small store of its own:
its ``server`` stands in for the session one and the shared ``page`` fixture (with its checks for
JavaScript errors, failed requests and dialogs) opens pages on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..test_journal_page import EXPERIMENT, XSS, cancer_runs
from .support import Screenshot, serve_dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytest.importorskip("pyarrow")
pytest.importorskip("sklearn")


@pytest.fixture
def runs(store_path: Path) -> dict[str, Any]:
    """A stump and two runs following it, with notes (one of them hostile markup)."""
    return {**cancer_runs(store_path), "store": str(store_path)}


@pytest.fixture
def server(runs: dict[str, Any]) -> Iterator[str]:
    """The dashboard over this module's store, served on a free loopback port."""
    with serve_dashboard(runs["store"], name="labledger-ui-journal") as url:
        yield url


def test_the_journal_renders_from_the_runs_page_and_its_run_links_navigate(
    page: Page, runs: dict[str, Any], screenshot: Screenshot
) -> None:
    page.goto(f"/experiments/{EXPERIMENT}")
    page.locator("a#journal-link").click()
    page.wait_for_url(f"**/experiments/{EXPERIMENT}/journal")
    assert page.get_attribute("main#page", "data-page") == "journal"
    entries = page.locator("section.journal-entry")
    assert entries.count() == 3
    assert [entries.nth(i).get_attribute("data-run-id") for i in range(3)] == [
        runs["stump"],
        runs["logreg"],
        runs["deeper"],
    ]
    assert page.locator("a.journal-run").all_inner_texts() == ["stump", "logreg", "tree-4"]
    # a run along a chain is indented under the one it follows
    x = [entries.nth(i).bounding_box() for i in range(3)]
    assert all(box is not None for box in x)
    assert x[1]["x"] > x[0]["x"] and x[2]["x"] == x[1]["x"]  # type: ignore[index]
    logreg = page.locator(f"section#journal-{runs['logreg']}")
    assert logreg.locator(".journal-follows").inner_text().startswith("stump")
    assert "McNemar" in logreg.locator(".journal-verdict").inner_text()
    note = page.locator(f"section#journal-{runs['deeper']} li.journal-note")
    assert note.locator(".note-text").inner_text() == XSS  # shown as text; an alert fails the test
    assert note.locator(".note-author").inner_text() == "ada"
    assert page.locator("section.journal-entry script").count() == 0
    screenshot(page, "journal")
    logreg.locator("a.journal-run").click()
    page.wait_for_url(f"**/runs/{runs['logreg']}")
    assert page.get_attribute("main#page", "data-page") == "run"
    assert "logreg" in page.inner_text("h1")


def test_an_unknown_experiment_shows_the_not_found_page(page: Page, runs: dict[str, Any]) -> None:
    answer = page.goto("/experiments/no-such-experiment/journal")
    assert answer is not None and answer.status == 404
    assert page.get_attribute("main#page", "data-page") == "missing"
