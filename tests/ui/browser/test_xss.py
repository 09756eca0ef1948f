"""Markup in names, params, tags, hypotheses, metric and fold keys and errors is shown as text.

The ``xss`` runs hold ``<script>alert(1)</script>``, ``<img src=x onerror=alert(2)>`` and
``<b>bold</b>``. Any dialog opening fails the test (the ``page`` fixture watches for them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ..fill_store import BOLD, IMG, SCRIPT, XSS
from .support import wait_for_drawn_charts

if TYPE_CHECKING:
    from playwright.sync_api import Page


def _visit(page: Page, path: str) -> None:
    answer = page.goto(path)
    assert answer is not None
    assert answer.status == 200, f"{path} answered {answer.status}: {page.inner_text('body')[:600]}"


def _assert_inert(page: Page, problems: list[str], *texts: str) -> None:
    shown = page.inner_text("main#page")
    for text in texts:
        assert text in shown, f"{text!r} is not shown as text on {page.url}"
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("main#page b", has_text="bold").count() == 0
    injected = page.evaluate(
        "() => Array.from(document.scripts).filter(s => s.textContent.trim() === 'alert(1)').length"
    )
    assert injected == 0
    assert not problems, problems


def test_markup_in_the_listings_is_text(page: Page, problems: list[str], filled: dict[str, Any]) -> None:
    _visit(page, "/")
    _assert_inert(page, problems, XSS)
    _visit(page, f"/experiments/{XSS}")
    _assert_inert(page, problems, SCRIPT, IMG, filled["xss"]["error"])
    _visit(page, f"/experiments/{XSS}?columns=params.payload,params.markup")
    _assert_inert(page, problems, SCRIPT, BOLD)
    _visit(page, f"/experiments/{XSS}?" + urlencode({"filter": f"name = '{SCRIPT}'"}))
    _assert_inert(page, problems, SCRIPT)


def test_markup_on_a_run_page_is_text(page: Page, problems: list[str], filled: dict[str, Any]) -> None:
    first, second = filled["xss"]["ids"]
    _visit(page, f"/runs/{first}")
    assert page.inner_text("#run-name").strip() == SCRIPT
    wait_for_drawn_charts(page, [IMG])  # a metric key with markup, fetched and drawn
    page.wait_for_selector("section#folds svg.fold-chart circle.fold-point")
    _assert_inert(page, problems, SCRIPT, IMG, BOLD)
    keys = page.eval_on_selector_all("section#folds svg.fold-chart", "s => s.map(x => x.dataset.key)")
    assert keys == [SCRIPT]
    box = page.locator("section#charts div.chart canvas").first.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # legend, tooltip
    _assert_inert(page, problems, SCRIPT)

    _visit(page, f"/runs/{second}")
    assert page.inner_text("#run-name").strip() == IMG
    assert page.inner_text("#status").strip() == "failed"
    _assert_inert(page, problems, IMG, SCRIPT, BOLD, filled["xss"]["error"])


def test_markup_on_the_compare_page_is_text(page: Page, problems: list[str], filled: dict[str, Any]) -> None:
    _visit(page, f"/compare?runs={','.join(filled['xss']['ids'])}")
    page.wait_for_selector("section#compare-charts")
    _assert_inert(page, problems, SCRIPT, IMG, BOLD)
