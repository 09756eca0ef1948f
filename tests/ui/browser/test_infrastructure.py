"""What every browser test stands on: the filled store, the live run, the server, the browser."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import labledger as ll

from ..fill_store import DIGITS, LIGHTNING, XGB, XSS, LiveRun
from .support import api

if TYPE_CHECKING:
    from playwright.sync_api import Page

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_store_the_server_and_the_browser_work(
    filled: dict[str, Any],
    live_run: LiveRun,
    server: str,
    page: Page,
) -> None:
    assert api(server, "/api/health") == {"status": "ok", "version": ll.__version__}
    names = {e["name"] for e in api(server, "/api/experiments")["experiments"]}
    assert names == {DIGITS, XGB, LIGHTNING, XSS}

    listed = api(server, "/api/runs", experiment=DIGITS, children="false", limit="100")
    by_id = {row["id"]: row for row in listed["rows"]}
    assert set(by_id) == {*filled["top_level"], live_run.id}
    assert by_id[filled["grid"]["id"]]["name"] == "svc-grid"
    assert by_id[filled["failed"]["id"]]["status"] == "failed"
    assert by_id[filled["failed"]["id"]]["error"] == filled["failed"]["error"]
    assert by_id[live_run.id]["status"] == "running"
    every = api(server, "/api/runs", experiment=DIGITS, limit="1000")["rows"]
    children = {row["id"] for row in every if row["parent_id"] == filled["halving"]["id"]}
    assert children == set(filled["halving"]["children"]) and filled["halving"]["iterations"] >= 2
    assert len(filled["grid"]["children"]) == 6
    assert by_id[filled["plain"]["knn"]["id"]]["folds"]["accuracy"]["n"] == 5
    knn, nb = (by_id[filled["plain"][k]["id"]]["folds"]["accuracy"]["mean"] for k in ("knn", "nb"))
    assert knn - nb > 0.05
    for run in ("xgboost", "lightning"):
        metrics = api(server, f"/api/runs/{filled[run]['id']}")["metrics"]
        assert set(filled[run]["keys"]) <= set(metrics), (run, sorted(metrics))

    # the live run's points reach the store while it runs
    loss = f"/api/runs/{live_run.id}/metrics/loss"
    before = api(server, loss)["points"]
    deadline = time.monotonic() + 5
    while api(server, loss)["points"] <= before:
        assert time.monotonic() < deadline, "the live run logged nothing new in 5 s"
        time.sleep(0.1)

    page.goto("/api/health")
    assert json.loads(page.inner_text("body"))["status"] == "ok"
    shot = page.screenshot(full_page=True)
    assert shot.startswith(PNG_MAGIC)
