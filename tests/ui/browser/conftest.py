"""The dashboard in a real browser: a store filled by real training runs, ``labledger ui``'s app
served by uvicorn on a loopback port, and the system's Chromium driven by Playwright.

Session-wide: the filled store (built once, in a subprocess), a run that stays live all session,
the server and the browser. Per test: a fresh browser context and page that fails the test on
any JavaScript error, console error, failed request or dialog (an ``alert`` is what injected
markup would call). ``screenshot(page, name)`` keeps a full-page PNG; with
``LABLEDGER_SCREENSHOTS=<folder>`` also as ``<folder>/ui-<name>.png`` (the documentation's images).

Chromium: ``$LABLEDGER_CHROMIUM`` or ``/usr/bin/chromium``; ``python tools/ensure_chromium.py``
installs it. Playwright never downloads a browser here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..fill_store import DIGITS, LiveRun, quiet_env
from .support import Screenshot, serve_dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Request, Response, ViewportSize

FILL_SCRIPT = Path(__file__).resolve().parent.parent / "fill_store.py"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
PLAYWRIGHT_MISSING = 'the browser tests need Playwright\'s Python package: pip install -e ".[test]"'
#: How long a Playwright action or wait may take before the test fails (ms).
TIMEOUT_MS = 10_000
#: Chromium reports a 4xx/5xx answer both as a response and as this console error; responses
#: are checked on their own (a page may answer 400 on purpose, its scripts and data may not).
RESOURCE_ERROR = "Failed to load resource:"


def chromium_executable() -> Path:
    return Path(os.environ.get("LABLEDGER_CHROMIUM") or DEFAULT_CHROMIUM)


# -- the store ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def filled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The store :func:`fill_store.fill` builds (in a subprocess), and what it returns."""
    root = tmp_path_factory.mktemp("filled")
    result = subprocess.run(
        [sys.executable, str(FILL_SCRIPT), str(root / "store")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env=quiet_env(),
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"filling the store failed (exit status {result.returncode}):\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    info: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])  # after any framework output
    return info


@pytest.fixture(scope="session")
def live_run(filled: dict[str, Any]) -> Iterator[LiveRun]:
    """A run in the ``digits`` experiment logging ``loss`` every 0.2 s from another process, all session."""
    with LiveRun(filled["store"], DIGITS, name="live") as live:
        yield live


# -- the server -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server(filled: dict[str, Any], live_run: LiveRun) -> Iterator[str]:
    """The dashboard over the filled store, served by uvicorn on 127.0.0.1; its base URL."""
    with serve_dashboard(filled["store"]) as url:
        yield url


# -- the browser ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Headless Chromium (the system's), one for the session."""
    executable = chromium_executable()
    if not executable.exists():
        pytest.fail(
            f"no Chromium at {executable}: run `python tools/ensure_chromium.py` "
            "(or set LABLEDGER_CHROMIUM to a Chromium or Chrome executable)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(PLAYWRIGHT_MISSING, pytrace=False)
    home = tmp_path_factory.mktemp("chromium")
    env: dict[str, str | float | bool] = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=LAUNCH_ARGS, env=env
        )
        yield launched
        launched.close()


@pytest.fixture
def problems() -> list[str]:
    """What went wrong in the test's page: JS errors, console errors, failed requests, dialogs."""
    return []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test whose page had problems fails (they are listed beside its own failure, if any)."""
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    found: list[str] = funcargs.get("problems", [])  # the fixture's own list, filled as the test runs
    try:
        result = yield
    except BaseException:
        if found:
            item.add_report_section("call", "page problems", "\n".join(found))
            found.clear()
        raise
    if found:
        report = "the page had problems:\n" + "\n".join(found)
        found.clear()
        pytest.fail(report, pytrace=False)
    return result


def _watch(page: Page, problems: list[str]) -> None:
    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(RESOURCE_ERROR):
            problems.append(f"console error: {message.text} ({message.location.get('url', '')})")

    def response(answer: Response) -> None:
        kind = answer.request.resource_type
        if answer.status >= 500 or (answer.status >= 400 and kind != "document"):
            problems.append(f"HTTP {answer.status} for {kind} {answer.url}")

    def request_failed(request: Request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" not in failure:  # a page left while it still loads aborts its requests
            problems.append(f"request failed: {request.url}: {failure}")

    def dialog(shown: Dialog) -> None:
        problems.append(f"a {shown.type} dialog opened: {shown.message!r}")
        shown.dismiss()

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"uncaught JavaScript error: {error}"))
    page.on("response", response)
    page.on("requestfailed", request_failed)
    page.on("dialog", dialog)


@pytest.fixture
def page(browser: Browser, server: str, problems: list[str]) -> Iterator[Page]:
    """A page in a fresh context (1400×900, base URL = the server) that fails the test on a problem."""
    context = browser.new_context(viewport=VIEWPORT, base_url=server)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    _watch(opened, problems)
    yield opened
    context.close()
    if problems:  # after the test's last step, while the page closed
        pytest.fail("the page had problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Screenshot:
    """``screenshot(page, name)``: a full-page PNG in a session folder, and in
    ``$LABLEDGER_SCREENSHOTS/ui-<name>.png`` when that names a folder (a relative one from the
    repository's root); returns the first."""
    folder = tmp_path_factory.mktemp("screenshots")
    extra = os.environ.get("LABLEDGER_SCREENSHOTS")
    docs = pytestconfig.rootpath / extra if extra else None

    def take(page: Page, name: str) -> Path:
        path = folder / f"ui-{name}.png"
        page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
        if docs is not None:
            docs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, docs / path.name)
        return path

    return take
