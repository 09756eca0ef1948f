"""The compare page in the browser: the paired test's verdict, the guard, params, charts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .support import Screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page


def _open(page: Page, *run_ids: str) -> None:
    page.goto(f"/compare?runs={','.join(run_ids)}")
    assert page.get_attribute("main#page", "data-page") == "compare"


def test_two_runs_on_the_same_folds_get_a_verdict(
    page: Page, filled: dict[str, Any], screenshot: Screenshot
) -> None:
    knn, nb = filled["plain"]["knn"], filled["plain"]["nb"]
    _open(page, knn["id"], nb["id"])
    body = page.inner_text("main#page")
    assert knn["name"] in body and nb["name"] in body
    assert "better than" in page.inner_text("#verdict")
    assert page.locator("#not-comparable").count() == 0
    differs = page.eval_on_selector_all(
        "table#compare-params tr.differs", "rows => rows.map(r => r.textContent)"
    )
    assert any("model" in row and "gaussian-nb" in row for row in differs), differs
    same = page.eval_on_selector_all(
        "table#compare-params tr:not(.differs)", "rows => rows.map(r => r.textContent)"
    )
    assert any("cv/n_splits" in row for row in same), same
    assert page.locator("section#compare-charts").count() == 1
    page.wait_for_selector("svg#parallel-coords")
    page.wait_for_selector("svg#scatter")
    screenshot(page, "compare")


def test_the_scatter_axes_can_be_chosen(page: Page, filled: dict[str, Any]) -> None:
    _open(page, filled["plain"]["knn"]["id"], filled["plain"]["nb"]["id"])
    page.wait_for_selector("svg#scatter")
    for axis in ("#scatter-x", "#scatter-y"):
        options = page.eval_on_selector_all(f"select{axis} option", "os => os.map(o => o.value)")
        assert len(options) >= 2, (axis, options)
        current = page.input_value(f"select{axis}")
        other = next(o for o in options if o != current)
        page.select_option(f"select{axis}", other)
        assert page.input_value(f"select{axis}") == other
    page.wait_for_selector("svg#scatter")


def test_runs_scored_on_other_folds_are_not_compared(page: Page, filled: dict[str, Any]) -> None:
    candidate = filled["grid"]["children"][0]  # StratifiedKFold on 400 digits, not KFold on 600
    _open(page, filled["plain"]["knn"]["id"], candidate)
    assert page.locator("#not-comparable").count() == 1
    assert "folds" in page.inner_text("#not-comparable")
    verdict = page.inner_text("#verdict") if page.locator("#verdict").count() else ""
    assert "better than" not in verdict
