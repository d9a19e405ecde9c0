"""What one booking asks of the database: the owner's calendars once, the outbox rows in one INSERT.

A booking used to read the owner's calendars four times in four shapes and to open a read
session per check; these tests hold the leaner path in place on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import select

from common.values import CalendarStatus
from db.models import Booking, CalendarConnection, OutboxMessage
from db.plain import watched
from scheduling import outbox
from scheduling.calendars.busy_check import owner_calendars
from scheduling.pages.availability import AvailabilityService
from server.settings import Settings
from tests.support.booking_helpers import book, booking_server, owner_with_page
from tests.support.calendar_rows import connect_calendar, mark_inactive
from tests.support.live_server import LiveServer
from tests.support.owners import make_owner

TUESDAY_1000 = "2026-12-01T10:00:00+02:00"


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    async for live in booking_server(settings):
        yield live


@contextmanager
def recorded(server: LiveServer) -> Iterator[tuple[list[str], list[int]]]:
    """The statements the server runs meanwhile (through SQLAlchemy or on the driver), and how
    many transactions SQLAlchemy begins."""
    engine = server.services.db.engine.sync_engine
    statements: list[str] = []
    begun: list[int] = []

    def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        statements.append(" ".join(text.split()))

    def on_the_driver(text: str, _seconds: float) -> None:
        statements.append(" ".join(text.split()))

    def begin(_conn: Any) -> None:
        begun.append(1)

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "begin", begin)
    try:
        with watched(on_the_driver):
            yield statements, begun
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", begin)


async def test_a_booking_reads_the_calendars_once_and_writes_its_outbox_rows_at_once(server: LiveServer) -> None:
    # covers: BOOK-1
    owner = await owner_with_page(server)
    with recorded(server) as (statements, begun):
        booked = await book(server, TUESDAY_1000)
    assert booked["__typename"] == "Booking", booked

    # The page's online state, the inactive-calendar check and the live check share one read.
    assert len([text for text in statements if "calendar_connections.credentials" in text]) == 1
    # The slot check takes the calendars' cache state from that read instead of reading it again.
    assert not [text for text in statements if text.startswith("SELECT calendars.status")]
    assert len([text for text in statements if text.startswith("INSERT INTO outbox")]) == 1
    # A new booker becomes a contact in one statement; an existing one is read only then.
    assert len([text for text in statements if "contacts" in text.split(" VALUES")[0]]) == 1
    # The page lookup and the checks read without a transaction; the write is the one transaction.
    assert [text for text in statements if text.startswith(("BEGIN", "COMMIT", "ROLLBACK"))] == [
        "BEGIN IMMEDIATE" if server.services.db.is_sqlite else "BEGIN",
        "COMMIT",
    ]
    assert not begun  # nothing of a booking runs through an ORM session
    async with server.services.db.session() as session:
        (booking,) = (await session.exec(select(Booking).where(Booking.owner_id == owner.user.id))).all()
        rows = (await session.exec(select(OutboxMessage))).all()
    kinds = [row.kind for row in rows if row.payload.get("booking_id") == booking.id.hex]
    assert sorted(kinds) == sorted(outbox.kinds_for_new_booking(confirmed=True))


async def test_the_owners_calendars_as_one_booking_needs_them(server: LiveServer) -> None:
    # covers: BOOK-1, INACT-1
    services = server.services
    user, _ = await make_owner(services, "calendars@example.com")

    async def read() -> Any:
        async with services.db.plain() as plain:
            return await owner_calendars(plain, user.id)

    nothing = await read()
    assert (nothing.online, nothing.inactive, nothing.to_ask, nothing.integrated) == (False, False, (), ())

    connected = await connect_calendar(services, user)
    assert connected.calendar_id is not None
    unsealed = await read()  # no credentials: nothing to ask
    assert (unsealed.online, unsealed.inactive, unsealed.to_ask) == (True, False, ())

    async with services.db.transaction() as session:
        connection = await session.get(CalendarConnection, connected.connection_id)
        assert connection is not None
        connection.credentials = b"sealed"
        session.add(connection)
    sealed = await read()
    ((asked, calendars),) = sealed.to_ask
    assert (asked.id, asked.user_id, asked.credentials) == (connected.connection_id, user.id, b"sealed")
    assert [calendar.id for calendar in calendars] == [connected.calendar_id]

    await mark_inactive(services, user, connected.calendar_id)
    inactive = await read()
    assert (inactive.online, inactive.inactive, inactive.to_ask) == (True, True, ())
    # The cache state of every integrated calendar, inactive ones too, as the slot check reads it.
    assert [calendar.status for calendar in unsealed.integrated] == [CalendarStatus.ACTIVE]
    assert [calendar.status for calendar in inactive.integrated] == [CalendarStatus.INACTIVE]
    now = datetime.now(UTC)
    async with services.db.plain() as plain:
        read_here = await AvailabilityService.busy_time(
            plain, user.id, now, now + timedelta(days=1), now, requests_since=now
        )
        passed_in = await AvailabilityService.busy_time(
            plain, user.id, now, now + timedelta(days=1), now, requests_since=now, calendars=inactive.integrated
        )
    assert passed_in == read_here
