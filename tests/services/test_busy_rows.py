"""Busy time read as integer microseconds by the database is exactly the stored time.

The slot path reads busy rows as numbers computed in SQL (``db.epoch``) instead of datetimes; on
SQLite that means parsing the stored text, on PostgreSQL ``timestamptz``. These tests write rows
through the ORM, as the sync and bookings do, and check every number and every rule of
``AvailabilityService.busy_time`` (integrated and inactive calendars, bookings that hold time,
expired requests) on both databases.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import column, select, table
from sqlalchemy.dialects import sqlite
from sqlmodel import col

from common.values import BookingStatus, CalendarProvider, CalendarStatus
from db.engine import Database
from db.epoch import epoch_micros
from db.models import Booking, BusyInterval, Calendar, CalendarConnection, SchedulingPage, User
from db.plain import SessionRows
from scheduling.engine import Interval, subtract
from scheduling.engine.epoch import from_micros, to_micros
from scheduling.pages.availability import AvailabilityService, BusyTime

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=24)
WINDOW = (datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 9, tzinfo=UTC))
EDGES = [
    datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
    datetime(2026, 12, 3, 9, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 12, 3, 9, 0, 59, 999_999, tzinfo=UTC),
    datetime(2026, 12, 3, 9, 30, 0, 500_000, tzinfo=UTC),
    datetime(2026, 12, 4, 1, 30, 15, 123_456, tzinfo=ZoneInfo("America/New_York")),  # stored as UTC
    datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2099, 6, 30, 23, 59, 59, tzinfo=UTC),
]


@dataclass(frozen=True)
class Owner:
    id: uuid.UUID
    page_id: uuid.UUID
    calendar_ids: list[uuid.UUID]  # integrated: active, then inactive
    hidden_calendar_id: uuid.UUID  # not integrated: its busy time never counts


async def make_owner(db: Database) -> Owner:
    async with db.transaction() as session:
        user = User(email=f"o-{uuid.uuid4().hex[:8]}@example.com", name="Owner", timezone="Europe/Helsinki")
        session.add(user)
        await session.flush()
        page = SchedulingPage(
            owner_id=user.id, slug=f"p-{uuid.uuid4().hex[:8]}", name="Intro", timezone="Europe/Helsinki"
        )
        connection = CalendarConnection(user_id=user.id, provider=CalendarProvider.GOOGLE, account_email=user.email)
        session.add_all([page, connection])
        await session.flush()
        calendars = [
            Calendar(
                connection_id=connection.id,
                external_id=name,
                integrated=integrated,
                status=status,
                covered_from=datetime(2026, 1, 1, tzinfo=UTC),
                covered_until=datetime(2027, 6, 1, tzinfo=UTC),
            )
            for name, integrated, status in [
                ("work", True, CalendarStatus.ACTIVE),
                ("lost", True, CalendarStatus.INACTIVE),
                ("hidden", False, CalendarStatus.ACTIVE),
            ]
        ]
        session.add_all(calendars)
        await session.flush()
        return Owner(user.id, page.id, [calendars[0].id, calendars[1].id], calendars[2].id)


async def add_busy(db: Database, calendar_id: uuid.UUID, spans: list[tuple[datetime, datetime]]) -> None:
    async with db.transaction() as session:
        session.add_all(BusyInterval(calendar_id=calendar_id, start_at=start, end_at=end) for start, end in spans)


async def add_booking(
    db: Database, owner: Owner, start: datetime, minutes: int, status: BookingStatus, created_at: datetime = NOW
) -> uuid.UUID:
    async with db.transaction() as session:
        booking = Booking(
            owner_id=owner.id,
            page_id=owner.page_id,
            start_at=start,
            end_at=start + timedelta(minutes=minutes),
            status=status,
            invitee_name="Visitor",
            invitee_email="visitor@example.com",
            invitee_timezone="Europe/Helsinki",
            created_at=created_at,
        )
        session.add(booking)
        await session.flush()
        return booking.id


async def busy_time(db: Database, owner: Owner) -> BusyTime:
    """Read on the driver (as slots and bookings read it); the same read in an ORM session (as a
    move reads it, inside its transaction) must find the same."""
    async with db.plain() as plain:
        on_the_driver = await AvailabilityService.busy_time(plain, owner.id, *WINDOW, NOW, requests_since=NOW - TTL)
    async with db.session() as session:
        in_a_session = await AvailabilityService.busy_time(
            SessionRows(session), owner.id, *WINDOW, NOW, requests_since=NOW - TTL
        )
    assert in_a_session == on_the_driver
    return on_the_driver


async def test_stored_times_read_as_exact_microseconds(db: Database) -> None:
    # covers: BOOK-1
    owner = await make_owner(db)
    await add_busy(db, owner.calendar_ids[0], [(edge, edge + timedelta(microseconds=1)) for edge in EDGES])
    columns = (
        col(BusyInterval.start_at),
        epoch_micros(col(BusyInterval.start_at)),
        epoch_micros(col(BusyInterval.end_at)),
    )
    async with db.session() as session:
        rows = (await (await session.connection()).execute(select(*columns))).all()
    assert sorted((to_micros(stored), start, end) for stored, start, end in rows) == sorted(
        (to_micros(edge), to_micros(edge), to_micros(edge) + 1) for edge in EDGES
    )
    assert all(from_micros(to_micros(edge)) == edge for edge in EDGES)


async def test_busy_time_counts_integrated_calendars_and_bookings_holding_time(db: Database) -> None:
    # covers: BOOK-1, BOOK-8
    owner = await make_owner(db)
    inside = [(edge, edge + timedelta(minutes=45)) for edge in EDGES[:5]]
    outside = [(WINDOW[1], WINDOW[1] + timedelta(hours=1)), (WINDOW[0] - timedelta(hours=1), WINDOW[0])]
    await add_busy(db, owner.calendar_ids[0], [*inside[:3], *outside])
    await add_busy(db, owner.calendar_ids[1], inside[3:])
    await add_busy(db, owner.hidden_calendar_id, [(EDGES[0], EDGES[0] + timedelta(hours=2))])
    day = datetime(2026, 12, 5, 8, 0, 0, 250_000, tzinfo=UTC)
    confirmed = await add_booking(db, owner, day, 30, BookingStatus.CONFIRMED)
    requested_at = NOW - timedelta(hours=2, microseconds=7)
    requested = await add_booking(db, owner, day + timedelta(hours=1), 60, BookingStatus.REQUESTED, requested_at)
    await add_booking(db, owner, day + timedelta(hours=3), 30, BookingStatus.REQUESTED, NOW - TTL - timedelta(1))
    await add_booking(db, owner, day + timedelta(hours=4), 30, BookingStatus.CANCELLED)
    await add_booking(db, owner, WINDOW[1], 30, BookingStatus.CONFIRMED)

    busy = await busy_time(db, owner)

    assert sorted(busy.calendars) == sorted((to_micros(start), to_micros(end)) for start, end in inside)
    assert sorted(busy.bookings) == sorted(
        [
            (to_micros(day), to_micros(day + timedelta(minutes=30)), confirmed),
            (to_micros(day + timedelta(hours=1)), to_micros(day + timedelta(hours=2)), requested),
        ]
    )
    assert busy.released_at == requested_at + TTL
    assert busy.inactive
    assert busy.known is not None
    assert busy.known.covers(*WINDOW)


async def test_freeing_a_booking_and_its_event_matches_interval_arithmetic(db: Database) -> None:
    # covers: BOOK-1
    owner = await make_owner(db)
    start = datetime(2026, 12, 3, 10, 0, 0, 1, tzinfo=UTC)
    event = (start - timedelta(minutes=10), start + timedelta(minutes=50, microseconds=3))
    await add_busy(db, owner.calendar_ids[0], [event, (start + timedelta(hours=2), start + timedelta(hours=3))])
    moving = await add_booking(db, owner, start, 30, BookingStatus.CONFIRMED)
    await add_booking(db, owner, start + timedelta(minutes=40), 30, BookingStatus.CONFIRMED)
    busy = await busy_time(db, owner)

    def as_micros(intervals: list[Interval]) -> list[tuple[int, int]]:
        return sorted((to_micros(interval.start), to_micros(interval.end)) for interval in intervals)

    calendars = [Interval(*event), Interval(start + timedelta(hours=2), start + timedelta(hours=3))]
    own = [Interval(start, start + timedelta(minutes=30))]
    kept = [Interval(start + timedelta(minutes=40), start + timedelta(minutes=70))]
    assert sorted(busy.without(moving, own_event=True).spans) == as_micros([*subtract(calendars, own), *kept])
    assert sorted(busy.without(moving).spans) == as_micros([*calendars, *kept])
    assert sorted(busy.without(None).spans) == as_micros([*calendars, *own, *kept])


@pytest.mark.parametrize("version", [(3, 37, 2), (3, 40, 1)])
def test_sqlite_reads_stored_text_exactly_with_or_without_unixepoch(version: tuple[int, int, int]) -> None:
    # covers: BOOK-1
    dialect = sqlite.dialect()
    dialect.server_version_info = version
    statement = str(select(epoch_micros(column("stored"))).select_from(table("t")).compile(dialect=dialect))
    assert ("unixepoch" in statement) == (version >= (3, 38))
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (stored TEXT)")
    stored = [edge.astimezone(UTC).replace(tzinfo=None) for edge in EDGES]
    texts = [value.strftime("%Y-%m-%d %H:%M:%S.%f") for value in stored]
    connection.executemany("INSERT INTO t VALUES (?)", [(text,) for text in [*texts, "2026-12-03 09:00:00"]])
    read = [row[0] for row in connection.execute(statement)]
    assert read == [*(to_micros(edge) for edge in EDGES), to_micros(datetime(2026, 12, 3, 9, tzinfo=UTC))]
    connection.close()
