"""The experiments page and an experiment's runs table, driven in the browser."""

from __future__ import annotations

import json
import urllib.error
from typing import TYPE_CHECKING, Any

from ..fill_store import DIGITS, LIGHTNING, XGB, XSS, LiveRun
from .support import Screenshot, api, query_param, top_level_ids, total

if TYPE_CHECKING:
    from playwright.sync_api import Page

RUNS = f"/experiments/{DIGITS}"


def _page_kind(page: Page) -> str | None:
    return page.get_attribute("main#page", "data-page")


def _compare_enabled(page: Page) -> bool:
    return bool(
        page.eval_on_selector(
            "a#compare-selected",
            """a => a.getAttribute("aria-disabled") !== "true" && !a.hasAttribute("disabled")
                   && !a.classList.contains("disabled")
                   && (a.getAttribute("href") || "").startsWith("/compare?runs=")""",
        )
    )


def test_the_experiments_page_lists_and_searches_experiments(page: Page, screenshot: Screenshot) -> None:
    page.goto("/")
    assert _page_kind(page) == "experiments"
    links = page.eval_on_selector_all(
        "table#experiments tr.experiment a.experiment-link", "as => as.map(a => a.getAttribute('href'))"
    )
    assert sorted(links) == sorted(f"/experiments/{name}" for name in (DIGITS, XGB, LIGHTNING, XSS))
    screenshot(page, "experiments")

    page.fill("input#search", "xgb")
    with page.expect_navigation():
        page.press("input#search", "Enter")
    assert query_param(page, "q") == "xgb"
    rows = page.locator("table#experiments tr.experiment")
    assert rows.count() == 1
    assert rows.locator("a.experiment-link").get_attribute("href") == f"/experiments/{XGB}"

    rows.locator("a.experiment-link").click()
    page.wait_for_url(f"**/experiments/{XGB}*")
    assert _page_kind(page) == "runs"


def test_the_runs_table_lists_searches_the_failed_and_the_running_run(
    page: Page, filled: dict[str, Any], live_run: LiveRun, screenshot: Screenshot
) -> None:
    page.goto(RUNS)
    assert _page_kind(page) == "runs"
    ids = top_level_ids(page)
    assert sorted(ids) == sorted([*filled["top_level"], live_run.id])
    assert total(page) == len(ids)  # top-level runs; child runs sit under their parent's row

    grid = page.locator(f'tr.run[data-run-id="{filled["grid"]["id"]}"]')
    assert "svc-grid" in grid.inner_text() and grid.get_attribute("data-status") == "finished"
    failed = page.locator(f'tr.run[data-run-id="{filled["failed"]["id"]}"]')
    assert failed.get_attribute("data-status") == "failed"
    error = failed.locator("td.error").inner_text().strip()
    assert error == filled["failed"]["error"]  # the first line only
    running = page.locator(f'tr.run[data-run-id="{live_run.id}"]')
    assert running.get_attribute("data-status") == "running"
    assert running.locator("td.error").count() == 0 or not running.locator("td.error").inner_text().strip()

    children = page.locator("tr.run.child")
    assert children.count() == len(filled["grid"]["children"]) + len(filled["halving"]["children"])
    assert all(children.nth(i).is_hidden() for i in range(children.count()))
    assert page.locator(f'input.select-run[value="{live_run.id}"]').count() == 1
    screenshot(page, "runs")


def test_child_rows_toggle_under_their_parent(page: Page, filled: dict[str, Any]) -> None:
    page.goto(RUNS)
    grid, halving = filled["grid"], filled["halving"]
    grid_children = page.locator(f'tr.run.child[data-parent-id="{grid["id"]}"]')
    assert grid_children.count() == len(grid["children"])
    toggle = page.locator(f'tr.run[data-run-id="{grid["id"]}"] button.toggle-children')
    toggle.click()
    grid_children.last.wait_for(state="visible")
    assert all(grid_children.nth(i).is_visible() for i in range(grid_children.count()))
    shown = page.eval_on_selector_all(
        f'tr.run.child[data-parent-id="{grid["id"]}"]', "rs => rs.map(r => r.dataset.runId)"
    )
    assert sorted(shown) == sorted(grid["children"])
    assert page.locator(f'tr.run.child[data-parent-id="{halving["id"]}"]').first.is_hidden()
    toggle.click()
    grid_children.first.wait_for(state="hidden")

    # successive halving: candidates grouped under one header row per iteration
    iterations = page.locator("tr.iteration")
    assert not any(iterations.nth(i).is_visible() for i in range(iterations.count()))
    page.locator(f'tr.run[data-run-id="{halving["id"]}"] button.toggle-children').click()
    halving_children = page.locator(f'tr.run.child[data-parent-id="{halving["id"]}"]')
    halving_children.last.wait_for(state="visible")
    assert halving_children.count() == len(halving["children"])
    visible = [iterations.nth(i) for i in range(iterations.count()) if iterations.nth(i).is_visible()]
    assert len(visible) == halving["iterations"]


def test_the_filter_box_filters_and_shows_where_a_filter_cannot_be_parsed(
    page: Page, filled: dict[str, Any], server: str
) -> None:
    page.goto(RUNS)
    everything = total(page)
    page.fill("input#filter", 'params.model = "knn"')
    with page.expect_navigation():
        page.press("input#filter", "Enter")
    assert query_param(page, "filter") == 'params.model = "knn"'
    assert total(page) == 1 < everything
    assert top_level_ids(page) == [filled["plain"]["knn"]["id"]]

    page.fill("input#filter", "params.model in ('knn', 'gaussian-nb')")
    with page.expect_navigation():
        page.click("button#apply")
    assert sorted(top_level_ids(page)) == sorted(filled["plain"][k]["id"] for k in ("knn", "nb"))
    assert total(page) == 2

    bad = "params.model >> 1"
    page.fill("input#filter", bad)
    with page.expect_navigation():
        page.press("input#filter", "Enter")
    shown = page.locator("pre#filter-error")
    assert shown.is_visible()
    lines = shown.inner_text().splitlines()
    [expression_line] = [line for line in lines if bad in line]
    caret_lines = [line for line in lines if line.strip() == "^"]
    assert len(caret_lines) == 1, lines
    with_parser = _filter_error(server, bad)
    assert caret_lines[0].index("^") == expression_line.index(bad) + with_parser["column"] - 1
    assert page.input_value("input#filter") == bad  # kept to be corrected


def _filter_error(server: str, expression: str) -> dict[str, Any]:
    """The API's parse error for ``expression`` (its 1-based ``column``)."""
    try:
        api(server, "/api/runs", experiment=DIGITS, filter=expression)
    except urllib.error.HTTPError as e:
        assert e.code == 400
        body: dict[str, Any] = json.loads(e.read())
        return body
    raise AssertionError(f"the API parsed {expression!r}")


def test_selecting_two_runs_enables_compare_and_keeps_the_selection_in_the_url(
    page: Page, filled: dict[str, Any]
) -> None:
    knn, nb = filled["plain"]["knn"]["id"], filled["plain"]["nb"]["id"]
    page.goto(RUNS)
    assert not _compare_enabled(page)
    page.check(f'input.select-run[value="{knn}"]')
    assert not _compare_enabled(page)
    page.check(f'input.select-run[value="{nb}"]')
    page.wait_for_function(
        "ids => (new URLSearchParams(location.search).get('selected') || '')"
        "  .split(',').sort().join() === ids",
        arg=",".join(sorted([knn, nb])),
    )
    assert _compare_enabled(page)
    href = page.get_attribute("a#compare-selected", "href") or ""
    assert sorted(href.removeprefix("/compare?runs=").split(",")) == sorted([knn, nb])

    page.reload()  # the selection lives in the URL
    assert page.is_checked(f'input.select-run[value="{knn}"]') and page.is_checked(
        f'input.select-run[value="{nb}"]'
    )
    with page.expect_navigation():
        page.click("a#compare-selected")
    assert _page_kind(page) == "compare"


def test_columns_sorting_and_pages(page: Page, filled: dict[str, Any], live_run: LiveRun) -> None:
    page.goto(RUNS)
    page.click("details#column-picker summary")
    page.check('details#column-picker input.column-choice[value="params.model"]')
    with page.expect_navigation():
        page.click("button#apply-columns")
    assert "params.model" in (query_param(page, "columns") or "").split(",")
    nb_row = page.locator(f'tr.run[data-run-id="{filled["plain"]["nb"]["id"]}"]')
    assert "gaussian-nb" in nb_row.inner_text()  # the run is named nb-5fold: the value is the column's

    sorts = page.eval_on_selector_all(
        "table#runs th a.sort", "as => as.map(a => new URL(a.href).searchParams.get('sort'))"
    )
    assert "name" in sorts or "-name" in sorts, f"no header sorts by run name: {sorts}"
    index = sorts.index("name") if "name" in sorts else sorts.index("-name")
    with page.expect_navigation():
        page.locator("table#runs th a.sort").nth(index).click()
    assert query_param(page, "sort") in ("name", "-name")
    name_of = {filled[k]["id"]: filled[k]["name"] for k in ("grid", "halving", "failed")}
    name_of.update({run["id"]: run["name"] for run in filled["plain"].values()})
    name_of[live_run.id] = live_run.name
    names = [name_of[i] for i in top_level_ids(page)]
    expected = sorted(names, reverse=query_param(page, "sort") == "-name")
    assert names == expected

    page.goto(f"{RUNS}?limit=2")
    first = top_level_ids(page)
    assert len(first) == 2 and page.locator("a#prev-page").count() == 0
    with page.expect_navigation():
        page.click("a#next-page")
    assert query_param(page, "offset") == "2"
    second = top_level_ids(page)
    assert len(second) == 2 and not set(first) & set(second)
    with page.expect_navigation():
        page.click("a#prev-page")
    assert top_level_ids(page) == first
