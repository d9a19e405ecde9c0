"""Free slots lie wholly, buffers included, inside the time every integrated calendar has fetched.

Calendars are written as the sync stores them, with a covered range narrowed to the edges under
test, and the availability service reads them from the real database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from db.models import Calendar, User
from scheduling.pages.availability import FreeSlots
from scheduling.services import Services
from tests.support.booking_helpers import NOW, create_intro_page
from tests.support.calendar_rows import connect_calendar, mark_inactive
from tests.support.live_server import LiveServer
from tests.support.owners import make_owner

TUESDAY_0900 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 09:00 in Helsinki


async def page_of(server: LiveServer) -> tuple[uuid.UUID, uuid.UUID]:
    """An owner with a page (Tuesdays 09:00-17:00, 30-minute starts, 15-minute buffers) and a calendar."""
    user, token = await make_owner(server.services, f"owner-{uuid.uuid4().hex[:6]}@example.com")
    await create_intro_page(server, token, bufferMinutes=15)
    connected = await connect_calendar(server.services, user)
    assert connected.calendar_id is not None
    return user.id, connected.calendar_id


async def set_calendar(services: Services, calendar_id: uuid.UUID, **values: object) -> None:
    async with services.db.transaction() as session:
        calendar = await session.get(Calendar, calendar_id)
        assert calendar is not None
        for name, value in values.items():
            setattr(calendar, name, value)
        session.add(calendar)


async def tuesday(services: Services, owner_id: uuid.UUID) -> FreeSlots:
    view = (await services.pages.list_pages(owner_id))[0]
    async with services.db.plain() as plain:
        return await services.live.availability.free_slots(
            plain, view.page, duration=30, start=TUESDAY_0900, end=TUESDAY_0900 + timedelta(hours=8), now=NOW
        )


def starts(free: FreeSlots) -> list[str]:
    return [slot.start.astimezone(UTC).strftime("%H:%M") for slot in free.slots]


async def test_only_slots_whose_buffers_lie_in_fetched_time_are_offered(server: LiveServer) -> None:
    # covers: BOOK-8, BOOK-1
    owner_id, calendar_id = await page_of(server)
    whole = await tuesday(server.services, owner_id)
    assert (starts(whole)[0], starts(whole)[-1], whole.complete) == ("07:00", "14:30", True)

    await set_calendar(
        server.services,
        calendar_id,
        covered_from=TUESDAY_0900 + timedelta(minutes=20),  # 09:20: 09:30's buffer would start at 09:15
        covered_until=TUESDAY_0900 + timedelta(hours=3),  # 12:00: 11:00 with its buffer ends 11:45, 11:30's 12:15
    )
    edge = await tuesday(server.services, owner_id)

    assert starts(edge) == ["08:00", "08:30", "09:00"]  # 10:00, 10:30 and 11:00 in Helsinki
    assert edge.complete is False
    assert edge.missing_until is not None


async def test_a_failing_calendar_keeps_what_was_fetched_but_says_the_answer_is_incomplete(
    server: LiveServer,
) -> None:
    # covers: BOOK-8, SYNC-5
    owner_id, calendar_id = await page_of(server)
    await set_calendar(server.services, calendar_id, busy_failed_at=NOW - timedelta(minutes=1))
    failing = await tuesday(server.services, owner_id)
    assert (len(failing.slots), failing.complete, failing.missing_until) == (16, False, None)

    await set_calendar(server.services, calendar_id, covered_from=None, covered_until=None, busy_failed_at=None)
    never_fetched = await tuesday(server.services, owner_id)
    assert (never_fetched.slots, never_fetched.complete) == ([], False)


async def test_an_inactive_calendar_leaves_nothing_known(server: LiveServer) -> None:
    # covers: BOOK-8, INACT-2
    owner_id, calendar_id = await page_of(server)
    async with server.services.db.session() as session:
        owner = await session.get(User, owner_id)
    assert owner is not None
    await mark_inactive(server.services, owner, calendar_id)
    inactive = await tuesday(server.services, owner_id)
    assert (inactive.slots, inactive.complete) == ([], False)
