"""An online experiment's run page in the browser: its "Online experiment" section.

The session's filled store has no online run, so this module serves a small store of its own:
its ``server`` stands in for the session one and the shared ``page`` fixture (with its checks for
JavaScript errors, failed requests and dialogs) opens pages on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..test_online_page import fill
from .support import serve_dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytest.importorskip("scipy")
pytest.importorskip("statsmodels")


@pytest.fixture
def online(store_path: Path) -> dict[str, str]:
    return fill(store_path)


@pytest.fixture
def server(online: dict[str, str]) -> Iterator[str]:
    """The dashboard over this module's store, served on a free loopback port."""
    with serve_dashboard(online["store"], name="labledger-ui-online") as url:
        yield url


def test_online_section_is_visible_and_links_to_the_offline_run(page: Page, online: dict[str, str]) -> None:
    page.goto(f"/runs/{online['skewed']}")
    assert page.get_attribute("main#page", "data-page") == "run"
    section = page.locator("section#online")
    assert section.is_visible()
    assert section.locator("h2").inner_text() == "Online experiment"
    assert page.locator("#online-srm.srm-flagged").is_visible()
    assert "do not ship" in page.inner_text("#online-decision")
    assert page.locator("#online-metrics tbody tr").count() == 1
    assert page.locator("#online-verdicts li").count() == 1
    page.locator("#online-offline a.offline-run").first.click()
    page.wait_for_url(f"**/runs/{online['v6']}")
    assert page.locator("section#online").count() == 0
