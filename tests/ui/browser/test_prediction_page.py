"""A run page's "Error analysis" section in the browser: a digits model's stored predictions.

The session's filled store logs no predictions, so this module serves a small store of its own:
its ``server`` stands in for the session one and the shared ``page`` fixture (with its checks for
JavaScript errors, failed requests and dialogs) opens pages on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from ..test_prediction_page import XSS, diabetes_run, digits_run
from .support import Screenshot, serve_dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytest.importorskip("pyarrow")
pytest.importorskip("sklearn")


@pytest.fixture
def runs(store_path: Path) -> dict[str, str]:
    """A digits run, one that follows it, a regression run and a run with a hostile slice value."""
    import labledger as ll

    first, _ = digits_run(store_path, "first")
    second, _ = digits_run(store_path, "second", follows=first)
    regression, _ = diabetes_run(store_path)
    with ll.start_run("hostile", name="xss", store=store_path) as run:
        y = np.array([0, 1, 1, 0, 1, 0])
        features = pd.DataFrame({"site": [XSS, XSS, "ok", "ok", XSS, "ok"]})
        run.log_predictions(y, np.array([0, 1, 0, 0, 1, 1]), ids=[XSS, *"bcdef"], features=features)
    return {
        "first": first,
        "second": second,
        "regression": regression,
        "xss": run.id,
        "store": str(store_path),
    }


@pytest.fixture
def server(runs: dict[str, str]) -> Iterator[str]:
    """The dashboard over this module's store, served on a free loopback port."""
    with serve_dashboard(runs["store"], name="labledger-ui-predictions") as url:
        yield url


def test_error_analysis_section_renders_and_links_to_the_run_it_follows(
    page: Page, runs: dict[str, str], screenshot: Screenshot
) -> None:
    page.goto(f"/runs/{runs['second']}")
    assert page.get_attribute("main#page", "data-page") == "run"
    section = page.locator("section#error-analysis")
    assert section.is_visible()
    assert section.locator("h2").inner_text() == "Error analysis"
    assert page.inner_text(".pred-table .pred-overall").startswith("accuracy 0.9")
    assert page.locator("table.pred-classes tbody tr").count() == 10
    confusion = page.locator("table.pred-confusion")
    assert confusion.locator("tbody tr").count() == 10
    assert confusion.locator("tbody td").count() == 100
    # the diagonal and the errors are shaded (a coloured background), an empty cell is not
    colours = confusion.evaluate(
        """t => Array.from(t.querySelectorAll("tbody td")).map(td => [
            td.classList.contains("hit"), td.textContent.trim(), getComputedStyle(td).backgroundColor])"""
    )
    shaded = [c for hit, n, c in colours if hit or n != "0"]
    assert len(shaded) > 10 and all(c.startswith("rgba(") and not c.endswith(", 0)") for c in shaded)
    empty = [c for hit, n, c in colours if not hit and n == "0"]
    assert empty and all(c.endswith(", 0)") for c in empty)
    assert page.locator("table.pred-slices tbody tr").count() == 8
    assert page.locator("table.pred-hardest tbody tr").count() == 10
    section.screenshot()  # the section is laid out (a zero-size element cannot be captured)
    screenshot(page, "run-error-analysis")
    page.locator("#pred-follows a.follows-run").click()
    page.wait_for_url(f"**/runs/{runs['first']}")
    assert page.locator("#pred-follows").count() == 0
    assert page.locator("section#error-analysis").is_visible()


def test_regression_section_shows_residuals(page: Page, runs: dict[str, str]) -> None:
    page.goto(f"/runs/{runs['regression']}")
    assert page.inner_text(".pred-overall").startswith("rmse ")
    assert page.locator("table.pred-residuals thead th").all_inner_texts() == [
        "min",
        "5%",
        "25%",
        "50%",
        "75%",
        "95%",
        "max",
    ]
    assert page.locator("table.pred-confusion").count() == 0


def test_a_hostile_slice_value_is_shown_as_text(page: Page, runs: dict[str, str]) -> None:
    page.goto(f"/runs/{runs['xss']}")  # the page fixture fails the test if an alert opens
    slices = page.locator("table.pred-slices tbody tr")
    assert XSS in slices.all_inner_texts()[0] or XSS in slices.all_inner_texts()[1]
    assert page.locator("section#error-analysis script").count() == 0
    assert XSS in page.inner_text("table.pred-hardest")
