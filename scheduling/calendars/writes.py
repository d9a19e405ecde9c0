"""The booking's event on the owner's primary calendar, written by the outbox worker.

The booking commits with its outbox rows, so a provider that is down loses nothing: the write
is retried with backoff (after Retry-After when the provider gave one) and the booking shows
``calendarWrite: PENDING`` meanwhile. The booking's id is the event's idempotency key, so a
retry after a lost answer finds the event instead of making a second one. Lost access ends the
retries (the calendar turns inactive); a refusal marks the write FAILED with its reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import BookingStatus, CalendarStatus, CalendarWrite
from db.models import Booking, Calendar, CalendarConnection, SchedulingPage, User
from providers.base import Attendee, CalendarClient, EventDraft, WrittenEvent
from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from scheduling import outbox
from scheduling.calendars.access import ProviderAccess
from scheduling.clock import Clock
from scheduling.outbox import Handler, RetryLater

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class _Target:
    booking: Booking
    page: SchedulingPage
    owner: User
    calendar: Calendar
    connection: CalendarConnection


# The event's text is mailed to the invitee from the owner's own mailbox: kept plain (see each
# adapter) and short, whatever a visitor typed into the page's fields.
MAX_EVENT_DESCRIPTION = 4_000


def event_for(booking: Booking, page: SchedulingPage, owner: User) -> EventDraft:
    answers = "\n".join(f"{key}: {value}" for key, value in booking.answers.items())
    description = f"Booked through {page.name} by {booking.invitee_name} <{booking.invitee_email}>."
    if answers:
        description = f"{description}\n\n{answers}"
    if len(description) > MAX_EVENT_DESCRIPTION:
        description = description[: MAX_EVENT_DESCRIPTION - 1].rstrip() + "…"
    return EventDraft(
        idempotency_key=booking.id.hex,
        summary=f"{page.name}: {booking.invitee_name}",
        start=booking.start_at,
        end=booking.end_at,
        timezone=page.timezone,
        attendees=(Attendee(email=booking.invitee_email, name=booking.invitee_name),),
        description=description,
        organizer_email=owner.email,
    )


class CalendarWrites:
    def __init__(self, *, access: ProviderAccess, clock: Clock) -> None:
        self._access = access
        self._db = access.db
        self._clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {
            outbox.CALENDAR_CREATE_EVENT: self._create,
            outbox.CALENDAR_UPDATE_EVENT: self._update,
            outbox.CALENDAR_DELETE_EVENT: self._delete,
        }

    async def _create(self, payload: dict[str, Any]) -> None:
        target = await self._target(payload)
        if target is None or target.booking.status != BookingStatus.CONFIRMED:
            return
        if target.booking.calendar_event_id is not None:
            return  # written already (a retry of a row whose first run succeeded)
        await self._write_new(target)

    async def _write_new(self, target: _Target) -> str | None:
        """Create the event; its id, or None when nothing (any more) stands for the booking."""
        draft = event_for(target.booking, target.page, target.owner)
        return await write_new_event(
            partial(self._call, target),
            target.calendar.external_id,
            draft,
            lambda event_id: self._done(target.booking.id, target.calendar.id, event_id, (draft.start, draft.end)),
        )

    async def _update(self, payload: dict[str, Any]) -> None:
        target = await self._target(payload)
        if target is None:
            return
        event_id = target.booking.calendar_event_id
        if event_id is None or target.booking.calendar_event_calendar_id != target.calendar.id:
            # Never written, or the calendar it was on is gone: made where bookings go now. An
            # earlier try may have written it with the old times (the create answers with that
            # one), so it is updated next as well.
            if target.booking.status != BookingStatus.CONFIRMED:
                return
            event_id = await self._write_new(target)
            if event_id is None:
                return
        draft = event_for(target.booking, target.page, target.owner)
        written = await self._call(
            target, lambda client: client.update_event(target.calendar.external_id, event_id, draft)
        )
        if written is not None:
            await self._done(target.booking.id, target.calendar.id, written.event_id, (draft.start, draft.end))

    async def _delete(self, payload: dict[str, Any]) -> None:
        target = await self._target(payload, for_delete=True)
        if target is None or target.booking.calendar_event_id is None:
            return
        event_id = target.booking.calendar_event_id
        await self._call(target, lambda client: client.delete_event(target.calendar.external_id, event_id))

    async def _call(self, target: _Target, operation: Callable[[CalendarClient], Awaitable[T]]) -> T | None:
        """Run one provider operation; retryable failures raise ``RetryLater``, final ones are recorded."""
        return await call_for_outbox(
            self._access, target.connection, operation, partial(self._failed, target.booking.id)
        )

    async def _target(self, payload: dict[str, Any], *, for_delete: bool = False) -> _Target | None:
        """The booking and where its event goes: the calendar it was written to, else the primary."""
        async with self._db.session() as session:
            booking = await session.get(Booking, uuid.UUID(payload["booking_id"]))
            if booking is None:
                return None
            page = await session.get(SchedulingPage, booking.page_id)
            owner = await session.get(User, booking.owner_id)
            home = await event_home(session, booking.calendar_event_calendar_id)
            if home is None and not for_delete:
                home = await event_home(session, await primary_calendar(session, booking.owner_id))
        if page is None or owner is None or home is None:
            if not for_delete:
                await self._failed(booking.id, "no connected calendar takes this booking")
            return None
        return _Target(booking, page, owner, *home)

    async def _done(
        self, booking_id: uuid.UUID, calendar_id: uuid.UUID, event_id: str, written_at: tuple[datetime, datetime]
    ) -> bool:
        """Record the written event; False when the booking is no longer confirmed (or gone).

        The write is DONE only if the booking is still where the event was written: a booking
        moved again meanwhile stays PENDING until its own update lands, so its event is never
        taken to sit where the booking is while it does not.
        """
        async with self._db.transaction() as session:
            booking = await session.get(Booking, booking_id)
            if booking is None:
                return False
            if booking.calendar_event_id != event_id:  # a new event: no sync has named it yet
                booking.calendar_event_seen_at = None
            booking.calendar_event_id = event_id
            booking.calendar_event_calendar_id = calendar_id
            if (booking.start_at, booking.end_at) == written_at:
                booking.calendar_write = CalendarWrite.DONE
            booking.calendar_write_error = None
            session.add(booking)
            return booking.status == BookingStatus.CONFIRMED

    async def _failed(self, booking_id: uuid.UUID, reason: str) -> None:
        logger.warning("calendar write for booking %s failed for good: %s", booking_id, reason)
        async with self._db.transaction() as session:
            booking = await session.get(Booking, booking_id)
            if booking is None or booking.calendar_write == CalendarWrite.DONE:
                return
            booking.calendar_write = CalendarWrite.FAILED
            booking.calendar_write_error = reason[:500]
            session.add(booking)


async def call_for_outbox(
    access: ProviderAccess,
    connection: CalendarConnection,
    operation: Callable[[CalendarClient], Awaitable[T]],
    failed: Callable[[str], Awaitable[None]],
) -> T | None:
    """One provider operation of an outbox row. An outage or a rate limit raises ``RetryLater``
    (the row is tried again with backoff); a final failure is handed to ``failed`` with its
    reason, and the answer is None."""
    try:
        async with access.client(connection) as client:
            return await operation(client)
    except (ProviderUnavailable, ProviderRateLimited) as exc:
        after = getattr(exc, "retry_after", None)
        raise RetryLater(exc.message, after=timedelta(seconds=after) if after else None) from exc
    except ProviderAuthError as exc:
        await failed(f"the calendar lost access: {exc.message}")
    except ProviderError as exc:
        await failed(exc.message)
    return None


async def write_new_event(
    call: Callable[[Callable[[CalendarClient], Awaitable[Any]]], Awaitable[Any]],
    calendar_id: str,
    draft: EventDraft,
    record: Callable[[str], Awaitable[bool]],
) -> str | None:
    """Create an event through ``call`` and ``record`` it: its id, or None when it could not be
    written or ``record`` found nothing standing for it any more. Then the event goes again: what
    it stood for was cancelled while it was written, and that cancellation's delete may have run
    already (on another worker) and found no event to delete."""
    written: WrittenEvent | None = await call(lambda client: client.create_event(calendar_id, draft))
    if written is None:
        return None
    if not await record(written.event_id):
        await call(lambda client: client.delete_event(calendar_id, written.event_id))
        return None
    return written.event_id


async def event_home(
    session: AsyncSession, calendar: uuid.UUID | Calendar | None
) -> tuple[Calendar, CalendarConnection] | None:
    """The calendar an event is (or goes) in, with the connection that reaches it; None when
    either is gone (disconnected since)."""
    if isinstance(calendar, uuid.UUID):
        calendar = await session.get(Calendar, calendar)
    if calendar is None:
        return None
    connection = await session.get(CalendarConnection, calendar.connection_id)
    return None if connection is None else (calendar, connection)


# Calendars the owner may write events to (the providers' access roles, as stored).
WRITABLE_ROLES = ("owner", "writer")


async def primary_calendar(session: AsyncSession, owner_id: uuid.UUID) -> Calendar | None:
    """Bookings go to the primary calendar of a connection that takes bookings."""
    return await _first_primary(session, owner_id, col(CalendarConnection.scheduling_pages).is_(True))


async def calendar_sync_calendar(session: AsyncSession, owner_id: uuid.UUID) -> Calendar | None:
    """The owner's own meetings go to the primary calendar of a connection with calendar sync
    on, when it can be written; None means calendar sync does not reach a calendar."""
    return await _first_primary(
        session,
        owner_id,
        col(CalendarConnection.calendar_sync).is_(True),
        col(Calendar.access_role).in_(WRITABLE_ROLES),
    )


async def _first_primary(session: AsyncSession, owner_id: uuid.UUID, *conditions: Any) -> Calendar | None:
    """The owner's active primary calendar of a connected account meeting ``conditions``."""
    statement = (
        select(Calendar)
        .join(CalendarConnection, col(Calendar.connection_id) == col(CalendarConnection.id))
        .where(
            col(CalendarConnection.user_id) == owner_id,
            col(CalendarConnection.credentials).is_not(None),
            col(Calendar.is_primary).is_(True),
            col(Calendar.status) == CalendarStatus.ACTIVE,
            *conditions,
        )
        .order_by(col(CalendarConnection.purpose) != "MEETINGS", col(CalendarConnection.created_at))
        .limit(1)
    )
    result: Calendar | None = (await session.exec(statement)).first()
    return result
