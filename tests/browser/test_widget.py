"""The public page and its widget in a real browser: live times, booking and its outcomes (PAGE-12)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Route, WebSocketRoute, expect

from tests.browser.conftest import OpenVisitor
from tests.browser.widget import (
    COMPANY_FIELD,
    ELEVEN,
    TEN,
    TEN_HELSINKI,
    assert_accessible,
    book_in_page,
    fill_details,
    outcome,
    time_button,
)
from tests.support.booking_helpers import book, change, owner_with_page
from tests.support.calendar_rows import mark_inactive
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIVE = 2_000  # ms: a change made elsewhere reaches every open page within this, without a reload
BOOKINGS = "{ me { bookings { id start source status } } }"


def meetings_url(server: LiveServer, query: str = "") -> str:
    return f"{server.base_url}/meetings/intro{query}"


async def focused(page: Page) -> dict[str, str | None]:
    return dict(
        await page.evaluate(
            """() => {
              const element = document.activeElement;
              return {tag: element?.tagName ?? null, start: element?.dataset?.start ?? null,
                      name: element?.getAttribute("name") ?? null, text: element?.textContent ?? null};
            }"""
        )
    )


async def test_a_time_booked_elsewhere_disappears_live_and_returns_when_cancelled(
    server: LiveServer, visitor: OpenVisitor, artifacts: Path
) -> None:
    # covers: PAGE-12, SUB-1, BOOK-5
    owner = await owner_with_page(server)
    first = await (await visitor()).open(meetings_url(server))
    second = await (await visitor()).open(meetings_url(server))
    await expect(time_button(first, TEN)).to_be_visible()
    await expect(time_button(second, TEN)).to_be_visible()
    await expect(time_button(second, TEN)).to_have_attribute("aria-label", "Tuesday, 1 December 2026, 10:00")
    await expect(second.get_by_role("group", name="Tuesday, 1 December 2026")).to_be_visible()
    await second.screenshot(path=artifacts / "free-times.png", full_page=True)

    await book_in_page(first, TEN, "Vera Visitor", "vera@example.com")
    await expect(outcome(first, "confirmed")).to_be_visible()
    await expect(time_button(second, TEN)).to_have_count(0, timeout=LIVE)
    await expect(time_button(second, ELEVEN)).to_be_visible()  # the rest of the list stays

    (booked,) = (await server.graphql(BOOKINGS, token=owner.token))["data"]["me"]["bookings"]
    assert (booked["start"], booked["source"]) == (TEN_HELSINKI, "PAGE")
    cancelled = await change(server, "cancelBooking", owner.token, id=booked["id"])
    assert cancelled["status"] == "CANCELLED"
    await expect(time_button(second, TEN)).to_be_visible(timeout=LIVE)


async def test_keyboard_alone_books_and_every_control_has_a_name(
    server: LiveServer, visitor: OpenVisitor, artifacts: Path
) -> None:
    # covers: PAGE-12
    owner = await owner_with_page(server, formFields=[COMPANY_FIELD])
    page = await (await visitor()).open(meetings_url(server))
    await expect(time_button(page, TEN)).to_be_visible()
    await assert_accessible(page)

    for _ in range(60):  # Tab through the controls and the times to 10:00 on Tuesday
        await page.keyboard.press("Tab")
        if (await focused(page))["start"] == TEN:
            break
    else:
        raise AssertionError(f"Tab never reached {TEN}; last focused {await focused(page)}")
    button = time_button(page, TEN)
    assert await button.evaluate("b => getComputedStyle(b).outlineStyle") == "solid"  # visible focus
    assert await button.evaluate("b => parseFloat(getComputedStyle(b).outlineWidth)") >= 2

    await page.keyboard.press("Space")
    await expect(page.get_by_role("heading", name="Your details")).to_be_focused()
    await assert_accessible(page)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # an empty required field: the browser refuses, nothing is sent
    await expect(page.locator('kokous-booking input[name="name"]')).to_be_focused()
    await page.keyboard.type("Kaisa Keyboard")
    await page.keyboard.press("Tab")
    await page.keyboard.type("kaisa@example.com")
    await page.keyboard.press("Tab")
    assert (await focused(page))["name"] == "answers.company"
    await page.keyboard.type("Näppäin Oy")
    await page.keyboard.press("Enter")

    confirmed = outcome(page, "confirmed")
    await expect(confirmed).to_be_visible()
    await expect(confirmed.get_by_role("heading")).to_be_focused()
    await expect(page.locator("kokous-booking [aria-live='polite']")).to_contain_text("You are booked")
    await expect(confirmed.get_by_role("link", name="Reschedule")).to_have_attribute(
        "href", re.compile(r"/meetings/intro\?booking=[^&]+&action=reschedule$")
    )
    await assert_accessible(page)
    await page.screenshot(path=artifacts / "confirmed.png", full_page=True)
    (booked,) = (await server.graphql(BOOKINGS, token=owner.token))["data"]["me"]["bookings"]
    assert booked["start"] == TEN_HELSINKI


async def test_a_time_taken_before_submitting_offers_alternatives_that_book(
    server: LiveServer, visitor: OpenVisitor, artifacts: Path
) -> None:
    # covers: PAGE-12, BOOK-3
    owner = await owner_with_page(server)
    page = await (await visitor()).open(meetings_url(server))
    await time_button(page, TEN).click()
    await fill_details(page, "Slow Visitor", "slow@example.com")
    await page.screenshot(path=artifacts / "form.png", full_page=True)
    taken = await book(server, TEN_HELSINKI, email="quick@example.com")  # someone else, meanwhile
    assert taken["__typename"] == "Booking"

    await page.locator('kokous-booking button[type="submit"]').click()
    slot_taken = outcome(page, "slot-taken")
    await expect(slot_taken).to_be_visible()
    await expect(slot_taken.get_by_role("heading")).to_be_focused()
    alternatives = slot_taken.locator("button[data-start]")
    await expect(alternatives.first).to_be_visible()
    await assert_accessible(page)
    await page.screenshot(path=artifacts / "slot-taken.png", full_page=True)

    chosen = await alternatives.first.get_attribute("data-start")
    assert chosen not in (None, TEN)
    await alternatives.first.click()
    await expect(page.locator('kokous-booking input[name="name"]')).to_have_value("Slow Visitor")  # kept
    await page.locator('kokous-booking button[type="submit"]').click()
    await expect(outcome(page, "confirmed")).to_be_visible()
    bookings = (await server.graphql(BOOKINGS, token=owner.token))["data"]["me"]["bookings"]
    assert len(bookings) == 2


async def test_an_offline_page_sends_a_request(server: LiveServer, visitor: OpenVisitor, artifacts: Path) -> None:
    # covers: PAGE-12, BOOK-6
    owner = await owner_with_page(server, online=False)
    page = await (await visitor()).open(meetings_url(server))
    await time_button(page, TEN).click()
    submit = page.locator('kokous-booking button[type="submit"]')
    await expect(submit).to_have_text("Send request")
    await fill_details(page, "Riku Request", "riku@example.com")
    await submit.click()
    requested = outcome(page, "requested")
    await expect(requested).to_be_visible()
    await expect(requested.get_by_role("heading")).to_be_focused()
    await assert_accessible(page)
    await page.screenshot(path=artifacts / "offline-request.png", full_page=True)
    listed = await server.graphql("{ me { bookings(status: REQUESTED) { start } } }", token=owner.token)
    assert listed["data"]["me"]["bookings"] == [{"start": TEN_HELSINKI}]


async def test_zone_duration_and_week_choices_change_the_list(server: LiveServer, visitor: OpenVisitor) -> None:
    # covers: PAGE-12, BOOK-1
    await owner_with_page(server)
    page = await (await visitor()).open(meetings_url(server, "?timezone=America/New_York"))
    zone = page.get_by_label("Time zone")
    await expect(zone).to_have_value("America/New_York")
    await expect(time_button(page, TEN)).to_have_attribute("aria-label", "Tuesday, 1 December 2026, 03:00")

    await zone.select_option("Asia/Tokyo")
    await expect(time_button(page, TEN)).to_have_attribute("aria-label", "Tuesday, 1 December 2026, 17:00")

    last_half_hour = "2026-12-01T14:30:00Z"  # 16:30 in Helsinki: 30 minutes fit before 17:00, 60 do not
    await expect(time_button(page, last_half_hour)).to_be_visible()
    await page.get_by_label("Duration", exact=True).select_option("60")
    await expect(time_button(page, last_half_hour)).to_have_count(0)
    await expect(time_button(page, TEN)).to_be_visible()

    await page.get_by_role("button", name="Next week").click()
    await expect(time_button(page, "2026-12-08T08:00:00Z")).to_be_visible()
    await expect(time_button(page, TEN)).to_have_count(0)
    await page.get_by_role("button", name="Previous week").click()
    await expect(time_button(page, TEN)).to_be_visible()
    await expect(page.get_by_role("button", name="Previous week")).to_be_disabled()


async def test_a_dropped_socket_is_said_and_reconnects_with_its_subscription(
    server: LiveServer, visitor: OpenVisitor
) -> None:
    # covers: PAGE-12, SUB-1
    await owner_with_page(server)
    one = await visitor()
    sockets: list[WebSocketRoute] = []
    refuse = False

    async def route(socket: WebSocketRoute) -> None:
        if refuse:
            await socket.close(code=1011, reason="down for the test")
            return
        socket.connect_to_server()
        sockets.append(socket)

    await one.context.route_web_socket(re.compile(r"/graphql$"), route)
    page = await one.open(meetings_url(server))
    await expect(time_button(page, TEN)).to_be_visible()
    notice = page.locator("kokous-booking [data-kokous-connection]")
    await expect(notice).to_be_hidden()

    refuse = True
    await sockets[0].close(code=1012, reason="restarting")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("reconnect")

    refuse = False
    await expect(notice).to_be_hidden(timeout=10_000)
    assert len(sockets) == 2
    await book(server, TEN_HELSINKI)  # the new socket carries the list's subscription again
    await expect(time_button(page, TEN)).to_have_count(0, timeout=LIVE)


async def test_the_links_of_a_booking_move_it_and_cancel_it(server: LiveServer, visitor: OpenVisitor) -> None:
    # covers: PAGE-12, BOOK-5
    owner = await owner_with_page(server)
    page = await (await visitor()).open(meetings_url(server))
    await book_in_page(page, TEN, "Mika Mover", "mika@example.com")
    await outcome(page, "confirmed").get_by_role("link", name="Reschedule").click()

    await expect(page.get_by_role("heading", name="Choose a new time")).to_be_focused()
    await time_button(page, ELEVEN).click()
    await expect(page.get_by_role("heading", name="Move your meeting")).to_be_focused()
    await page.get_by_role("button", name="Move the meeting").click()
    moved = outcome(page, "confirmed")
    await expect(moved).to_contain_text("Your meeting is moved")
    await expect(moved).to_contain_text("Tuesday, 1 December 2026, 11:00\u201311:30")
    (booked,) = (await server.graphql(BOOKINGS, token=owner.token))["data"]["me"]["bookings"]
    assert (booked["start"], booked["status"]) == ("2026-12-01T11:00:00+02:00", "CONFIRMED")

    await moved.get_by_role("link", name="cancel").click()
    await expect(page.get_by_role("heading", name="Cancel your meeting")).to_be_focused()
    await page.get_by_role("button", name="Cancel the meeting").click()
    await expect(outcome(page, "cancelled")).to_be_visible()
    (booked,) = (await server.graphql(BOOKINGS, token=owner.token))["data"]["me"]["bookings"]
    assert booked["status"] == "CANCELLED"
    await page.get_by_role("button", name="See all free times").click()
    await expect(time_button(page, ELEVEN)).to_be_visible()  # free again, and bookable as usual


async def test_an_incomplete_list_says_some_times_may_be_missing(server: LiveServer, visitor: OpenVisitor) -> None:
    # covers: PAGE-12, BOOK-8
    await owner_with_page(server)
    one = await visitor()

    async def route(page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()

        def incomplete(message: str | bytes) -> None:  # as when a calendar's busy time is not known
            frame = json.loads(message)
            if frame.get("type") == "next":
                frame["payload"]["data"]["slotsChanged"]["complete"] = False
            page_side.send(json.dumps(frame))

        server_side.on_message(incomplete)

    await one.context.route_web_socket(re.compile(r"/graphql$"), route)
    page = await one.open(meetings_url(server))
    await expect(page.locator("kokous-booking [data-kokous-incomplete]")).to_contain_text("Some times may be missing")
    await expect(time_button(page, TEN)).to_be_visible()


async def test_an_inactive_calendar_says_booking_is_paused(server: LiveServer, visitor: OpenVisitor) -> None:
    # covers: PAGE-12, INACT-2
    owner = await owner_with_page(server)
    page = await (await visitor()).open(meetings_url(server))
    await time_button(page, TEN).click()
    await fill_details(page, "Ilona Inactive", "ilona@example.com")
    calendars = await server.graphql("{ me { connections { calendars { id } } } }", token=owner.token)
    (calendar,) = calendars["data"]["me"]["connections"][0]["calendars"]
    await mark_inactive(server.services, owner.user, uuid.UUID(calendar["id"]))

    await page.locator('kokous-booking button[type="submit"]').click()
    paused = outcome(page, "calendar-inactive")
    await expect(paused).to_be_visible()
    await expect(paused.get_by_role("heading")).to_be_focused()
    await expect(paused).to_contain_text("Booking is paused")
    assert (await server.graphql(BOOKINGS, token=owner.token))["data"]["me"]["bookings"] == []


async def test_trying_again_after_a_lost_answer_books_once_with_the_same_key(
    server: LiveServer, visitor: OpenVisitor
) -> None:
    # covers: PAGE-12, BOOK-4
    owner = await owner_with_page(server)
    one = await visitor()
    keys: list[str] = []
    lost: list[dict[str, Any]] = []

    async def lose_the_first_booking(route: Route) -> None:
        body = route.request.post_data_json or {}
        if "bookMeeting" not in body.get("query", ""):
            await route.continue_()
            return
        keys.append(body["variables"]["input"]["idempotencyKey"])
        response = await route.fetch()
        answer = await response.json()
        if not lost and (answer.get("data") or {}).get("bookMeeting"):
            lost.append(answer["data"]["bookMeeting"])  # the server booked ...
            await route.abort("connectionreset")  # ... and its answer never arrives
            return
        await route.fulfill(response=response)

    await one.context.route(re.compile(r"/graphql$"), lose_the_first_booking)
    one.expect_console_errors = True  # the lost answer is a failed request the browser reports
    page = await one.open(meetings_url(server))
    await book_in_page(page, TEN, "Nelli Network", "nelli@example.com")
    failed = outcome(page, "error")
    await expect(failed).to_contain_text("could not reach")
    await failed.get_by_role("button", name="Try again").click()

    await expect(outcome(page, "confirmed")).to_be_visible()
    assert lost[0]["__typename"] == "Booking"
    assert len(keys) >= 2
    assert set(keys) == {keys[0]}  # every try of this submission carried one key
    (booked,) = (await server.graphql(BOOKINGS, token=owner.token))["data"]["me"]["bookings"]
    assert booked["id"] == lost[0]["id"]


async def test_a_refusal_for_too_many_requests_says_how_long_to_wait(server: LiveServer, visitor: OpenVisitor) -> None:
    # covers: PAGE-12
    owner = await owner_with_page(server)
    one = await visitor()

    async def too_many(route: Route) -> None:
        if "bookMeeting" in (route.request.post_data or ""):
            await route.fulfill(status=429, headers={"Retry-After": "30"}, body="")
        else:
            await route.continue_()

    await one.context.route(re.compile(r"/graphql$"), too_many)
    one.expect_console_errors = True  # the browser reports the 429 itself
    page = await one.open(meetings_url(server))
    await book_in_page(page, TEN, "Tiina Toomany", "tiina@example.com")
    limited = outcome(page, "rate-limited")
    await expect(limited).to_contain_text("wait 30 seconds")
    await expect(limited.get_by_role("heading")).to_be_focused()
    assert (await server.graphql(BOOKINGS, token=owner.token))["data"]["me"]["bookings"] == []
