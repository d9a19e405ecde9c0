"""Slots and bookings over real HTTP, on SQLite and PostgreSQL, with a fixed clock."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from db.models import Booking, BusyInterval, Contact, OutboxMessage
from scheduling import outbox
from server.settings import Settings
from tests.support.booking_helpers import (
    NOW,
    book,
    booking_server,
    change,
    manage_token_of,
    owner_with_page,
    slots,
)
from tests.support.calendar_rows import connect_calendar, mark_inactive
from tests.support.live_server import LiveServer, start_live_server

TUESDAY = "2026-12-01T00:00:00+02:00"
WEDNESDAY = "2026-12-02T00:00:00+02:00"


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async for live in booking_server(settings):
        yield live


async def stored_bookings(server: LiveServer) -> list[Booking]:
    async with server.services.db.session() as session:
        return list((await session.exec(select(Booking))).all())


async def test_slots_follow_weekly_hours_in_the_visitors_zone(server: LiveServer) -> None:
    # covers: BOOK-1
    await owner_with_page(server)
    helsinki = await slots(server, TUESDAY, WEDNESDAY)
    assert helsinki[0] == "2026-12-01T09:00:00+02:00"
    assert helsinki[-1] == "2026-12-01T16:30:00+02:00"
    assert len(helsinki) == 16
    new_york = await slots(server, TUESDAY, WEDNESDAY, timezone="America/New_York")
    assert new_york[0] == "2026-12-01T02:00:00-05:00"
    assert len(new_york) == 16
    assert await slots(server, TUESDAY, WEDNESDAY, duration=60) == helsinki[:-1]


async def test_busy_time_and_bookings_remove_slots(server: LiveServer) -> None:
    # covers: BOOK-1
    owner = await owner_with_page(server)
    busy = (datetime(2026, 12, 1, 8, 0, tzinfo=UTC), datetime(2026, 12, 1, 9, 0, tzinfo=UTC))  # 10-11 Helsinki
    await connect_calendar(server.services, owner.user, busy=[busy])
    free = await slots(server, TUESDAY, WEDNESDAY)
    assert "2026-12-01T10:00:00+02:00" not in free
    assert "2026-12-01T10:30:00+02:00" not in free
    assert "2026-12-01T11:00:00+02:00" in free
    booked = await book(server, "2026-12-01T11:00:00+02:00")
    assert booked["__typename"] == "Booking"
    assert "2026-12-01T11:00:00+02:00" not in await slots(server, TUESDAY, WEDNESDAY)


async def test_book_a_slot(server: LiveServer) -> None:
    # covers: BOOK-2, SYNC-1
    owner = await owner_with_page(server)
    booked = await book(server, "2026-12-01T09:00:00+02:00", duration=60)
    assert booked["__typename"] == "Booking"
    assert booked["status"] == "CONFIRMED"
    assert (booked["start"], booked["end"]) == ("2026-12-01T09:00:00+02:00", "2026-12-01T10:00:00+02:00")
    assert booked["calendarWrite"] == "PENDING"
    assert booked["inviteeEmail"] == "visitor@example.com"
    rows = await stored_bookings(server)
    assert [(row.start_at, row.owner_id) for row in rows] == [(datetime(2026, 12, 1, 7, tzinfo=UTC), owner.user.id)]
    async with server.services.db.session() as session:
        kinds = sorted(row.kind for row in (await session.exec(select(OutboxMessage))).all())
        contacts = (await session.exec(select(Contact))).all()
    assert kinds == sorted(
        [outbox.CALENDAR_CREATE_EVENT, outbox.EMAIL_BOOKING_CONFIRMED, outbox.EMAIL_OWNER_NEW_BOOKING]
    )
    assert [(contact.email, contact.name) for contact in contacts] == [("visitor@example.com", "Vera Visitor")]


@pytest.mark.parametrize(
    ("start", "why"),
    [
        ("2026-12-01T08:30:00+02:00", "before hours"),
        ("2026-12-01T16:45:00+02:00", "runs past closing"),
        ("2026-12-01T09:10:00+02:00", "off the 30-minute grid"),
        ("2026-12-02T10:00:00+02:00", "Wednesday is closed"),
        ("2026-11-30T07:00:00+02:00", "in the past"),
        ("2027-06-01T10:00:00+03:00", "beyond the horizon"),
    ],
)
async def test_unbookable_times_are_refused_with_alternatives(server: LiveServer, start: str, why: str) -> None:
    # covers: BOOK-1, BOOK-3
    await owner_with_page(server)
    refused = await book(server, start)
    assert refused["__typename"] == "SlotUnavailable", why
    assert len(refused["alternatives"]) <= 3
    assert await stored_bookings(server) == []


async def test_fifty_concurrent_bookings_of_one_slot_have_one_winner(server: LiveServer) -> None:
    # covers: BOOK-3
    await owner_with_page(server)
    results = await asyncio.gather(
        *(book(server, "2026-12-01T10:00:00+02:00", email=f"v{index}@example.com") for index in range(50))
    )
    kinds = Counter(result["__typename"] for result in results)
    assert kinds == {"Booking": 1, "SlotUnavailable": 49}
    assert len(await stored_bookings(server)) == 1
    for result in results:
        if result["__typename"] == "SlotUnavailable":
            assert "2026-12-01T10:00:00+02:00" not in [slot["start"] for slot in result["alternatives"]]
            assert len(result["alternatives"]) == 3


async def test_overlapping_different_starts_are_refused(server: LiveServer) -> None:
    # covers: BOOK-3
    await owner_with_page(server)
    starts = ["2026-12-01T10:00:00+02:00", "2026-12-01T10:30:00+02:00", "2026-12-01T09:30:00+02:00"]
    results = await asyncio.gather(
        *(book(server, start, duration=60, email=f"v{index}@example.com") for index, start in enumerate(starts))
    )
    winners = [result for result in results if result["__typename"] == "Booking"]
    assert len(winners) in (1, 2)
    rows = sorted(await stored_bookings(server), key=lambda row: row.start_at)
    for first, second in itertools.pairwise(rows):
        assert first.end_at <= second.start_at


async def test_idempotency_key_returns_the_first_result(server: LiveServer) -> None:
    # covers: BOOK-4
    await owner_with_page(server)
    first = await book(server, "2026-12-01T10:00:00+02:00", idempotencyKey="abc-123")
    again = await book(server, "2026-12-01T10:00:00+02:00", idempotencyKey="abc-123")
    assert first["__typename"] == again["__typename"] == "Booking"
    assert again["id"] == first["id"]
    other = await book(server, "2026-12-01T11:00:00+02:00", idempotencyKey="abc-123")
    assert (other["__typename"], other["field"]) == ("InvalidInput", "idempotencyKey")
    assert len(await stored_bookings(server)) == 1
    concurrent = await asyncio.gather(
        *(book(server, "2026-12-01T13:00:00+02:00", idempotencyKey="same-key") for _ in range(10))
    )
    assert len({result.get("id") for result in concurrent}) == 1
    assert len(await stored_bookings(server)) == 2


async def test_a_retry_after_the_page_came_online_gets_the_first_result(server: LiveServer) -> None:
    # covers: BOOK-4, PAGE-4
    owner = await owner_with_page(server, online=False)
    first = await book(server, "2026-12-01T10:00:00+02:00", idempotencyKey="retry-1")
    assert first["__typename"] == "BookingRequest"
    await connect_calendar(server.services, owner.user)  # the page is online now
    again = await book(server, "2026-12-01T10:00:00+02:00", idempotencyKey="retry-1")
    assert (again["__typename"], again["id"]) == ("BookingRequest", first["id"])
    explicit = await book(server, "2026-12-01T10:00:00+02:00", request=True, idempotencyKey="retry-1")
    assert (explicit["__typename"], explicit["field"]) == ("InvalidInput", "idempotencyKey")  # another call
    assert len(await stored_bookings(server)) == 1


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"duration": 45}, "duration"),
        ({"invitee": {"name": "", "email": "a@example.com"}}, "invitee.name"),
        ({"invitee": {"name": "Eve\r\nBcc: x@evil.example", "email": "a@example.com"}}, "invitee.name"),
        ({"invitee": {"name": "Eve", "email": "not-an-email"}}, "invitee.email"),
        ({"idempotencyKey": "has spaces"}, "idempotencyKey"),
        ({"answers": [{"key": "nope", "value": "x"}]}, "answers"),
    ],
)
async def test_bad_booking_input_is_refused_and_stores_nothing(server: LiveServer, extra: dict, field: str) -> None:
    # covers: BOOK-2
    await owner_with_page(server)
    refused = await book(server, "2026-12-01T10:00:00+02:00", **extra)
    assert (refused["__typename"], refused["field"]) == ("InvalidInput", field)
    assert await stored_bookings(server) == []


async def test_required_form_fields_and_unknown_pages(server: LiveServer) -> None:
    # covers: BOOK-2, PAGE-2
    await owner_with_page(server, formFields=[{"key": "company", "label": "Company", "required": True}])
    missing = await book(server, "2026-12-01T10:00:00+02:00")
    assert (missing["__typename"], missing["field"]) == ("InvalidInput", "answers")
    answered = await book(server, "2026-12-01T10:00:00+02:00", answers=[{"key": "company", "value": "Acme"}])
    assert answered["__typename"] == "Booking"
    unknown = await book(server, "2026-12-01T10:00:00+02:00", slug="nope")
    assert unknown["__typename"] == "PageNotFound"
    naive = await server.graphql(
        'mutation($s: DateTime!) { bookMeeting(input: {slug: "intro", start: $s, timezone: "UTC", '
        'invitee: {name: "A", email: "a@example.com"}}) { __typename } }',
        {"s": "2026-12-01T10:00:00"},
    )
    assert "naive date-times are refused" in str(naive["errors"])
    for far in ("9999-12-31T23:45:00+00:00", "0001-01-01T00:30:00+01:00"):
        refused = await server.graphql(
            'mutation($s: DateTime!) { bookMeeting(input: {slug: "intro", start: $s, timezone: "UTC", '
            'invitee: {name: "A", email: "a@example.com"}}) { __typename } }',
            {"s": far},
        )
        assert "is outside the years 1970 to 9000" in str(refused["errors"]), refused
    booked = await book(server, "2026-12-01T11:00:00+02:00", answers=[{"key": "company", "value": "Acme"}])
    far_move = await server.graphql(
        "mutation($t: String!, $s: DateTime!) { rescheduleBookingByToken(token: $t, start: $s) { __typename } }",
        {"t": booked["manageToken"], "s": "9999-12-31T23:45:00+00:00"},
    )
    assert "is outside the years 1970 to 9000" in str(far_move["errors"]), far_move


async def test_offline_page_takes_requests_the_owner_accepts_later(server: LiveServer) -> None:
    # covers: PAGE-4, BOOK-6
    owner = await owner_with_page(server, online=False)
    requested = await book(server, "2026-12-01T10:00:00+02:00")
    assert (requested["__typename"], requested["status"], requested["calendarWrite"]) == (
        "BookingRequest",
        "REQUESTED",
        "NONE",
    )
    assert "2026-12-01T10:00:00+02:00" not in await slots(server, TUESDAY, WEDNESDAY)
    listed = await server.graphql("{ me { bookings(status: REQUESTED) { id } } }", token=owner.token)
    assert listed["data"]["me"]["bookings"] == [{"id": requested["id"]}]

    too_early = await change(server, "acceptBookingRequest", owner.token, id=requested["id"])
    assert too_early["__typename"] == "InvalidInput"
    await connect_calendar(server.services, owner.user)
    accepted = await change(server, "acceptBookingRequest", owner.token, id=requested["id"])
    assert (accepted["__typename"], accepted["status"], accepted["calendarWrite"]) == (
        "Booking",
        "CONFIRMED",
        "PENDING",
    )
    async with server.services.db.session() as session:
        writes = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.kind == outbox.CALENDAR_CREATE_EVENT))
        ).all()
    assert len(writes) == 1

    second = await book(server, "2026-12-01T11:00:00+02:00", request=True)
    assert second["__typename"] == "BookingRequest"
    declined = await change(server, "declineBookingRequest", owner.token, id=second["id"])
    assert (declined["__typename"], declined["status"]) == ("BookingRequest", "DECLINED")
    assert "2026-12-01T11:00:00+02:00" in await slots(server, TUESDAY, WEDNESDAY)


async def test_cancel_and_reschedule_by_owner_and_by_link(server: LiveServer) -> None:
    # covers: BOOK-5
    owner = await owner_with_page(server)
    booked = await book(server, "2026-12-01T10:00:00+02:00")
    moved = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start="2026-12-01T14:00:00+02:00")
    assert (moved["__typename"], moved["start"]) == ("Booking", "2026-12-01T14:00:00+02:00")
    free = await slots(server, TUESDAY, WEDNESDAY)
    assert "2026-12-01T10:00:00+02:00" in free
    assert "2026-12-01T14:00:00+02:00" not in free

    retired = await server.graphql("query($t: String!) { booking(token: $t) { id } }", {"t": booked["manageToken"]})
    assert retired["data"]["booking"] is None  # the reschedule issued a new link
    token = await manage_token_of(server, owner.token, booked["id"])
    by_link = await server.graphql("query($t: String!) { booking(token: $t) { id start } }", {"t": token})
    assert by_link["data"]["booking"] == {"id": booked["id"], "start": "2026-12-01T14:00:00+02:00"}
    blocked = await book(server, "2026-12-01T15:00:00+02:00", email="other@example.com")
    assert blocked["__typename"] == "Booking"
    taken = await change(server, "rescheduleBookingByToken", token=token, start="2026-12-01T15:00:00+02:00")
    assert taken["__typename"] == "SlotUnavailable"
    cancelled = await change(server, "cancelBookingByToken", token=token)
    assert (cancelled["__typename"], cancelled["status"]) == ("Booking", "CANCELLED")
    assert "2026-12-01T14:00:00+02:00" in await slots(server, TUESDAY, WEDNESDAY)
    again = await change(server, "cancelBookingByToken", token=token)
    assert again["__typename"] == "InvalidInput"
    forged = await change(server, "cancelBookingByToken", token=token[:-2] + "xx")
    assert forged["__typename"] == "NotFound"


async def test_alternatives_to_a_taken_time_are_shown_in_the_invitees_zone(server: LiveServer) -> None:
    # covers: BOOK-3, BOOK-5
    owner = await owner_with_page(server)
    booked = await book(server, "2026-12-01T10:00:00+02:00", timezone="America/New_York")
    assert (await book(server, "2026-12-01T15:00:00+02:00", email="other@example.com"))["__typename"] == "Booking"
    by_owner = await change(
        server, "rescheduleBooking", owner.token, id=booked["id"], start="2026-12-01T15:00:00+02:00"
    )
    by_link = await change(
        server, "rescheduleBookingByToken", token=booked["manageToken"], start="2026-12-01T13:00:00Z"
    )
    for taken in (by_owner, by_link):
        assert taken["__typename"] == "SlotUnavailable", taken
        starts = [slot["start"] for slot in taken["alternatives"]]
        assert starts, taken  # the nearest free times, as the invitee reads them
        assert all(start.endswith("-05:00") for start in starts), starts
        assert "2026-12-01T08:00:00-05:00" not in starts  # the taken time itself is not offered


async def test_other_owners_cannot_touch_a_booking(server: LiveServer) -> None:
    # covers: BOOK-5
    await owner_with_page(server)
    stranger = await owner_with_page(server, slug="stranger")
    booked = await book(server, "2026-12-01T10:00:00+02:00")
    for mutation in ("cancelBooking", "acceptBookingRequest", "declineBookingRequest"):
        attempt = await change(server, mutation, stranger.token, id=booked["id"])
        assert attempt["__typename"] == "NotFound", mutation
    rows = await stored_bookings(server)
    assert [row.status for row in rows] == ["CONFIRMED"]
    anonymous = await server.graphql(f'mutation {{ cancelBooking(id: "{booked["id"]}") {{ __typename }} }}')
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_inactive_calendar_stops_booking(server: LiveServer) -> None:
    # covers: INACT-2
    owner = await owner_with_page(server)
    calendar_id = (await connect_calendar(server.services, owner.user)).calendar_id
    assert calendar_id is not None
    await mark_inactive(server.services, owner.user, calendar_id)
    refused = await book(server, "2026-12-01T10:00:00+02:00")
    assert refused["__typename"] == "CalendarInactive"
    assert await stored_bookings(server) == []


async def test_slots_window_is_validated(server: LiveServer) -> None:
    # covers: BOOK-1
    await owner_with_page(server)
    result = await server.graphql(
        '{ schedulingPage(slug: "intro") { slots(start: "2026-12-02T00:00:00Z", end: "2026-12-01T00:00:00Z", '
        'timezone: "UTC") { asOf } } }'
    )
    assert result["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert NOW.tzinfo is UTC


async def _add_busy(server: LiveServer, calendar_id: uuid.UUID | None, start: datetime, end: datetime) -> None:
    assert calendar_id is not None
    async with server.services.db.transaction() as session:
        session.add(BusyInterval(calendar_id=calendar_id, start_at=start, end_at=end))


async def test_a_move_keeps_clear_of_calendar_events_overlapping_where_it_is(server: LiveServer) -> None:
    # covers: BOOK-5
    owner = await owner_with_page(server, online=False)
    calendar = await connect_calendar(server.services, owner.user)
    booked = await book(server, "2026-12-01T10:00:00+02:00", duration=60)
    assert booked["__typename"] == "Booking"
    # A real meeting appears in the second half of the booking's hour (the booking's own event was
    # never written, so none of this busy time is the booking's).
    await _add_busy(
        server, calendar.calendar_id, datetime(2026, 12, 1, 8, 30, tzinfo=UTC), datetime(2026, 12, 1, 9, tzinfo=UTC)
    )

    onto = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start="2026-12-01T10:30:00+02:00")
    assert onto["__typename"] == "SlotUnavailable"
    later = await change(server, "rescheduleBooking", owner.token, id=booked["id"], start="2026-12-01T11:00:00+02:00")
    assert (later["__typename"], later["start"]) == ("Booking", "2026-12-01T11:00:00+02:00")


async def test_a_request_is_accepted_days_later_but_not_after_its_time(settings: Settings) -> None:
    # covers: BOOK-6, PAGE-4
    now = [NOW]
    async with start_live_server(settings, clock=lambda: now[0]) as server:
        owner = await owner_with_page(server, online=False, minimumNoticeMinutes=24 * 60)
        requested = await book(server, "2026-12-01T10:00:00+02:00")  # 26 hours ahead: notice kept
        late = await book(server, "2026-12-01T12:00:00+02:00", email="late@example.com")
        await connect_calendar(server.services, owner.user)

        now[0] = NOW + timedelta(hours=3)  # the owner answers when less than a day is left
        accepted = await change(server, "acceptBookingRequest", owner.token, id=requested["id"])
        assert (accepted["__typename"], accepted["status"]) == ("Booking", "CONFIRMED")

        now[0] = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)  # 12:30 in Helsinki: the time has passed
        passed = await change(server, "acceptBookingRequest", owner.token, id=late["id"])
        assert passed == {
            "__typename": "InvalidInput",
            "message": "the requested time has already passed",
            "field": None,
        }
