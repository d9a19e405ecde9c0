"""Broken calendar access is surfaced at once and nothing is booked wrongly (INACT-1 to INACT-4, SUB-2).

The server's real Google adapter talks to the Google double; the owner's calendar status changes
arrive on a real WebSocket client; emails reach a real SMTP sink.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from server.settings import Settings
from tests.doubles.google import GoogleDouble
from tests.support.booking_helpers import NOW, Owner, book, slots
from tests.support.connect_helpers import (
    DISCONNECT,
    REMOVE,
    SET_INTEGRATED,
    connect_google,
    connections,
    owner_allowed_to_connect,
    with_google,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually
from tests.support.smtp_sink import SmtpSink
from tests.support.status_helpers import STATUS_CHANGED, inactive_mail, subscribed
from tests.support.ws_client import Watcher, ws_session

ACCOUNT = "owner.google@example.com"
TUESDAY, WEDNESDAY = "2026-12-01T00:00:00+02:00", "2026-12-02T00:00:00+02:00"


@pytest.fixture
def google() -> Iterator[GoogleDouble]:
    with GoogleDouble() as double:
        double.add_account(ACCOUNT, time_zone="Europe/Helsinki")
        yield double


@pytest.fixture
async def server(settings: Settings, google: GoogleDouble, sink: SmtpSink) -> AsyncIterator[LiveServer]:
    configured = with_google(settings, google).model_copy(update={"smtp_url": sink.url, "provider_timeout": 1.0})
    async with start_live_server(configured, clock=lambda: NOW) as live:
        yield live


async def refresh(server: LiveServer, owner: Owner) -> bool:
    (connection,) = await connections(server, owner.token)
    return await server.services.busy_sync.refresh(uuid.UUID(connection["id"]))


async def test_revoked_access_is_pushed_refuses_bookings_mails_once_and_reconnecting_fixes_it(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: INACT-1, INACT-2, INACT-3, INACT-4, SUB-2, SUB-1
    owner = await owner_allowed_to_connect(server)
    stranger = await owner_allowed_to_connect(server, with_page=False)
    await connect_google(server, google, owner, ACCOUNT)
    assert await slots(server, TUESDAY, WEDNESDAY)
    before = server.services.bus.hub.stats.subscribers
    async with (
        ws_session(server.ws_url, "graphql-transport-ws", token=owner.token) as mine,
        ws_session(server.ws_url, "graphql-transport-ws", token=stranger.token) as theirs,
    ):
        my_status, their_status = Watcher(mine, {}, STATUS_CHANGED), Watcher(theirs, {}, STATUS_CHANGED)
        await subscribed(server, before + 2)

        google.revoke(ACCOUNT)
        google.expire_access_tokens()
        assert not await refresh(server, owner)

        pushed = await my_status.next()
        assert isinstance(pushed, dict), pushed
        event = pushed["calendarStatusChanged"]
        assert (event["status"], event["reason"]) == ("INACTIVE", "invalid_grant")
        assert (event["calendar"]["name"], event["calendar"]["status"]) == (ACCOUNT, "INACTIVE")
        assert await slots(server, TUESDAY, WEDNESDAY) == []  # nothing bookable while inactive

        for hour in ("10", "11", "12"):
            refused = await book(server, f"2026-12-01T{hour}:00:00+02:00")
            assert refused["__typename"] == "CalendarInactive"
        requested = await book(server, "2026-12-01T13:00:00+02:00", request=True)
        assert requested["__typename"] == "CalendarInactive"  # no request stored by mistake either
        (mail,) = await eventually(lambda: _mail(sink), lambda found: len(found) >= 1, "the owner's email")
        assert mail.rcpt_tos == [owner.user.email]
        text = mail.message.get_body(preferencelist=("plain",)).get_content()
        assert ACCOUNT in text
        assert "Reconnect" in text
        assert "Remove" in text

        google.add_account(ACCOUNT, time_zone="Europe/Helsinki")  # the owner allows access again
        await connect_google(server, google, owner, ACCOUNT)
        again = await my_status.next()
        assert isinstance(again, dict), again
        assert again["calendarStatusChanged"]["status"] == "ACTIVE"
        assert (await book(server, "2026-12-01T10:00:00+02:00"))["__typename"] == "Booking"
        await asyncio.sleep(0.2)  # anything meant for the stranger would have arrived by now
        assert their_status.messages.empty()
        await my_status.close()
        await their_status.close()
    assert len(inactive_mail(sink)) == 1  # one incident, one email, however many attempts


async def _mail(sink: SmtpSink) -> list[Any]:
    return inactive_mail(sink)


async def test_removing_the_inactive_calendar_restores_booking_and_is_pushed(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: INACT-3, INACT-4, SUB-2, CAL-8, PAGE-4
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    google.revoke(ACCOUNT)
    google.expire_access_tokens()
    assert not await refresh(server, owner)
    (connection,) = await connections(server, owner.token)
    before = server.services.bus.hub.stats.subscribers
    async with ws_session(server.ws_url, "graphql-transport-ws", token=owner.token) as mine:
        status = Watcher(mine, {}, STATUS_CHANGED)
        await subscribed(server, before + 1)
        primary = await server.graphql(REMOVE, {"id": connection["calendars"][0]["id"]}, token=owner.token)
        refused = primary["data"]["removeCalendar"]
        assert (refused["__typename"], refused["connectionId"]) == ("PrimaryCalendarNotRemovable", connection["id"])
        removed = await server.graphql(DISCONNECT, {"id": connection["id"]}, token=owner.token)
        assert removed["data"]["disconnectCalendarConnection"]["__typename"] == "Disconnected"
        pushed = await status.next()
        assert isinstance(pushed, dict), pushed
        assert pushed["calendarStatusChanged"]["status"] == "REMOVED"
        await status.close()
    # No calendar any more: the page is offline and takes requests again (PAGE-4).
    assert (await book(server, "2026-12-01T10:00:00+02:00"))["__typename"] == "BookingRequest"


async def test_a_storm_of_transient_failures_marks_nothing_inactive(server: LiveServer, google: GoogleDouble) -> None:
    # covers: INACT-1, BOOK-7
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    google.expire_access_tokens()
    google.fail("POST /token", status=500, times=2)
    events = "GET /calendar/v3/calendars/"  # the busy-time sync reads the calendar's events
    google.fail(events, status=503, times=3)
    google.fail(events, status=429, headers={"Retry-After": "30"}, times=3)
    google.fail(events, delay=1.5, times=2)  # longer than the provider timeout
    outcomes = [await refresh(server, owner) for _ in range(10)]
    assert outcomes.count(False) >= 4, outcomes  # the storm was felt ...
    assert outcomes[-1] is True  # ... and passed
    (connection,) = await connections(server, owner.token)
    assert {calendar["status"] for calendar in connection["calendars"]} == {"ACTIVE"}
    assert (await book(server, "2026-12-01T10:00:00+02:00"))["__typename"] in ("Booking", "SlotUnavailable")


async def test_a_connection_without_integrated_calendars_is_probed_too(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: INACT-1
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    (connection,) = await connections(server, owner.token)
    primary = connection["calendars"][0]["id"]
    off = await server.graphql(SET_INTEGRATED, {"id": primary, "on": False}, token=owner.token)
    assert off["data"]["setCalendarIntegrated"]["integrated"] is False
    google.clear_requests()
    assert await refresh(server, owner)
    assert google.requests_to("GET /calendar/v3/users/me/calendarList")  # the probe
    assert not google.requests_to("POST /calendar/v3/freeBusy")  # no busy time is wanted
    assert not google.requests_to("/events")

    google.revoke(ACCOUNT)
    google.expire_access_tokens()
    assert not await refresh(server, owner)
    (connection,) = await connections(server, owner.token)
    assert {calendar["status"] for calendar in connection["calendars"]} == {"INACTIVE"}
