"""Calendar sync: meetings the owner makes in Google or Outlook with a contact are logged on it.

In the order a new owner acts: connect the calendar (the OAuth flow against the provider's
double), have contacts (a booking, or a row put in directly), then make events in the calendar
as in Google Calendar or Outlook. The doubles post their change notifications to the server's
real webhooks; the round each one starts logs the meeting. What was decided, and why, is read
as the owner reads it: ``me { calendarImports }`` and ``contact(email) { meetings }``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from db.models import BusyInterval, Contact, User
from scheduling.crm import imports
from server.settings import Settings
from tests.api import test_exchange_sync_e2e as exchange_e2e
from tests.api import test_push as push
from tests.api import test_push_microsoft as push_microsoft
from tests.api.test_connect_forms import MAILBOX, connect_exchange, exchange_form
from tests.api.test_connect_microsoft import DEFAULT, TEAM
from tests.api.test_known_time import ACCOUNT, day
from tests.api.test_push_microsoft import connected as outlook_connected
from tests.doubles.exchange import ExchangeDouble
from tests.doubles.google import GoogleDouble
from tests.doubles.microsoft import MicrosoftDouble
from tests.doubles.server import TLSFiles
from tests.support.booking_helpers import NOW, Owner, book
from tests.support.clock import MovableClock
from tests.support.connect_helpers import (
    SET_INTEGRATED,
    booking_row,
    connect_google,
    connections,
    owner_allowed_to_connect,
    with_microsoft,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

HOUR = timedelta(hours=1)
VERA = "vera@example.com"
OLLI = "olli@example.com"
IMPORTS = """
query { me { calendarImports(last: 200) { externalEventId title start imported reason at } } }
"""
MEETINGS = """
query($email: String!) { me { contact(email: $email) { meetings { title start end source calendarInvitationSent } } } }
"""
CALENDAR_SYNC = """
mutation($id: ID!, $on: Boolean!) {
  updateCalendarConnection(id: $id, input: {calendarSync: $on}) { __typename ... on CalendarConnection { calendarSync } }
}
"""


# The push tests' doubles and servers: Google's posts its notifications to the server's webhook;
# Exchange's answers the server's EWS calls (over TLS, trusted through the same CA as Microsoft's).
google, clock, server = push.google, push.clock, push.server
tls, microsoft = push_microsoft.tls, push_microsoft.microsoft
exchange = exchange_e2e.exchange


# -- reading what the owner reads ---------------------------------------------------------------


async def decisions(server: LiveServer, owner: Owner) -> list[dict[str, Any]]:
    """The owner's calendar sync decisions, newest first."""
    answer = await server.graphql(IMPORTS, token=owner.token)
    assert "errors" not in answer, answer
    return list(answer["data"]["me"]["calendarImports"])


async def decided(server: LiveServer, owner: Owner, event_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The decisions on one event, newest first, once there are ``count`` of them."""
    return await eventually(
        lambda: _on(server, owner, event_id),
        lambda rows: len(rows) >= count,
        f"{count} decision(s) on {event_id}",
    )


async def _on(server: LiveServer, owner: Owner, event_id: str) -> list[dict[str, Any]]:
    return [row for row in await decisions(server, owner) if row["externalEventId"] == event_id]


async def synced_meetings(server: LiveServer, owner: Owner, email: str) -> list[dict[str, Any]]:
    """The contact's meetings found in the calendar."""
    answer = await server.graphql(MEETINGS, {"email": email}, token=owner.token)
    assert "errors" not in answer, answer
    contact = answer["data"]["me"]["contact"]
    assert contact is not None, f"{email} is no contact"
    return [meeting for meeting in contact["meetings"] if meeting["source"] == "CALENDAR_SYNC"]


async def busy_events(server: LiveServer) -> set[str]:
    """The ids of the events whose busy time the server holds (the rounds that read them ran)."""
    async with server.services.db.session() as session:
        return {str(event_id) for event_id in (await session.exec(select(col(BusyInterval.external_id)))).all()}


async def booked_by(server: LiveServer, email: str) -> str:
    """A visitor books Tuesday 10:00 on the owner's page: the id of the booking's event, once written."""
    booked = await book(server, "2026-12-01T10:00:00+02:00", email=email)
    written = await eventually(
        lambda: booking_row(server, booked["id"]), lambda row: row.calendar_write == "DONE", "the booking's event"
    )
    assert written.calendar_event_id is not None
    return written.calendar_event_id


def utc(moment: datetime) -> str:
    """A time as the API writes it (UTC, with its offset)."""
    return moment.isoformat()


async def add_contact(server: LiveServer, user: User, email: str, name: str = "") -> None:
    """A contact of the owner, as the CRM keeps it (made directly: setup, not what is tested)."""
    async with server.services.db.transaction() as session:
        session.add(Contact(owner_id=user.id, email=email, name=name, created_at=NOW, updated_at=NOW))


async def google_owner(server: LiveServer, google: GoogleDouble, *contacts: str) -> Owner:
    """An owner connected to Google (its primary calendar synced and pushed), with these contacts."""
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    assert google.channels(), "the primary calendar pushes its changes"
    for email in contacts:
        await add_contact(server, owner.user, email)
    return owner


# -- Google ------------------------------------------------------------------------------------


async def test_a_meeting_made_in_google_with_a_contact_is_logged_on_the_contact_by_its_notification(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-2, SYNC-7
    owner = await google_owner(server, google, VERA)
    clock.advance(60)
    google.clear_requests()

    meeting = google.add_event(ACCOUNT, day(1, 10), day(1, 11), summary="Pricing call", guests=["Vera@Example.com"])
    strangers = google.add_event(ACCOUNT, day(1, 13), day(1, 14), summary="Team lunch", guests=["x@example.net"])

    (row,) = await decided(server, owner, meeting)
    assert (row["imported"], row["reason"]) == (True, f"imported as a meeting with {VERA}")
    assert (row["title"], row["start"]) == ("Pricing call", utc(day(1, 10)))
    assert await synced_meetings(server, owner, VERA) == [
        {
            "title": "Pricing call",
            "start": utc(day(1, 10)),
            "end": utc(day(1, 11)),
            "source": "CALENDAR_SYNC",
            "calendarInvitationSent": True,  # Vera is a guest: Google invited her
        }
    ]
    (skipped,) = await decided(server, owner, strangers)
    assert (skipped["imported"], skipped["reason"]) == (False, "not imported: no guest is one of your contacts")
    listed = [request for request in google.requests_to("GET ") if request.path.endswith("/events")]
    assert listed
    assert all("syncToken" in request.query for request in listed)  # incremental rounds, started by the pushes


async def test_a_moved_event_moves_its_meeting_and_a_deleted_one_removes_it(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-2, SYNC-7
    owner = await google_owner(server, google, VERA)
    meeting = google.add_event(ACCOUNT, day(1, 10), day(1, 11), summary="Pricing call", guests=[VERA])
    await decided(server, owner, meeting)

    clock.advance(60)
    google.move_event(ACCOUNT, meeting, day(2, 14), day(2, 15))
    moved = await decided(server, owner, meeting, 2)
    assert (moved[0]["imported"], moved[0]["reason"]) == (True, f"meeting with {VERA} updated from its event")
    assert [(m["start"], m["end"]) for m in await synced_meetings(server, owner, VERA)] == [
        (utc(day(2, 14)), utc(day(2, 15)))
    ]

    clock.advance(60)
    google.delete_event(ACCOUNT, meeting)
    deleted = await decided(server, owner, meeting, 3)
    assert (deleted[0]["imported"], deleted[0]["reason"]) == (
        False,
        f"meeting with {VERA} removed: the event was deleted",
    )
    assert await synced_meetings(server, owner, VERA) == []


async def test_a_contact_no_longer_invited_loses_the_meeting_and_each_instance_of_a_series_is_one(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-2, SYNC-7
    owner = await google_owner(server, google, VERA, OLLI)
    meeting = google.add_event(ACCOUNT, day(1, 10), day(1, 11), summary="Kick-off", guests=[VERA, OLLI])
    (first,) = await decided(server, owner, meeting)
    assert first["reason"] == f"imported as a meeting with {VERA}, {OLLI}"

    clock.advance(60)
    google.set_guests(ACCOUNT, meeting, [OLLI])
    dropped = await decided(server, owner, meeting, 2)
    assert (dropped[0]["imported"], dropped[0]["reason"]) == (True, f"meeting with {VERA} removed: no longer a guest")
    assert await synced_meetings(server, owner, VERA) == []
    assert [m["title"] for m in await synced_meetings(server, owner, OLLI)] == ["Kick-off"]

    weekly = google.add_recurring(ACCOUNT, day(2, 9), day(2, 9) + HOUR / 2, count=3, summary="Weekly", guests=[VERA])
    for instance in weekly:
        await decided(server, owner, instance)
    starts = [m["start"] for m in await synced_meetings(server, owner, VERA)]
    assert starts == [utc(day(2 + 7 * week, 9)) for week in range(3)]


async def test_what_apps_made_is_not_imported_our_bookings_included(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-2, SYNC-7, SYNC-6
    owner = await google_owner(server, google, OLLI)
    booking_event = await booked_by(server, VERA)  # Vera becomes a contact
    clock.advance(60)
    zoom = google.add_event(
        ACCOUNT, day(1, 13), day(1, 14), guests=[OLLI], source={"title": "Zoom", "url": "https://zoom.us/j/1"}
    )
    crm = google.add_event(ACCOUNT, day(1, 15), day(1, 16), guests=[OLLI], private={"otherCrmId": "42"})

    (ours,) = await decided(server, owner, booking_event)
    assert (ours["imported"], ours["reason"]) == (
        False,
        "not imported: Kokous wrote it for a booking or a meeting, which is logged already",
    )
    (by_zoom,) = await decided(server, owner, zoom)
    assert by_zoom["reason"] == "not imported: made by another app (its source is Zoom)"
    (by_crm,) = await decided(server, owner, crm)
    assert by_crm["reason"] == "not imported: made by another app (another app's private properties)"
    assert await synced_meetings(server, owner, VERA) == []  # the booking is Vera's meeting
    assert await synced_meetings(server, owner, OLLI) == []


async def test_all_day_free_and_non_meeting_events_and_those_before_connecting_are_skipped_with_reasons(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-2, SYNC-7
    earlier = google.add_event(ACCOUNT, NOW - 5 * HOUR, NOW - 4 * HOUR, summary="Yesterday's", guests=[VERA])
    owner = await google_owner(server, google, VERA)
    clock.advance(60)
    all_day = google.add_event(ACCOUNT, date(2026, 12, 2), date(2026, 12, 3), all_day=True, guests=[VERA])
    free = google.add_event(ACCOUNT, day(1, 10), day(1, 11), transparency="transparent", guests=[VERA])
    away = google.add_event(ACCOUNT, day(1, 12), day(1, 13), event_type="outOfOffice")
    invited = google.add_event(ACCOUNT, day(1, 14), day(1, 15), organizer="boss@example.net", guests=[VERA])

    reasons = {
        event_id: (await decided(server, owner, event_id))[0]["reason"]
        for event_id in (earlier, all_day, free, away, invited)
    }
    assert reasons == {
        earlier: "not imported: it ended before the calendar was connected",
        all_day: "not imported: an all-day event",
        free: "not imported: it shows you as free",
        away: "not imported: not a meeting (out of office)",
        invited: "not imported: someone else organizes it",
    }
    assert await synced_meetings(server, owner, VERA) == []


async def test_with_calendar_sync_off_nothing_is_imported_and_a_full_round_repeats_nothing(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: SYNC-2, SYNC-7, SYNC-5
    owner = await google_owner(server, google, VERA)
    meeting = google.add_event(ACCOUNT, day(1, 10), day(1, 11), summary="Pricing call", guests=[VERA])
    await decided(server, owner, meeting)
    google.invalidate_sync_tokens(ACCOUNT)  # the next round lists every event again
    (connection,) = await connections(server, owner.token)
    assert await server.services.busy_sync.refresh(uuid.UUID(connection["id"]))
    assert len(await _on(server, owner, meeting)) == 1  # unchanged: noted once, logged once
    assert len(await synced_meetings(server, owner, VERA)) == 1

    off = await server.graphql(CALENDAR_SYNC, {"id": connection["id"], "on": False}, token=owner.token)
    assert off["data"]["updateCalendarConnection"] == {"__typename": "CalendarConnection", "calendarSync": False}
    clock.advance(60)
    google.delete_event(ACCOUNT, meeting)
    later = google.add_event(ACCOUNT, day(2, 10), day(2, 11), summary="Follow-up", guests=[VERA])

    (row,) = await decided(server, owner, later)
    assert (row["imported"], row["reason"]) == (False, "not imported: calendar sync is off for this connection")
    # The round that read the later event read the deletion before it: the meeting stays as logged.
    assert [m["title"] for m in await synced_meetings(server, owner, VERA)] == ["Pricing call"]


async def test_the_log_keeps_the_owners_newest_decisions(
    server: LiveServer, google: GoogleDouble, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # covers: SYNC-7
    monkeypatch.setattr(imports, "KEPT_DECISIONS", 3)
    owner = await google_owner(server, google)
    made = []
    for hour in range(9, 14):
        clock.advance(60)
        made.append(google.add_event(ACCOUNT, day(1, hour), day(1, hour) + HOUR / 2, summary=f"At {hour}"))
        await decided(server, owner, made[-1])

    assert [row["externalEventId"] for row in await decisions(server, owner)] == made[:-4:-1]  # newest first


# -- Microsoft 365 ------------------------------------------------------------------------------


@pytest.fixture
async def outlook_server(
    settings: Settings, microsoft: MicrosoftDouble, tls: TLSFiles, clock: MovableClock
) -> AsyncIterator[LiveServer]:
    async with start_live_server(with_microsoft(settings, microsoft, tls), clock=clock, own_webhook_url=True) as live:
        yield live


async def test_a_meeting_made_in_outlook_is_logged_and_follows_its_event(
    outlook_server: LiveServer, microsoft: MicrosoftDouble, clock: MovableClock
) -> None:
    # covers: SYNC-2, SYNC-7
    server = outlook_server
    owner, connection_id = await outlook_connected(server, microsoft)
    (connection,) = await connections(server, owner.token)
    team = next(calendar for calendar in connection["calendars"] if not calendar["isPrimary"])
    on = await server.graphql(SET_INTEGRATED, {"id": team["id"], "on": True}, token=owner.token)
    assert on["data"]["setCalendarIntegrated"]["integrated"] is True  # its busy time counts; contacts do not
    assert await server.services.busy_sync.refresh(uuid.UUID(connection_id))
    assert len(microsoft.subscriptions()) == 2, "both calendars push their changes"
    await add_contact(server, owner.user, VERA)
    clock.advance(60)

    meeting = microsoft.add_event(DEFAULT, day(1, 10), day(1, 11), subject="Pricing call", guests=[VERA])
    on_team = microsoft.add_event(TEAM, day(1, 12), day(1, 13), subject="Elsewhere", guests=[VERA])
    (row,) = await decided(server, owner, meeting)
    assert (row["imported"], row["reason"], row["title"]) == (
        True,
        f"imported as a meeting with {VERA}",
        "Pricing call",
    )
    assert [(m["title"], m["start"]) for m in await synced_meetings(server, owner, VERA)] == [
        ("Pricing call", utc(day(1, 10)))
    ]

    clock.advance(60)
    microsoft.move_event(meeting, day(3, 9), day(3, 10))
    await decided(server, owner, meeting, 2)
    assert [m["start"] for m in await synced_meetings(server, owner, VERA)] == [utc(day(3, 9))]

    clock.advance(60)
    microsoft.delete_event(meeting)
    gone = await decided(server, owner, meeting, 3)
    assert gone[0]["reason"] == f"meeting with {VERA} removed: the event was deleted"
    assert await synced_meetings(server, owner, VERA) == []
    assert await busy_events(server) >= {on_team}  # the Team calendar's rounds read it ...
    assert await _on(server, owner, on_team) == []  # ... but only the primary calendar's events reach contacts


async def test_outlook_events_with_an_apps_transaction_id_are_not_imported_our_bookings_included(
    outlook_server: LiveServer, microsoft: MicrosoftDouble, clock: MovableClock
) -> None:
    # covers: SYNC-2, SYNC-7, SYNC-6
    server = outlook_server
    owner, _ = await outlook_connected(server, microsoft)
    await add_contact(server, owner.user, OLLI)
    booking_event = await booked_by(server, VERA)
    clock.advance(60)
    other = microsoft.add_event(
        DEFAULT, day(1, 13), day(1, 14), guests=[OLLI], transaction_id="7E163156-7762-4BEB-A1C6-729EA81755A7"
    )

    (ours,) = await decided(server, owner, booking_event)
    assert ours["reason"] == "not imported: Kokous wrote it for a booking or a meeting, which is logged already"
    (theirs,) = await decided(server, owner, other)
    assert theirs["reason"] == "not imported: made by another app (an app set its transactionId)"
    assert await synced_meetings(server, owner, VERA) == []
    assert await synced_meetings(server, owner, OLLI) == []


# -- Exchange -------------------------------------------------------------------------------------


@pytest.fixture
async def exchange_server(settings: Settings, tls: TLSFiles, clock: MovableClock) -> AsyncIterator[LiveServer]:
    async with start_live_server(settings.model_copy(update={"ca_bundle": tls.ca_path}), clock=clock) as live:
        yield live


async def test_exchange_meetings_are_logged_once_the_owner_turns_calendar_sync_on(
    exchange_server: LiveServer, exchange: ExchangeDouble, clock: MovableClock
) -> None:
    # covers: SYNC-2, SYNC-7
    server = exchange_server
    owner = await owner_allowed_to_connect(server)
    made = await connect_exchange(server, owner, exchange_form(exchange))
    assert (made["__typename"], made["calendarSync"]) == ("CalendarConnection", False)  # off by default here
    await add_contact(server, owner.user, VERA)
    clock.advance(60)
    before = exchange.add_meeting(MAILBOX, day(1, 10), day(1, 11), subject="Before", required=[VERA])
    assert await server.services.busy_sync.refresh(uuid.UUID(made["id"]))
    (row,) = await decided(server, owner, before)
    assert row["reason"] == "not imported: calendar sync is off for this connection"

    on = await server.graphql(CALENDAR_SYNC, {"id": made["id"], "on": True}, token=owner.token)
    assert on["data"]["updateCalendarConnection"]["calendarSync"] is True
    clock.advance(60)
    meeting = exchange.add_meeting(MAILBOX, day(2, 10), day(2, 11), subject="Pricing call", optional=[VERA])
    assert await server.services.busy_sync.refresh(uuid.UUID(made["id"]))

    (imported,) = await decided(server, owner, meeting)
    assert (imported["imported"], imported["reason"]) == (True, f"imported as a meeting with {VERA}")
    assert [(m["title"], m["start"]) for m in await synced_meetings(server, owner, VERA)] == [
        ("Pricing call", utc(day(2, 10)))
    ]
