"""A booking follows its event: deleted or moved by the owner in Google, the booking does too.

The server's real Google adapter writes the booking's event to the Google double; the owner
then deletes or moves it there (as in Google Calendar), and the next incremental sync notices.
The invitee's and owner's emails reach a real SMTP sink.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from common.values import CalendarWrite
from db.engine import Database
from db.models import Booking, Calendar, CalendarConnection, OutboxMessage
from providers.base import EventChanges, IncrementalSync
from scheduling import outbox
from scheduling.calendars.event_sync import sync_calendar
from server.settings import Settings
from tests.api.test_known_time import ACCOUNT, day
from tests.doubles.google import GoogleDouble
from tests.support.booking_helpers import NOW, book, change
from tests.support.connect_helpers import (
    booking_row,
    connect_google,
    connections,
    google_with_team,
    owner_allowed_to_connect,
    with_google,
)
from tests.support.live_server import LiveServer, start_live_server
from tests.support.polling import eventually
from tests.support.smtp_sink import SmtpSink

HALF_HOUR = timedelta(minutes=30)


@pytest.fixture
def google() -> Iterator[GoogleDouble]:
    with google_with_team() as double:
        yield double


@pytest.fixture
async def server(settings: Settings, google: GoogleDouble, sink: SmtpSink) -> AsyncIterator[LiveServer]:
    configured = with_google(settings, google).model_copy(update={"smtp_url": sink.url})
    async with start_live_server(configured, clock=lambda: NOW) as live:
        yield live


@dataclass(frozen=True)
class Written:
    booking: dict[str, Any]
    event_id: str
    connection_id: str
    owner_token: str


async def booked_and_written(server: LiveServer, google: GoogleDouble) -> Written:
    """An owner connected to Google and a booking on Tuesday 10:00 whose event is in the calendar."""
    owner = await owner_allowed_to_connect(server)
    await connect_google(server, google, owner, ACCOUNT)
    (connection,) = await connections(server, owner.token)
    booked = await book(server, "2026-12-01T10:00:00+02:00", email="vera@example.com")
    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "written")
    assert row.calendar_event_id is not None
    return Written(booked, row.calendar_event_id, connection["id"], owner.token)


async def sync_and_follow(server: LiveServer, connection_id: str) -> None:
    """The next sync (as a notification or the background pass would run it), then the outbox."""
    assert await server.services.busy_sync.refresh(uuid.UUID(connection_id))
    await server.services.outbox.run_once()


def mail_to(sink: SmtpSink, address: str, subject_start: str) -> list[Any]:
    return [
        mail
        for mail in sink.messages
        if mail.rcpt_tos == [address] and str(mail.message["Subject"]).startswith(subject_start)
    ]


async def test_an_event_deleted_by_the_owner_cancels_the_booking_and_tells_the_invitee(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6, BOOK-5
    written = await booked_and_written(server, google)
    booked, connection_id = written.booking, written.connection_id
    google.delete_event(ACCOUNT, written.event_id)  # the owner deletes it in Google Calendar
    google.clear_requests()
    await sync_and_follow(server, connection_id)

    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.status == "CANCELLED", "cancelled")
    assert row.calendar_write == "NONE"
    await eventually(lambda: mail_to(sink, "vera@example.com", "Cancelled:"), bool, "the invitee's email")
    assert not google.requests_to("DELETE")  # the event is already gone: nothing to delete


async def test_an_event_moved_by_the_owner_moves_the_booking_and_its_link_still_works(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6, BOOK-5
    written = await booked_and_written(server, google)
    booked, connection_id = written.booking, written.connection_id
    google.move_event(ACCOUNT, written.event_id, day(1, 13), day(1, 13) + HALF_HOUR)
    google.clear_requests()
    await sync_and_follow(server, connection_id)

    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.start_at == day(1, 13), "moved")
    assert (row.status, row.calendar_write, row.end_at) == ("CONFIRMED", "DONE", day(1, 13) + HALF_HOUR)
    await eventually(lambda: mail_to(sink, "vera@example.com", "Rescheduled:"), bool, "the invitee's email")
    by_link = await server.graphql("query($t: String!) { booking(token: $t) { start } }", {"t": booked["manageToken"]})
    assert by_link["data"]["booking"]["start"] == "2026-12-01T13:00:00+02:00"
    assert not mail_to(sink, "vera@example.com", "Cancelled:")
    assert not google.requests_to("PATCH")  # the calendar already has it: nothing written back
    assert not [mail for mail in sink.messages if "outside" in str(mail.message["Subject"])]


async def test_an_event_moved_outside_the_pages_hours_keeps_its_time_and_the_owner_is_told(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6
    written = await booked_and_written(server, google)
    booked, connection_id = written.booking, written.connection_id
    google.move_event(ACCOUNT, written.event_id, day(1, 20), day(1, 20) + HALF_HOUR)  # 20:00: the page ends at 17
    await sync_and_follow(server, connection_id)

    row = await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.start_at == day(1, 20), "moved")
    assert row.status == "CONFIRMED"
    owner_mail = await eventually(
        lambda: [mail for mail in sink.messages if "outside your page" in str(mail.message["Subject"])],
        bool,
        "the owner's email",
    )
    assert owner_mail[0].rcpt_tos != ["vera@example.com"]
    await eventually(lambda: mail_to(sink, "vera@example.com", "Rescheduled:"), bool, "the invitee's email")


async def test_our_own_move_does_not_echo_back_as_the_owners(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6, BOOK-5
    written = await booked_and_written(server, google)
    booked, connection_id = written.booking, written.connection_id
    moved = await change(
        server, "rescheduleBooking", written.owner_token, id=booked["id"], start="2026-12-01T14:00:00+02:00"
    )
    assert moved["__typename"] == "Booking"
    await eventually(lambda: booking_row(server, booked["id"]), lambda b: b.calendar_write == "DONE", "patched")
    await sync_and_follow(server, connection_id)
    await server.services.outbox.run_once()

    row = await booking_row(server, booked["id"])
    assert (row.status, row.start_at) == ("CONFIRMED", day(1, 14))
    await eventually(lambda: mail_to(sink, "vera@example.com", "Rescheduled:"), bool, "the invitee's email")
    assert len(mail_to(sink, "vera@example.com", "Rescheduled:")) == 1  # ours alone, not echoed


async def test_an_event_moved_onto_another_booking_keeps_the_booking_and_tells_the_owner(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6, BOOK-3
    written = await booked_and_written(server, google)
    other = await book(server, "2026-12-01T14:00:00+02:00", email="olli@example.com")
    assert other["__typename"] == "Booking"
    google.move_event(ACCOUNT, written.event_id, day(1, 14), day(1, 14) + HALF_HOUR)  # onto Olli's booking
    await sync_and_follow(server, written.connection_id)

    await eventually(
        lambda: [mail for mail in sink.messages if str(mail.message["Subject"]).startswith("Not moved:")],
        bool,
        "the owner's email",
    )
    row = await booking_row(server, written.booking["id"])
    assert (row.status, row.start_at) == ("CONFIRMED", day(1, 10))  # two bookings never hold one time
    assert (await booking_row(server, other["id"])).start_at == day(1, 14)
    assert not mail_to(sink, "vera@example.com", "Rescheduled:")


async def test_an_event_deleted_while_the_token_was_forgotten_is_seen_in_the_full_round(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6, SYNC-5
    written = await booked_and_written(server, google)
    google.delete_event(ACCOUNT, written.event_id)
    google.invalidate_sync_tokens(ACCOUNT)  # the next round lists every event again
    await sync_and_follow(server, written.connection_id)

    await eventually(lambda: booking_row(server, written.booking["id"]), lambda b: b.status == "CANCELLED", "cancelled")
    await eventually(lambda: mail_to(sink, "vera@example.com", "Cancelled:"), bool, "the invitee's email")


async def test_an_event_moved_while_the_token_was_forgotten_is_followed_from_the_full_round(
    server: LiveServer, google: GoogleDouble
) -> None:
    # covers: SYNC-6, SYNC-5
    written = await booked_and_written(server, google)
    google.move_event(ACCOUNT, written.event_id, day(1, 13), day(1, 13) + HALF_HOUR)
    google.invalidate_sync_tokens(ACCOUNT)
    await sync_and_follow(server, written.connection_id)

    row = await eventually(
        lambda: booking_row(server, written.booking["id"]), lambda b: b.start_at == day(1, 13), "moved"
    )
    assert row.status == "CONFIRMED"


class _ListedBeforeTheWrite:
    """A full listing made just before the booking's event was written, the write landing meanwhile."""

    def __init__(self, client: IncrementalSync, db: Database, booking_id: uuid.UUID, event_id: str) -> None:
        self._client, self._db, self._booking_id, self._event_id = client, db, booking_id, event_id

    async def list_changes(
        self, calendar_id: str, *, sync_token: str | None, start: datetime, end: datetime
    ) -> EventChanges:
        listed = await self._client.list_changes(calendar_id, sync_token=None, start=start, end=end)
        async with self._db.transaction() as session:
            await session.exec(
                update(Booking).where(col(Booking.id) == self._booking_id).values(calendar_write=CalendarWrite.DONE)
            )
        without = tuple(event for event in listed.changed if event.event_id != self._event_id)
        return dataclasses.replace(listed, changed=without)


@pytest.mark.parametrize("written_before_the_round", [True, False])
async def test_a_full_round_cancels_only_bookings_whose_event_was_written_before_it_asked(
    server: LiveServer, google: GoogleDouble, written_before_the_round: bool
) -> None:
    # covers: SYNC-6, BOOK-5
    written = await booked_and_written(server, google)
    booking_id = uuid.UUID(written.booking["id"])
    db = server.services.db
    async with db.transaction() as session:
        if not written_before_the_round:  # the write was still under way when the round began
            await session.exec(
                update(Booking).where(col(Booking.id) == booking_id).values(calendar_write=CalendarWrite.PENDING)
            )
        connection = await session.get(CalendarConnection, uuid.UUID(written.connection_id))
        booking = await session.get(Booking, booking_id)
        assert connection is not None
        assert booking is not None
        calendar = await session.get(Calendar, booking.calendar_event_calendar_id)
        assert calendar is not None
    async with server.services.busy_sync.access.client(connection) as client:
        assert isinstance(client, IncrementalSync)
        listing = _ListedBeforeTheWrite(client, db, booking_id, written.event_id)
        await sync_calendar(db, listing, calendar, start=NOW - timedelta(days=1), end=NOW + timedelta(days=60), now=NOW)

    async with db.session() as session:
        follows = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.kind == outbox.BOOKING_FOLLOW_CALENDAR))
        ).all()
    assert [message.payload["deleted"] for message in follows] == ([True] if written_before_the_round else [])


async def test_a_notice_seen_before_our_own_move_does_not_move_the_booking_back(
    server: LiveServer, google: GoogleDouble, sink: SmtpSink
) -> None:
    # covers: SYNC-6, BOOK-5
    written = await booked_and_written(server, google)
    booking_id = written.booking["id"]
    moved = await change(
        server, "rescheduleBooking", written.owner_token, id=booking_id, start="2026-12-01T14:00:00+02:00"
    )
    assert moved["__typename"] == "Booking"
    await eventually(lambda: booking_row(server, booking_id), lambda b: b.calendar_write == "DONE", "patched")
    # The owner's move to 13:00, seen by a sync while the booking was still at 10:00, is handled late.
    late = {
        "booking_id": uuid.UUID(booking_id).hex,
        "deleted": False,
        "seen_start": day(1, 10).isoformat(),
        "seen_end": (day(1, 10) + HALF_HOUR).isoformat(),
        "start": day(1, 13).isoformat(),
        "end": (day(1, 13) + HALF_HOUR).isoformat(),
    }
    async with server.services.db.transaction() as session:
        session.add(OutboxMessage(kind=outbox.BOOKING_FOLLOW_CALENDAR, payload=late, available_at=NOW))
    await server.services.outbox.run_once()

    row = await booking_row(server, booking_id)
    assert (row.status, row.start_at, row.calendar_write) == ("CONFIRMED", day(1, 14), "DONE")
    (event,) = [event for event in google.events_on(ACCOUNT) if event["id"] == written.event_id]
    assert datetime.fromisoformat(event["start"]["dateTime"]) == day(1, 14)  # the calendar has our time
    assert not [mail for mail in sink.messages if "13:00" in str(mail.message)]  # nobody told of 13:00
