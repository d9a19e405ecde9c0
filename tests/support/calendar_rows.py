"""Connections and calendars written as the providers' connect flow and sync store them.

No provider is called: the rows are written directly, then the owner's ``AvailabilityChanged``
is published, as the product does after every change to calendars. The calendar's busy time is
held for every time a test asks about (its covered range spans the decades around the tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from common.values import CalendarProvider, CalendarStatus
from db.models import BusyInterval, Calendar, CalendarConnection, User
from scheduling.events import AvailabilityChanged
from scheduling.services import Services

COVERED_FROM = datetime(2000, 1, 1, tzinfo=UTC)
COVERED_UNTIL = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ConnectedCalendar:
    connection_id: uuid.UUID
    calendar_id: uuid.UUID | None


async def connect_calendar(
    services: Services,
    owner: User,
    *,
    busy: Sequence[tuple[datetime, datetime]] = (),
    with_calendar: bool = True,
) -> ConnectedCalendar:
    """A connection with (unless told otherwise) an integrated primary calendar and its busy time."""
    calendar_id = None
    async with services.db.transaction() as session:
        connection = CalendarConnection(user_id=owner.id, provider=CalendarProvider.GOOGLE, account_email=owner.email)
        session.add(connection)
        await session.flush()
        if with_calendar:
            calendar = Calendar(
                connection_id=connection.id,
                external_id="primary",
                name="Work",
                is_primary=True,
                integrated=True,
                covered_from=COVERED_FROM,
                covered_until=COVERED_UNTIL,
            )
            session.add(calendar)
            await session.flush()
            calendar_id = calendar.id
            for start, end in busy:
                session.add(BusyInterval(calendar_id=calendar.id, start_at=start, end_at=end))
    await services.bus.publish(AvailabilityChanged(owner_id=owner.id, reason="calendar_connected"))
    return ConnectedCalendar(connection_id=connection.id, calendar_id=calendar_id)


async def mark_inactive(services: Services, owner: User, calendar_id: uuid.UUID) -> None:
    async with services.db.transaction() as session:
        calendar = await session.get(Calendar, calendar_id)
        assert calendar is not None
        calendar.status = CalendarStatus.INACTIVE
        calendar.inactive_reason = "invalid_grant"
        session.add(calendar)
    await services.bus.publish(AvailabilityChanged(owner_id=owner.id, reason="calendar_status"))
