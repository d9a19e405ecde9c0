"""Google end to end over HTTP: consent, callback, calendars, busy time, the booking's event.

The server's real Google adapter talks to the Google double (OAuth and Calendar v3 over
loopback); the test plays the owner's browser between the two.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from db.models import CalendarConnection, OutboxMessage
from server.settings import Settings
from tests.doubles.google import GoogleDouble
from tests.support.booking_helpers import NOW, Owner, book, change, slots
from tests.support.connect_helpers import (
    DISCONNECT,
    SET_INTEGRATED,
    START,
    booking_row,
    connect_google,
    connections,
    owner_allowed_to_connect,
    with_google,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually

ACCOUNT = "owner.google@example.com"
TEAM = "team@group.calendar.google.com"
BOSS = "boss@example.com"
DASHBOARD = "http://127.0.0.1:8000/dashboard"
TUESDAY, WEDNESDAY = "2026-12-01T00:00:00+02:00", "2026-12-02T00:00:00+02:00"


@pytest.fixture
def google() -> Iterator[GoogleDouble]:
    with GoogleDouble() as double:
        double.add_account(ACCOUNT, time_zone="Europe/Helsinki")
        double.add_calendar(ACCOUNT, TEAM, summary="Team", access_role="reader")
        double.add_calendar(ACCOUNT, BOSS, summary="Boss", access_role="freeBusyReader")
        yield double


@pytest.fixture
async def server(settings: Settings, google: GoogleDouble) -> AsyncIterator[LiveServer]:
    async with start_live_server(with_google(settings, google), clock=lambda: NOW) as live:
        yield live


async def connect(server: LiveServer, google: GoogleDouble, owner: Owner) -> str:
    return await connect_google(server, google, owner, ACCOUNT)


async def test_connect_list_calendars_drop_busy_slots_and_write_the_booking(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: CAL-1, CAL-6, BOOK-1, BOOK-2, OPS-3
    owner = await owner_allowed_to_connect(server)
    google.add_busy(ACCOUNT, datetime(2026, 12, 1, 8, tzinfo=UTC), datetime(2026, 12, 1, 9, tzinfo=UTC))
    google.add_busy(TEAM, datetime(2026, 12, 1, 12, tzinfo=UTC), datetime(2026, 12, 1, 13, tzinfo=UTC))

    assert (await connect(server, google, owner)).startswith(f"{DASHBOARD}?connected=google&confirm=")

    (connection,) = await connections(server, owner.token)
    assert (connection["provider"], connection["accountEmail"]) == ("GOOGLE", ACCOUNT)
    assert (connection["calendarSync"], connection["schedulingPages"]) == (True, True)
    listed = {calendar["name"]: calendar for calendar in connection["calendars"]}
    assert set(listed) == {ACCOUNT, "Team"}  # free/busy access shows no details: not offered
    assert (listed[ACCOUNT]["isPrimary"], listed[ACCOUNT]["integrated"]) == (True, True)
    assert (listed["Team"]["isPrimary"], listed["Team"]["integrated"]) == (False, False)

    free = await slots(server, TUESDAY, WEDNESDAY)
    assert "2026-12-01T10:00:00+02:00" not in free  # busy on the primary calendar
    assert "2026-12-01T10:30:00+02:00" not in free
    assert "2026-12-01T14:00:00+02:00" in free  # the Team calendar is not integrated (yet)

    on = await server.graphql(SET_INTEGRATED, {"id": listed["Team"]["id"], "on": True}, token=owner.token)
    assert on["data"]["setCalendarIntegrated"] == {
        "__typename": "Calendar",
        "id": listed["Team"]["id"],
        "integrated": True,
    }
    assert "2026-12-01T14:00:00+02:00" not in await slots(server, TUESDAY, WEDNESDAY)

    booked = await book(server, "2026-12-01T11:00:00+02:00")
    assert (booked["__typename"], booked["calendarWrite"]) == ("Booking", "PENDING")
    (event,) = await eventually(lambda: _events(google, ACCOUNT), lambda events: len(events) == 1, "one event")
    assert [attendee["email"] for attendee in event["attendees"]] == ["visitor@example.com"]
    assert event["start"]["dateTime"].startswith("2026-12-01T11:00:00")
    assert google.events_on(TEAM) == []  # bookings go to the primary calendar only (CAL-6)
    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "done")
    assert row.calendar_event_id == event["id"]
    inserts = [
        request for request in google.requests_to("POST /calendar/v3/calendars/") if request.path.endswith("/events")
    ]
    assert inserts
    assert all("sendUpdates=all" in request.query for request in inserts)


async def _events(google: GoogleDouble, calendar_id: str) -> list[dict[str, object]]:
    return google.events_on(calendar_id)


async def test_declined_consent_and_forged_state_change_nothing(server: LiveServer, google: GoogleDouble) -> None:
    # covers: CAL-1
    owner = await owner_allowed_to_connect(server)
    started = await server.graphql(START, {"provider": "GOOGLE"}, token=owner.token)
    state = parse_qs(urlsplit(started["data"]["startCalendarConnection"]["url"]).query)["state"][0]

    declined = await server.http.get(f"/oauth/google/callback?error=access_denied&state={state}")
    assert declined.headers["location"] == f"{DASHBOARD}?error=access_denied"
    forged = await server.http.get("/oauth/google/callback?code=abc&state=v1.forged.state")
    assert forged.headers["location"] == f"{DASHBOARD}?error=invalid_state"
    replayed = await server.http.get(f"/oauth/google/callback?code=abc&state={state}")  # a state works once
    assert replayed.headers["location"] == f"{DASHBOARD}?error=invalid_state"
    assert await connections(server, owner.token) == []


async def test_connecting_needs_personal_email_access_and_a_configured_provider(server: LiveServer) -> None:
    # covers: CAL-4, CAL-2, OPS-3
    owner = await owner_allowed_to_connect(server)
    microsoft = await server.graphql(START, {"provider": "MICROSOFT"}, token=owner.token)
    assert microsoft["data"]["startCalendarConnection"]["__typename"] == "ProviderNotConfigured"

    off = "mutation { updateUserSettings(input: {personalEmailAccess: false}) { personalEmailAccess } }"
    await server.graphql(off, token=owner.token)
    refused = await server.graphql(START, {"provider": "GOOGLE"}, token=owner.token)
    assert refused["data"]["startCalendarConnection"] == {
        "__typename": "PermissionRequired",
        "message": "turn on personal email access in your settings before connecting a calendar",
        "setting": "personalEmailAccess",
    }


async def test_credentials_are_encrypted_and_removing_deletes_them(server: LiveServer, google: GoogleDouble) -> None:
    # covers: CAL-8, PAGE-4
    owner = await owner_allowed_to_connect(server)
    await connect(server, google, owner)
    async with server.services.db.session() as session:
        (stored,) = (await session.exec(select(CalendarConnection))).all()
    assert stored.credentials is not None
    assert b"refresh_token" not in stored.credentials  # sealed, not JSON
    status = 'query { schedulingPage(slug: "intro") { status } }'
    assert (await server.graphql(status))["data"]["schedulingPage"]["status"] == "ONLINE"

    (connection,) = await connections(server, owner.token)
    removed = await server.graphql(DISCONNECT, {"id": connection["id"]}, token=owner.token)
    assert removed["data"]["disconnectCalendarConnection"]["connectionId"] == connection["id"]
    async with server.services.db.session() as session:
        assert (await session.exec(select(CalendarConnection))).all() == []
    assert len(google.requests_to("POST /revoke")) == 1  # the grant is ended at Google too
    assert google.access_tokens_of(ACCOUNT) == []
    assert (await server.graphql(status))["data"]["schedulingPage"]["status"] == "OFFLINE"
    assert (await book(server, "2026-12-01T11:00:00+02:00"))["__typename"] == "BookingRequest"


async def test_a_revoked_grant_turns_the_calendars_inactive(server: LiveServer, google: GoogleDouble) -> None:
    # covers: INACT-1, INACT-2, BOOK-7
    owner = await owner_allowed_to_connect(server)
    await connect(server, google, owner)
    google.revoke(ACCOUNT)
    google.expire_access_tokens()
    assert not await server.services.busy_sync.refresh(uuid.UUID((await connections(server, owner.token))[0]["id"]))
    (connection,) = await connections(server, owner.token)
    statuses = {(calendar["status"], calendar["inactiveReason"]) for calendar in connection["calendars"]}
    assert statuses == {("INACTIVE", "invalid_grant")}
    assert (await book(server, "2026-12-01T11:00:00+02:00"))["__typename"] == "CalendarInactive"


async def test_a_request_accepted_after_connecting_becomes_one_calendar_event(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: PAGE-4, BOOK-6, BOOK-2
    owner = await owner_allowed_to_connect(server)
    requested = await book(server, "2026-12-01T11:00:00+02:00")  # no calendar yet: the page is offline
    assert (requested["__typename"], requested["calendarWrite"]) == ("BookingRequest", "NONE")
    outbox_kinds = await _outbox_kinds(server)
    assert "email.owner_new_request" in outbox_kinds  # the owner is told
    assert "calendar.create_event" not in outbox_kinds

    await connect(server, google, owner)
    accepted = await change(server, "acceptBookingRequest", owner.token, id=requested["id"])
    assert (accepted["__typename"], accepted["status"]) == ("Booking", "CONFIRMED")
    (event,) = await eventually(lambda: _events(google, ACCOUNT), lambda events: len(events) == 1, "one event")
    assert [attendee["email"] for attendee in event["attendees"]] == ["visitor@example.com"]
    row = await eventually(lambda: booking_row(server, requested["id"]), lambda b: b.calendar_write == "DONE", "done")
    assert row.calendar_event_id == event["id"]


async def _outbox_kinds(server: LiveServer) -> list[str]:
    async with server.services.db.session() as session:
        return [message.kind for message in (await session.exec(select(OutboxMessage))).all()]


async def test_a_booking_moves_over_its_own_event_but_not_onto_new_busy_time(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: BOOK-5, BOOK-7
    owner = await owner_allowed_to_connect(server)
    await connect(server, google, owner)
    booked = await book(server, "2026-12-01T11:00:00+02:00", duration=60)
    await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "written")
    (connection,) = await connections(server, owner.token)
    assert await server.services.busy_sync.refresh(uuid.UUID(connection["id"]))  # the event is busy time now

    # Half an hour later overlaps where it is: its own event is not in its way.
    moved = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start="2026-12-01T11:30:00+02:00")
    assert (moved["__typename"], moved["start"]) == ("Booking", "2026-12-01T11:30:00+02:00")
    (event,) = await eventually(
        lambda: _events(google, ACCOUNT),
        lambda events: len(events) == 1 and str(events[0]["start"]["dateTime"]).startswith("2026-12-01T11:30:00"),
        "the event moved",
    )

    # Busy at Google since the last refresh: the cache cannot know, the live check does.
    google.add_busy(ACCOUNT, datetime(2026, 12, 1, 12, tzinfo=UTC), datetime(2026, 12, 1, 13, tzinfo=UTC))
    refused = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start="2026-12-01T14:00:00+02:00")
    assert refused["__typename"] == "SlotUnavailable"
    assert (await booking_row(server, booked["id"])).start_at == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert google.events_on(ACCOUNT)[0]["start"] == event["start"]


async def test_a_request_is_not_accepted_onto_time_busy_in_the_calendar(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: BOOK-6, BOOK-7
    owner = await owner_allowed_to_connect(server)
    requested = await book(server, "2026-12-01T11:00:00+02:00")  # no calendar yet: a request
    await connect(server, google, owner)
    google.add_busy(ACCOUNT, datetime(2026, 12, 1, 9, tzinfo=UTC), datetime(2026, 12, 1, 10, tzinfo=UTC))
    refused = await change(server, "acceptBookingRequest", owner.token, id=requested["id"])
    assert refused["__typename"] == "SlotUnavailable"
    assert (await booking_row(server, requested["id"])).status == "REQUESTED"
    assert google.events_on(ACCOUNT) == []


async def test_a_booking_cancelled_while_its_event_is_written_leaves_no_event(
    server: LiveServer, google: GoogleDouble, settings: Settings
) -> None:
    # covers: BOOK-5, BOOK-2
    owner = await owner_allowed_to_connect(server)
    await connect(server, google, owner)
    # A second process on the same database: its outbox worker takes what the first one cannot.
    async with start_live_server(with_google(settings, google), clock=lambda: NOW) as other:
        google.latency = 1.0  # the event insert below takes a second
        booked = await book(server, "2026-12-01T11:00:00+02:00")
        await eventually(
            lambda: _inserts(google), lambda inserts: len(inserts) == 1, "the insert under way on the first worker"
        )
        # The visitor cancels through the other process, whose worker runs the delete at once and
        # finds no event yet: the first worker must remove the event it was writing.
        cancelled = await change(other, "cancelBookingByToken", token=booked["manageToken"])
        assert (cancelled["__typename"], cancelled["status"]) == ("Booking", "CANCELLED")
        await eventually(
            lambda: booking_row(server, booked["id"]), lambda b: b.calendar_event_id is not None, "written"
        )
        events = await eventually(lambda: _events(google, ACCOUNT), lambda events: events == [], "no event left")
        google.latency = 0.0
    assert events == []
    assert google.requests_to("DELETE /calendar/v3/calendars/")  # removed, not left behind


async def _inserts(google: GoogleDouble) -> list[object]:
    """Event inserts (not the watch channels the server opens on the same calendars)."""
    return [
        request for request in google.requests_to("POST /calendar/v3/calendars/") if request.path.endswith("/events")
    ]


async def test_a_calendar_no_longer_shared_turns_inactive_alone(server: LiveServer, google: GoogleDouble) -> None:
    # covers: INACT-1, INACT-2, INACT-3
    owner = await owner_allowed_to_connect(server)
    await connect(server, google, owner)
    (connection,) = await connections(server, owner.token)
    team = next(calendar for calendar in connection["calendars"] if calendar["name"] == "Team")
    await server.graphql(SET_INTEGRATED, {"id": team["id"], "on": True}, token=owner.token)

    google.unshare(ACCOUNT, TEAM)
    assert not await server.services.busy_sync.refresh(uuid.UUID(connection["id"]))

    (connection,) = await connections(server, owner.token)
    statuses = {
        calendar["name"]: (calendar["status"], calendar["inactiveReason"]) for calendar in connection["calendars"]
    }
    assert statuses == {ACCOUNT: ("ACTIVE", None), "Team": ("INACTIVE", "notFound")}
    assert (await book(server, "2026-12-01T11:00:00+02:00"))["__typename"] == "CalendarInactive"
    # The owner stops checking it (removing it would end the whole connection): booking works again.
    off = await server.graphql(SET_INTEGRATED, {"id": team["id"], "on": False}, token=owner.token)
    assert off["data"]["setCalendarIntegrated"]["integrated"] is False, off
    assert await server.services.busy_sync.refresh(uuid.UUID(connection["id"]))  # the primary syncs again
    assert (await book(server, "2026-12-01T11:00:00+02:00"))["__typename"] == "Booking"


async def test_a_move_after_changing_accounts_puts_the_event_on_the_new_calendar(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: BOOK-5, BOOK-2, CAL-6
    owner = await owner_allowed_to_connect(server)
    await connect(server, google, owner)
    booked = await book(server, "2026-12-01T11:00:00+02:00")
    await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "written")
    (connection,) = await connections(server, owner.token)
    disconnected = await server.graphql(DISCONNECT, {"id": connection["id"]}, token=owner.token)
    assert disconnected["data"]["disconnectCalendarConnection"]["__typename"] == "Disconnected"
    other = "owner.other@example.com"
    google.add_account(other, time_zone="Europe/Helsinki")
    await connect_google(server, google, owner, other)

    moved = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start="2026-12-01T14:00:00+02:00")
    assert (moved["__typename"], moved["calendarWrite"]) == ("Booking", "PENDING")  # until the calendar has it
    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "moved")
    (event,) = google.events_on(other)
    assert event["start"]["dateTime"].startswith("2026-12-01T14:00:00")
    assert row.calendar_event_id == event["id"]
