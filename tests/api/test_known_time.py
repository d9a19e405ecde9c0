"""Only fetched time is offered, and the check at booking time decides (Google end to end).

In the order a new owner sets things up: connect the calendar first, then create or lengthen a
page. The Google double answers events.list (the busy-time sync) and freeBusy (the check at booking
time) for exactly the asked ``timeMin``/``timeMax``, so any time the server never asked about is
really unknown to it. Bookings go through the server's
real Google adapter; status changes arrive on a real WebSocket; emails reach a real SMTP sink.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sqlmodel import select

from db.models import Booking
from server.settings import Settings
from tests.doubles.google import GoogleDouble
from tests.support.booking_helpers import NOW, Owner, book, change, create_intro_page
from tests.support.clock import MovableClock
from tests.support.connect_helpers import (
    DISCONNECT,
    GOOGLE_ACCOUNT,
    GOOGLE_TEAM,
    REMOVE,
    SET_INTEGRATED,
    booking_row,
    connect_google,
    connections,
    google_with_team,
    owner_allowed_to_connect,
    with_google,
)
from tests.support.graphql_documents import MY_PAGES, UPDATE_PAGE
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually
from tests.support.smtp_sink import SmtpSink
from tests.support.status_helpers import inactive_mail, status_event, watching_status

ACCOUNT, TEAM = GOOGLE_ACCOUNT, GOOGLE_TEAM
FREE_BUSY = "POST /calendar/v3/freeBusy"  # the check at booking time
EVENTS_LIST = "GET /calendar/v3/calendars/"  # the busy-time sync: events.list, a full round with a window
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY")
SLOTS = """
query($start: DateTime!, $end: DateTime!) {
  schedulingPage(slug: "intro") {
    slots(start: $start, end: $end, timezone: "Europe/Helsinki", duration: 30) { slots { start } asOf complete }
  }
}
"""


@dataclass(frozen=True)
class Answer:
    starts: list[str]
    complete: bool
    as_of: str


@pytest.fixture
def google() -> Iterator[GoogleDouble]:
    with google_with_team() as double:
        yield double


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def server(
    settings: Settings, google: GoogleDouble, sink: SmtpSink, clock: MovableClock
) -> AsyncIterator[LiveServer]:
    configured = with_google(settings, google).model_copy(update={"smtp_url": sink.url, "provider_timeout": 1.0})
    async with start_live_server(configured, clock=clock) as live:
        yield live


def day(offset: int, hour: int = 0) -> datetime:
    """``offset`` days after the tests' Monday, at ``hour`` in Helsinki (winter time, UTC+2)."""
    return datetime(2026, 11, 30, tzinfo=UTC) + timedelta(days=offset, hours=hour - 2)


def local(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def slots_on(server: LiveServer, offset: int) -> Answer:
    """The page's free 30-minute starts on one day, as a visitor in Helsinki asks for them."""
    result = await server.graphql(SLOTS, {"start": local(day(offset)), "end": local(day(offset + 1))})
    assert "errors" not in result, result
    answer = result["data"]["schedulingPage"]["slots"]
    starts = [datetime.fromisoformat(slot["start"]).astimezone(UTC).isoformat() for slot in answer["slots"]]
    return Answer(starts=starts, complete=answer["complete"], as_of=answer["asOf"])


def at(offset: int, hour: int, minute: int = 0) -> str:
    return (day(offset, hour) + timedelta(minutes=minute)).astimezone(UTC).isoformat()


def asked_windows(google: GoogleDouble) -> list[tuple[datetime, datetime]]:
    """The windows the busy-time sync asked Google for, in order: full rounds of events, and
    free/busy for a visitor waiting on time not fetched yet."""
    windows = []
    for request in google.requests:
        if request.method == "POST" and request.path.endswith("/freeBusy"):
            body = json.loads(request.text)
            windows.append((datetime.fromisoformat(body["timeMin"]), datetime.fromisoformat(body["timeMax"])))
        query = dict(parse_qsl(request.query))
        if request.method == "GET" and request.path.endswith("/events") and "timeMin" in query:
            windows.append((datetime.fromisoformat(query["timeMin"]), datetime.fromisoformat(query["timeMax"])))
    return windows


def page_input(**fields: Any) -> dict[str, Any]:
    return {
        "slug": "intro",
        "name": "Intro call",
        "durations": [30, 60],
        "timezone": "Europe/Helsinki",
        "startIncrement": 30,
        "weeklyHours": [{"weekday": weekday, "start": "09:00", "end": "17:00"} for weekday in WEEKDAYS],
        **fields,
    }


async def create_page(server: LiveServer, owner: Owner, **fields: Any) -> str:
    return await create_intro_page(
        server,
        owner.token,
        weeklyHours=[{"weekday": weekday, "start": "09:00", "end": "17:00"} for weekday in WEEKDAYS],
        **fields,
    )


async def test_lengthening_a_horizon_fetches_the_new_range_before_offering_it(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: BOOK-8, BOOK-1
    owner = await owner_allowed_to_connect(server, with_page=False)
    google.add_busy(ACCOUNT, day(150, 13), day(150, 14))  # day 150, a Thursday
    await connect_google(server, google, owner, ACCOUNT)
    owner.page_id = await create_page(server, owner, bookingHorizonDays=30)
    assert (await slots_on(server, 150)).starts == []  # beyond the horizon

    updated = await server.graphql(
        UPDATE_PAGE, {"id": owner.page_id, "input": page_input(bookingHorizonDays=200)}, token=owner.token
    )
    assert updated["data"]["updateSchedulingPage"]["bookingHorizonDays"] == 200, updated
    answer = await slots_on(server, 150)

    assert at(150, 13) not in answer.starts
    assert at(150, 13, 30) not in answer.starts
    assert {at(150, 12, 30), at(150, 14)} <= set(answer.starts)
    assert answer.complete is True


async def test_a_horizon_beyond_the_kept_range_is_refused_and_names_the_maximum(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: BOOK-8, PAGE-2
    owner = await owner_allowed_to_connect(server, with_page=False)
    owner.page_id = await create_page(server, owner, bookingHorizonDays=365)
    too_far = await server.graphql(
        UPDATE_PAGE, {"id": owner.page_id, "input": page_input(bookingHorizonDays=366)}, token=owner.token
    )
    refused = too_far["data"]["updateSchedulingPage"]
    assert (refused["__typename"], refused["field"]) == ("InvalidInput", "bookingHorizonDays")
    assert "365" in refused["message"]
    fixed = await server.graphql(
        UPDATE_PAGE,
        {"id": owner.page_id, "input": page_input(fixedRangeStart="2027-01-04", fixedRangeEnd="2027-12-31")},
        token=owner.token,
    )
    refused = fixed["data"]["updateSchedulingPage"]
    assert (refused["__typename"], refused["field"]) == ("InvalidInput", "fixedRange")
    assert "2027-11-30" in refused["message"]  # the farthest day whose busy time is kept
    stored = await server.graphql(MY_PAGES, token=owner.token)
    (page,) = stored["data"]["me"]["schedulingPages"]
    assert (page["bookingHorizonDays"], page["fixedRangeEnd"]) == (365, None)  # nothing changed


async def connected_with_team(
    server: LiveServer, google: GoogleDouble, owner: Owner
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The owner's Google account connected, its shared "Team" calendar integrated too:
    the connection, the team calendar and the primary one."""
    await connect_google(server, google, owner, ACCOUNT)
    (connection,) = await connections(server, owner.token)
    team = next(calendar for calendar in connection["calendars"] if calendar["name"] == "Team")
    primary = next(calendar for calendar in connection["calendars"] if calendar["isPrimary"])
    integrated = await server.graphql(SET_INTEGRATED, {"id": team["id"], "on": True}, token=owner.token)
    assert integrated["data"]["setCalendarIntegrated"]["integrated"] is True
    return connection, team, primary


async def refused_three_times(server: LiveServer) -> None:
    """Three visitors try to book Tuesday morning; each is told the calendar is inactive."""
    for hour in ("10", "11", "12"):
        refused = await book(server, f"2026-12-01T{hour}:00:00+02:00")
        assert refused["__typename"] == "CalendarInactive", refused


async def test_a_calendar_unshared_at_booking_time_turns_inactive_and_removing_it_restores_booking(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: BOOK-9, INACT-1, INACT-2, INACT-3, INACT-4, SUB-2, CAL-6, CAL-8
    owner = await owner_allowed_to_connect(server)
    connection, team, primary = await connected_with_team(server, google, owner)
    assert at(1, 10) in (await slots_on(server, 1)).starts  # Tuesday 10:00, offered from the cache

    google.unshare(ACCOUNT, TEAM)  # the team calendar's owner stops sharing it; the cache does not know yet
    async with watching_status(server, owner) as status:
        await refused_three_times(server)

        event = await status_event(status)
        assert (event["status"], event["reason"], event["calendar"]["id"]) == ("INACTIVE", "notFound", team["id"])
        (after,) = await connections(server, owner.token)
        states = {calendar["id"]: (calendar["status"], calendar["inactiveReason"]) for calendar in after["calendars"]}
        assert states == {team["id"]: ("INACTIVE", "notFound"), primary["id"]: ("ACTIVE", None)}
        await eventually(lambda: _inactive_mail(sink), lambda found: len(found) >= 1, "the owner's email")

        kept = await server.graphql(REMOVE, {"id": primary["id"]}, token=owner.token)
        assert kept["data"]["removeCalendar"]["__typename"] == "PrimaryCalendarNotRemovable"
        assert kept["data"]["removeCalendar"]["connectionId"] == connection["id"]
        removed = await server.graphql(REMOVE, {"id": team["id"]}, token=owner.token)
        assert removed["data"]["removeCalendar"] == {"__typename": "CalendarRemoved", "calendarId": team["id"]}
        gone = await status_event(status)
        assert (gone["status"], gone["calendar"]["id"]) == ("REMOVED", team["id"])

    (after,) = await connections(server, owner.token)  # the connection, its primary and its list stay
    assert after["id"] == connection["id"]
    listed = {calendar["id"]: (calendar["status"], calendar["integrated"]) for calendar in after["calendars"]}
    assert listed == {team["id"]: ("ACTIVE", False), primary["id"]: ("ACTIVE", True)}
    booked = await book(server, "2026-12-01T10:00:00+02:00")
    assert booked["__typename"] == "Booking", booked
    await eventually(lambda: booking_row(server, booked["id"]), lambda row: row.calendar_write == "DONE", "written")
    assert len(google.events_on(ACCOUNT)) == 1
    assert len(inactive_mail(sink)) == 1  # three refused attempts, one incident, one email

    google.add_calendar(ACCOUNT, TEAM, summary="Team", access_role="reader")  # shared again
    google.add_busy(TEAM, day(1, 14), day(1, 15))
    again = await server.graphql(SET_INTEGRATED, {"id": team["id"], "on": True}, token=owner.token)
    assert again["data"]["setCalendarIntegrated"]["integrated"] is True
    assert at(1, 14) not in (await slots_on(server, 1)).starts  # its busy time counts again

    disconnected = await server.graphql(DISCONNECT, {"id": connection["id"]}, token=owner.token)
    assert disconnected["data"]["disconnectCalendarConnection"] == {
        "__typename": "Disconnected",
        "connectionId": connection["id"],
    }
    assert await connections(server, owner.token) == []
    assert len(google.requests_to("POST /revoke")) == 1


async def _inactive_mail(sink: SmtpSink) -> list[Any]:
    return inactive_mail(sink)


async def test_a_provider_timing_out_at_booking_time_lets_only_a_fresh_cache_decide(
    server: LiveServer, google: GoogleDouble, clock: MovableClock
) -> None:
    # covers: BOOK-9, BOOK-2, OPS-4
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    google.fail(FREE_BUSY, delay=3.0, times=100)  # every freeBusy call now times out

    clock.now = NOW + timedelta(minutes=10)  # the cache was fetched 10 minutes ago
    booked = await book(server, "2026-12-01T10:00:00+02:00")
    assert booked["__typename"] == "Booking", booked
    assert await fallbacks(server) == {"trusted_cache": 1.0, "refused_stale": 0.0}

    clock.now = NOW + timedelta(minutes=40)  # now too old to stand in for the provider
    refused = await server.graphql(
        """mutation($input: BookMeetingInput!) { bookMeeting(input: $input) {
             __typename ... on CalendarUnreachable { message retryAfterSeconds } } }""",
        {"input": _booking("2026-12-01T11:00:00+02:00")},
    )
    answer = refused["data"]["bookMeeting"]
    assert answer["__typename"] == "CalendarUnreachable", answer
    assert answer["retryAfterSeconds"] > 0
    assert await fallbacks(server) == {"trusted_cache": 1.0, "refused_stale": 1.0}
    assert [row.start_at for row in await _bookings(server, owner)] == [datetime(2026, 12, 1, 8, tzinfo=UTC)]


def _booking(start: str) -> dict[str, Any]:
    return {
        "slug": "intro",
        "start": start,
        "timezone": "Europe/Helsinki",
        "invitee": {"name": "Vera Visitor", "email": "visitor@example.com"},
    }


async def _bookings(server: LiveServer, owner: Owner) -> list[Booking]:
    async with server.services.db.session() as session:
        return list((await session.exec(select(Booking).where(Booking.owner_id == owner.user.id))).all())


async def fallbacks(server: LiveServer) -> dict[str, float]:
    text = (await server.http.get("/metrics")).text
    counted: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("kokous_busy_check_fallbacks_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            counted[outcome] = float(line.rsplit(" ", 1)[1])
    return counted


async def test_moving_and_accepting_obey_the_booking_rules_while_a_calendar_is_gone(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: BOOK-9, BOOK-5, BOOK-6, INACT-2
    owner = await owner_allowed_to_connect(server)
    await connected_with_team(server, google, owner)
    booked = await book(server, "2026-12-01T10:00:00+02:00")
    requested = await book(server, "2026-12-01T13:00:00+02:00", request=True)
    assert (booked["__typename"], requested["__typename"]) == ("Booking", "BookingRequest")

    google.unshare(ACCOUNT, TEAM)
    by_owner = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start=at(1, 11))
    assert by_owner["__typename"] == "CalendarInactive", by_owner
    by_invitee = await change(server, "rescheduleBookingByToken", token=booked["manageToken"], start=at(1, 11))
    assert by_invitee["__typename"] == "CalendarInactive", by_invitee
    accepting = await change(server, "acceptBookingRequest", owner.token, id=requested["id"])
    assert accepting["__typename"] == "CalendarInactive", accepting
    rows = {row.id.hex: (row.status, row.start_at) for row in await _bookings(server, owner)}
    assert rows == {  # nothing moved, nothing accepted
        uuid.UUID(booked["id"]).hex: ("CONFIRMED", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        uuid.UUID(requested["id"]).hex: ("REQUESTED", datetime(2026, 12, 1, 11, tzinfo=UTC)),
    }
    await eventually(lambda: _inactive_mail(sink), lambda found: len(found) == 1, "the owner's email")


async def test_a_pending_request_moves_as_a_request_without_an_invitation(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: BOOK-5, BOOK-6, PAGE-4
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    requested = await book(server, "2026-12-01T13:00:00+02:00", request=True, email="rita@example.com")
    await eventually(lambda: _mail_to(sink, "rita@example.com"), lambda found: len(found) == 1, "the request email")

    moved = await change(server, "rescheduleBookingByToken", token=requested["manageToken"], start=at(1, 15))
    assert (moved["__typename"], moved["status"], moved["calendarWrite"]) == ("BookingRequest", "REQUESTED", "NONE")
    mails = await eventually(lambda: _mail_to(sink, "rita@example.com"), lambda found: len(found) == 2, "moved")
    subject = str(mails[-1].message["Subject"])
    assert subject.startswith("Request moved:"), subject
    assert not any(part.get_content_type() == "text/calendar" for part in mails[-1].message.walk())
    assert not any(str(mail.message["Subject"]).startswith("Rescheduled") for mail in sink.messages)
    assert google.events_on(ACCOUNT) == []


async def _mail_to(sink: SmtpSink, address: str) -> list[Any]:
    return [mail for mail in sink.messages if mail.rcpt_tos == [address]]


async def test_a_move_frees_only_the_event_in_place_and_keeps_a_merged_neighbour_busy(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: BOOK-5, BOOK-9, BOOK-3
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    (connection,) = await connections(server, owner.token)
    refresh = server.services.busy_sync.refresh
    booked = await book(server, "2026-12-01T10:00:00+02:00", duration=60)
    await eventually(lambda: booking_row(server, booked["id"]), lambda row: row.calendar_write == "DONE", "written")
    google.add_busy(ACCOUNT, day(1, 11), day(1, 12))  # the owner's own meeting right after (freeBusy merges the two)
    assert await refresh(uuid.UUID(connection["id"]))

    overlapping = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start=at(1, 10, 30))
    assert overlapping["__typename"] == "SlotUnavailable", overlapping  # 11:00-11:30 is the neighbour's
    earlier = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start=at(1, 9, 30))
    assert earlier["__typename"] == "Booking", earlier  # over its own event only

    # The event cannot follow the next move (Google fails), so it stays at 9:30 while the booking is at 14:00.
    google.fail(
        "PATCH /calendar/v3/calendars/",
        status=503,
        body={"error": {"code": 503, "message": "Backend Error"}},
        times=1000,
    )
    moved = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start=at(1, 14))
    assert (moved["__typename"], moved["calendarWrite"]) == ("Booking", "PENDING")
    await eventually(lambda: _patches(google), lambda count: count >= 1, "the refused move of the event")
    google.add_busy(ACCOUNT, day(1, 14), day(1, 15))  # the owner books themselves at 14:00 in Google
    assert await refresh(uuid.UUID(connection["id"]))

    onto = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start=at(1, 14, 30))
    assert onto["__typename"] == "SlotUnavailable", onto  # 14:00-15:00 is not the booking's event: still busy
    assert (await booking_row(server, booked["id"])).start_at == day(1, 14)


async def _patches(google: GoogleDouble) -> int:
    return len(google.requests_to("PATCH /calendar/v3/calendars/"))
