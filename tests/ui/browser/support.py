"""Helpers the browser tests share: the API over HTTP, and reading the pages' DOM contract."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

from labledger.ui import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: ``screenshot(page, name)``, the session fixture's type.
Screenshot = Callable[["Page", str], Path]


def api(server: str, path: str, **query: str) -> Any:
    """GET a JSON API path of the running dashboard."""
    url = f"{server}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def query_param(page: Page, name: str) -> str | None:
    """A parameter of the page's current URL (``location.search``)."""
    value = page.evaluate("(name) => new URLSearchParams(location.search).get(name)", name)
    return str(value) if value is not None else None


def total(page: Page) -> int:
    """The run count ``#total`` shows ("12 runs")."""
    found = re.search(r"\d+", page.inner_text("#total"))
    assert found, f"#total holds no number: {page.inner_text('#total')!r}"
    return int(found.group())


def top_level_ids(page: Page) -> list[str]:
    """The ids of the runs table's top-level rows, in order."""
    return [
        str(i)
        for i in page.eval_on_selector_all(
            "table#runs tr.run:not(.child)", "rs => rs.map(r => r.dataset.runId)"
        )
    ]


def charts(page: Page) -> list[dict[str, Any]]:
    """The run page's charts: ``keys``, ``points`` (``data-points``) and whether a canvas is drawn."""
    found: list[dict[str, Any]] = page.eval_on_selector_all(
        "section#charts div.chart",
        """divs => divs.map(d => ({
            keys: (d.dataset.keys || "").split(",").filter(k => k),
            points: Number(d.dataset.points || 0),
            canvas: d.querySelector("canvas") !== null,
        }))""",
    )
    return found


def wait_for_drawn_charts(page: Page, keys: list[str]) -> list[dict[str, Any]]:
    """Wait until every key in ``keys`` is in a chart with a canvas and points; the charts then."""
    page.wait_for_function(
        """keys => {
            const drawn = Array.from(document.querySelectorAll("section#charts div.chart"))
                .filter(d => d.querySelector("canvas") && Number(d.dataset.points || 0) > 0)
                .flatMap(d => (d.dataset.keys || "").split(","));
            return keys.every(k => drawn.includes(k));
        }""",
        arg=keys,
    )
    return charts(page)


def chart_points(page: Page, key: str) -> int:
    """``data-points`` of the chart that draws ``key``."""
    for chart in charts(page):
        if key in chart["keys"]:
            return int(chart["points"])
    raise AssertionError(f"no chart draws {key!r}: {charts(page)}")


@contextlib.contextmanager
def serve_dashboard(store: Any, name: str = "labledger-ui") -> Iterator[str]:
    """The dashboard over ``store``, served by uvicorn on a free loopback port; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # a free port, held until the server listens on it
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        create_app(store),
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=5,
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while True:
        try:
            if api(url, "/api/health")["status"] == "ok":
                break
        except OSError:
            if not thread.is_alive() or time.monotonic() > deadline:
                uv.should_exit = True
                sock.close()
                pytest.fail(f"the dashboard did not answer {url}/api/health", pytrace=False)
            time.sleep(0.05)
    try:
        yield url
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()
    assert not thread.is_alive(), "the dashboard's server did not stop within 10 s"
