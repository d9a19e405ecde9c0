"""Calendar status for the owner: live status events and one email per incident.

A calendar's incident starts when it turns inactive (``inactive_since``). The first booking
attempt refused because of it queues one email to the owner; later attempts in the same incident
queue nothing, so a busy page cannot flood the owner's inbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select

from common.values import CalendarStatus
from db.engine import Database
from db.models import Calendar, CalendarConnection, OutboxMessage, User
from scheduling import outbox
from scheduling.clock import Clock
from scheduling.events import CalendarStatusChanged
from scheduling.notifications import messages
from scheduling.notifications.mailer import Mailer
from scheduling.outbox import Handler


def status_changed(
    owner_id: uuid.UUID, calendar: Calendar, status: CalendarStatus | None = None
) -> CalendarStatusChanged:
    """The event for ``calendar`` in its current status, or in ``status`` (REMOVED)."""
    return CalendarStatusChanged(
        owner_id=owner_id,
        calendar_id=calendar.id,
        name=calendar.name,
        is_primary=calendar.is_primary,
        integrated=calendar.integrated,
        access_role=calendar.access_role,
        status=(status or CalendarStatus(calendar.status)).value,
        reason=calendar.inactive_reason if status is None else None,
    )


class InactiveNotices:
    def __init__(
        self, *, db: Database, mailer: Mailer, clock: Clock, settings_url: str, wake_outbox: Callable[[], None]
    ) -> None:
        self._db = db
        self._mailer = mailer
        self._clock = clock
        self._settings_url = settings_url
        self._wake_outbox = wake_outbox

    async def someone_tried_to_book(self, owner_id: uuid.UUID) -> None:
        """Queue the owner's email unless this incident was already told."""
        now = self._clock()
        async with self._db.transaction(write=True) as session:
            calendars = (
                await session.exec(
                    select(Calendar)
                    .join(CalendarConnection, col(Calendar.connection_id) == col(CalendarConnection.id))
                    .where(
                        col(CalendarConnection.user_id) == owner_id,
                        col(Calendar.integrated).is_(True),
                        col(Calendar.status) == CalendarStatus.INACTIVE,
                        or_(
                            col(Calendar.inactive_notified_at).is_(None),
                            col(Calendar.inactive_notified_at) < col(Calendar.inactive_since),
                        ),
                    )
                )
            ).all()
            for calendar in calendars:
                calendar.inactive_notified_at = now
                session.add(calendar)
            if calendars:
                payload = {"owner_id": owner_id.hex, "calendar_ids": [calendar.id.hex for calendar in calendars]}
                session.add(OutboxMessage(kind=outbox.EMAIL_OWNER_CALENDAR_INACTIVE, payload=payload, available_at=now))
        if calendars:
            self._wake_outbox()

    def handlers(self) -> dict[str, Handler]:
        return {outbox.EMAIL_OWNER_CALENDAR_INACTIVE: self._send}

    async def _send(self, payload: dict[str, Any]) -> None:
        async with self._db.session() as session:
            owner = await session.get(User, uuid.UUID(payload["owner_id"]))
            rows = (
                await session.exec(
                    select(Calendar, CalendarConnection)
                    .join(CalendarConnection, col(Calendar.connection_id) == col(CalendarConnection.id))
                    .where(col(Calendar.id).in_([uuid.UUID(value) for value in payload["calendar_ids"]]))
                )
            ).all()
        if owner is None or not rows:
            return  # the owner or the calendars are gone: nothing to tell
        calendars = [
            (calendar.name, connection.account_email, calendar.inactive_reason) for calendar, connection in rows
        ]
        await self._mailer.send(
            messages.calendar_inactive_attempt(
                owner_name=owner.name or owner.email,
                owner_email=owner.email,
                calendars=calendars,
                settings_url=self._settings_url,
            )
        )
