"""The widget on another site: embedded with the snippet, the whole page in an iframe, the chat
link (PAGE-11, PAGE-12)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import expect

from tests.browser.conftest import OpenVisitor
from tests.browser.widget import ELEVEN, TEN, assert_accessible, book_in_page, outcome, time_button
from tests.support.booking_helpers import owner_with_page
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

BOOKED = {"start": TEN, "end": "2026-12-01T08:30:00Z"}


async def owner_bookings(server: LiveServer, token: str) -> list[dict[str, Any]]:
    result = await server.graphql("{ me { bookings { id source } } }", token=token)
    return list(result["data"]["me"]["bookings"])


async def test_the_snippet_books_from_another_origin_under_that_sites_strict_policy(
    server: LiveServer, visitor: OpenVisitor, other_site: str
) -> None:
    # covers: PAGE-12
    owner = await owner_with_page(server)
    page = await (await visitor()).open(f"{other_site}/embed?{urlencode({'base': server.base_url, 'page': 'intro'})}")
    await expect(time_button(page, TEN)).to_be_visible()
    await expect(page.get_by_role("heading", name="Intro call")).to_be_visible()  # the host page does not name it
    # The host's CSP allows no inline styles; the widget's constructed stylesheet still applies.
    assert await time_button(page, TEN).evaluate("b => getComputedStyle(b).borderTopLeftRadius") == "8px"
    await assert_accessible(page)

    await book_in_page(page, TEN, "Eeva Embed", "eeva@example.com")
    await expect(outcome(page, "confirmed")).to_be_visible()
    (booked,) = await owner_bookings(server, owner.token)
    assert booked["source"] == "EMBED"  # the default on a site that is not Kokous
    events = await page.evaluate("window.kokousEvents")
    assert events == [{"bookingId": booked["id"], **BOOKED}]
    assert await page.evaluate("window.kokousMessages") == []  # not framed: nothing is posted


async def test_a_framed_page_tells_its_parent_about_the_booking(
    server: LiveServer, visitor: OpenVisitor, other_site: str
) -> None:
    # covers: PAGE-12
    owner = await owner_with_page(server)
    query = urlencode({"base": server.base_url, "src": f"{server.base_url}/meetings/intro"})
    page = await (await visitor()).open(f"{other_site}/frame?{query}")
    frame = page.frame_locator("iframe")
    await expect(time_button(frame, TEN)).to_be_visible()

    await book_in_page(frame, TEN, "Frida Frame", "frida@example.com")
    await expect(outcome(frame, "confirmed")).to_be_visible()
    await page.wait_for_function("window.kokousMessages.length > 0")
    (booked,) = await owner_bookings(server, owner.token)
    assert booked["source"] == "PAGE"  # Kokous' own page, only framed
    messages = await page.evaluate("window.kokousMessages")
    assert messages == [
        {"origin": server.base_url, "data": {"type": "kokous:booked", "bookingId": booked["id"], **BOOKED}}
    ]


async def test_the_chat_link_and_snippet_book_with_source_chat(
    server: LiveServer, visitor: OpenVisitor, other_site: str
) -> None:
    # covers: PAGE-11, PAGE-12
    owner = await owner_with_page(server)
    pages = await server.graphql("{ me { schedulingPages { chatLink { url snippet } } } }", token=owner.token)
    (chat,) = [page["chatLink"] for page in pages["data"]["me"]["schedulingPages"]]

    by_link = await (await visitor()).open(chat["url"])
    await book_in_page(by_link, TEN, "Kalle Chat", "kalle@example.com")
    await expect(outcome(by_link, "confirmed")).to_be_visible()

    pasted = await (await visitor()).open(
        f"{other_site}/snippet?{urlencode({'base': server.base_url, 'html': chat['snippet']})}"
    )
    await book_in_page(pasted, ELEVEN, "Kaija Chat", "kaija@example.com")
    await expect(outcome(pasted, "confirmed")).to_be_visible()
    assert [booked["source"] for booked in await owner_bookings(server, owner.token)] == ["CHAT", "CHAT"]


async def test_after_the_booking_the_visitor_goes_to_the_pages_redirect(
    server: LiveServer, visitor: OpenVisitor, other_site: str
) -> None:
    # covers: PAGE-12
    await owner_with_page(server, redirectUrl=f"{other_site}/thanks")
    page = await (await visitor()).open(f"{server.base_url}/meetings/intro")
    await book_in_page(page, TEN, "Reija Redirect", "reija@example.com")
    await expect(outcome(page, "confirmed")).to_be_visible()  # said first, then followed
    await page.wait_for_url(f"{other_site}/thanks")
    await expect(page.get_by_role("heading", name="Thank you for booking")).to_be_visible()
