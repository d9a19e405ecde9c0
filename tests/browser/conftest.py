"""The browser layer: the public page and the widget in Debian's Chromium, driven by Playwright.

One Chromium per test session (``/usr/bin/chromium``, installed by ``scripts/ensure-chromium.sh``;
Playwright's own browsers are never downloaded), a new browser context per visitor. Playwright's
async API is bound to the event loop it started on, so these tests, their server and the browser
share the session's loop (``pytestmark = pytest.mark.asyncio(loop_scope="session")`` in each
module). The server runs on SQLite with the tests' fixed "now"; each visitor's browser is fixed
at the same instant, in Helsinki, with British English dates.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Error, Page, async_playwright

from db.migrate import migrate
from server.settings import Settings
from tests.browser.host_site import host_site
from tests.doubles.server import DoubleServer
from tests.support.booking_helpers import NOW
from tests.support.live_server import LiveServer, start_live_server
from tests.support.services_available import unavailable
from tests.support.sync import run_sync

CHROMIUM = Path(os.environ.get("KOKOUS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
VISITOR_ZONE = "Europe/Helsinki"
VISITOR_LOCALE = "en-GB"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        unavailable(f"Debian's chromium is missing at {CHROMIUM} (make test installs it: scripts/ensure-chromium.sh)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The widget does not depend on the database engine: SQLite only."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'kokous.db'}"
    run_sync(migrate(url))
    return url


@pytest_asyncio.fixture(loop_scope="session")
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    """Kokous with the tests' fixed "now", its public URL its own address (the page loads the widget from it)."""
    async with start_live_server(settings, clock=lambda: NOW, own_public_url=True) as live:
        yield live


@pytest.fixture(scope="session")
def other_site() -> Iterator[str]:
    """Another origin (``http://localhost:<port>``) whose pages embed Kokous."""
    with DoubleServer(host_site()) as double:
        yield f"http://localhost:{double.port}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass
class Visitor:
    """One browser context (its own storage and cookies) and the pages it opened."""

    context: BrowserContext
    problems: list[str] = field(default_factory=list)
    expect_console_errors: bool = False  # a test that breaks requests on purpose

    async def open(self, url: str) -> Page:
        page = await self.context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        page.on("console", self._console)
        await page.goto(url)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        # The favicon's 404 is the browser's own business, not the page's.
        if (
            message.type == "error"
            and not self.expect_console_errors
            and "favicon" not in (message.location.get("url") or "")
        ):
            self.problems.append(f"console: {message.text} ({message.location.get('url')})")


OpenVisitor = Callable[..., Awaitable[Visitor]]


@pytest_asyncio.fixture(loop_scope="session")
async def visitor(browser: Browser) -> AsyncIterator[OpenVisitor]:
    """Opens visitors, each a new context at the tests' "now"; closes them all at the end.

    Any uncaught script error or console error on their pages fails the test.
    """
    opened: list[Visitor] = []

    async def open_visitor(**options: Any) -> Visitor:
        settings: dict[str, Any] = {"locale": VISITOR_LOCALE, "timezone_id": VISITOR_ZONE, **options}
        context = await browser.new_context(**settings)
        await context.clock.set_fixed_time(NOW)
        opened.append(Visitor(context))
        return opened[-1]

    yield open_visitor
    problems = [problem for one in opened for problem in one.problems]
    for one in opened:
        with contextlib.suppress(Error):  # already gone with the browser
            await one.context.close()
    assert not problems, problems
