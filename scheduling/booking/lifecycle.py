"""After booking: cancel and reschedule (owner or invitee link), accept or decline requests.

Every change runs in one write transaction with the owner locked, re-checks
availability where time moves, and queues the calendar and email work in the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import BookingStatus, CalendarWrite, PageStatus
from db.models import Booking, OutboxMessage, SchedulingPage
from db.plain import SessionRows
from scheduling import outbox
from scheduling.booking.book import (
    BookingChecks,
    BookingView,
    bookings_overlap,
    event_in_place,
    lock_owner,
    retire_expired_requests,
)
from scheduling.calendars.busy_check import Verdict
from scheduling.errors import (
    CalendarInactive,
    CalendarUnreachable,
    InvalidInput,
    NotFound,
    RateLimited,
    Refused,
    SlotUnavailable,
)
from scheduling.events import AvailabilityChanged

ChangeResult = (
    BookingView | NotFound | InvalidInput | SlotUnavailable | CalendarInactive | CalendarUnreachable | RateLimited
)
_NOT_FOUND = NotFound(message="booking not found")


def _require_link_version(booking: Booking, link_version: int | None) -> None:
    """A manage link retired by a reschedule (perhaps a moment ago) names no booking."""
    if link_version is not None and booking.manage_version != link_version:
        raise Refused(_NOT_FOUND)


_TAKEN = SlotUnavailable(message="that time is not available")
_MOVABLE = (BookingStatus.CONFIRMED, BookingStatus.REQUESTED)
_EXPIRED = InvalidInput(message="this request has expired: it no longer holds its time")


class BookingLifecycle(BookingChecks):
    async def get(self, booking_id: uuid.UUID, *, owner_id: uuid.UUID | None) -> BookingView | None:
        """A booking; with ``owner_id`` only the owner's (another owner's is simply not found)."""
        async with self._db.session() as session:
            booking = await session.get(Booking, booking_id)
            if booking is None or (owner_id is not None and booking.owner_id != owner_id):
                return None
            page = await session.get(SchedulingPage, booking.page_id)
            return None if page is None else BookingView(booking=booking, page=page)

    async def cancel(
        self, booking_id: uuid.UUID, *, owner_id: uuid.UUID | None, link_version: int | None = None
    ) -> ChangeResult:
        """``link_version``: made through a manage link of that version, refused once it is retired."""

        async def change(session: AsyncSession, booking: Booking, page: SchedulingPage) -> list[str]:
            _require_link_version(booking, link_version)
            if booking.status not in (BookingStatus.CONFIRMED, BookingStatus.REQUESTED):
                raise Refused(InvalidInput(message=f"a {booking.status.lower()} booking cannot be cancelled"))
            booking.status = BookingStatus.CANCELLED
            booking.cancelled_at = self._clock()
            kinds = [outbox.EMAIL_BOOKING_CANCELLED]
            if booking.calendar_write != CalendarWrite.NONE:
                kinds.append(outbox.CALENDAR_DELETE_EVENT)
            return kinds

        return await self._change(booking_id, owner_id, change, public=owner_id is None)

    def _expired(self, booking: Booking) -> bool:
        """A request older than the requests' time to live: it holds no time and cannot be accepted."""
        return booking.status == BookingStatus.REQUESTED and booking.created_at <= self._availability.requests_since(
            self._clock()
        )

    async def reschedule(
        self, booking_id: uuid.UUID, start: datetime, *, owner_id: uuid.UUID | None, link_version: int | None = None
    ) -> ChangeResult:
        """Move a confirmed booking (or a pending request) to another free start, same length.

        A booking obeys the rules of booking: the owner's calendars are asked about the new time
        first, and an inactive calendar refuses. A pending request moves as a request: nothing is
        on a calendar and the invitee is told it still waits for the owner.
        """
        view = await self.get(booking_id, owner_id=owner_id)
        if view is not None and self._expired(view.booking):
            return _EXPIRED
        if view is not None and view.booking.status in _MOVABLE and start.tzinfo is not None:
            length = view.booking.end_at - view.booking.start_at
            said = await self._calendars_say(
                view.page,
                start,
                start + length,
                moving=view.booking,
                request=view.booking.status == BookingStatus.REQUESTED,
            )
            if not isinstance(said, Verdict):
                return said
            if said is not Verdict.FREE:
                return await self._taken(view, start)

        async def change(session: AsyncSession, booking: Booking, page: SchedulingPage) -> list[str]:
            _require_link_version(booking, link_version)
            if booking.status not in _MOVABLE:
                raise Refused(InvalidInput(message=f"a {booking.status.lower()} booking cannot be rescheduled"))
            if start.tzinfo is None:
                raise Refused(InvalidInput(message="start needs a UTC offset", field="start"))
            if self._expired(booking):
                raise Refused(_EXPIRED)
            new_start = start.astimezone(UTC)
            request = booking.status == BookingStatus.REQUESTED
            await self._require_free(
                session,
                page,
                booking,
                new_start,
                now=self._clock(),
                own_event=event_in_place(booking),
                asked=not request,
            )
            duration = booking.end_at - booking.start_at
            booking.start_at, booking.end_at = new_start, new_start + duration
            booking.manage_version += 1  # a new manage link; the older ones are retired
            if request:
                return [outbox.EMAIL_REQUEST_MOVED]
            kinds = [outbox.EMAIL_BOOKING_RESCHEDULED]
            if booking.calendar_write != CalendarWrite.NONE:
                # The owner sees the move pending until the calendar has it (or why it failed).
                booking.calendar_write, booking.calendar_write_error = CalendarWrite.PENDING, None
                kinds.append(outbox.CALENDAR_UPDATE_EVENT)
            return kinds

        result = await self._change(booking_id, owner_id, change, public=owner_id is None)
        if result is _TAKEN and view is not None:  # busy by the cache or another booking
            return await self._taken(view, start)
        return result

    async def accept(self, booking_id: uuid.UUID, *, owner_id: uuid.UUID) -> ChangeResult:
        """A request becomes a booking, written to the calendar; needs a connected calendar.

        The rules of booking apply: the owner's calendars are asked about the time, and an
        inactive calendar refuses.
        """
        view = await self.get(booking_id, owner_id=owner_id)
        if view is not None and self._expired(view.booking):
            return _EXPIRED
        if view is not None:
            public = await self._pages.get_page(owner_id, view.page.id)
            if not isinstance(public, NotFound) and public.status is PageStatus.OFFLINE:
                return InvalidInput(message="connect a calendar before accepting requests")
            if view.booking.status == BookingStatus.REQUESTED:
                said = await self._calendars_say(view.page, view.booking.start_at, view.booking.end_at)
                if not isinstance(said, Verdict):
                    return said
                if said is not Verdict.FREE:
                    return _TAKEN  # the asked time is the request: there is nothing to offer instead

        async def change(session: AsyncSession, booking: Booking, page: SchedulingPage) -> list[str]:
            if booking.status != BookingStatus.REQUESTED:
                raise Refused(InvalidInput(message="only a requested meeting can be accepted"))
            if self._expired(booking):
                raise Refused(_EXPIRED)
            if booking.start_at <= self._clock():
                raise Refused(InvalidInput(message="the requested time has already passed"))
            # The page's notice and horizon as when the visitor asked: the owner may take days to
            # answer. Busy time and other bookings are those of now.
            await self._require_free(session, page, booking, booking.start_at, now=booking.created_at)
            booking.status = BookingStatus.CONFIRMED
            booking.calendar_write = CalendarWrite.PENDING
            return [outbox.CALENDAR_CREATE_EVENT, outbox.EMAIL_BOOKING_CONFIRMED]

        return await self._change(booking_id, owner_id, change)

    async def _taken(self, view: BookingView, start: datetime) -> SlotUnavailable:
        """The calendars are busy then: the refusal with the nearest free times for this booking."""
        length = int((view.booking.end_at - view.booking.start_at).total_seconds() // 60)
        return await self.with_alternatives(
            view.page, start, length, timezone=view.booking.invitee_timezone, ignore_booking=view.booking
        )

    async def decline(self, booking_id: uuid.UUID, *, owner_id: uuid.UUID) -> ChangeResult:
        async def change(session: AsyncSession, booking: Booking, page: SchedulingPage) -> list[str]:
            if booking.status != BookingStatus.REQUESTED:
                raise Refused(InvalidInput(message="only a requested meeting can be declined"))
            booking.status = BookingStatus.DECLINED
            booking.cancelled_at = self._clock()
            return [outbox.EMAIL_REQUEST_DECLINED]

        return await self._change(booking_id, owner_id, change)

    async def follow_calendar(self, payload: dict[str, Any]) -> None:
        """The owner deleted or moved the booking's event in their calendar: the booking follows.

        Deleted: the booking is cancelled and the invitee told (the event is already gone).
        Moved: the booking takes the event's time and the invitee is told (the manage link stays
        valid); a time the page would not offer is kept all the same, and the owner is told.
        """
        deleted = bool(payload["deleted"])
        start = None if deleted else datetime.fromisoformat(str(payload["start"]))
        end = None if deleted else datetime.fromisoformat(str(payload["end"]))
        seen = (datetime.fromisoformat(str(payload["seen_start"])), datetime.fromisoformat(str(payload["seen_end"])))

        async def change(session: AsyncSession, booking: Booking, page: SchedulingPage) -> list[str]:
            if (
                booking.status != BookingStatus.CONFIRMED
                or booking.calendar_write != CalendarWrite.DONE
                or (booking.start_at, booking.end_at) != seen
            ):
                return []  # changed meanwhile here: our own change wins, the calendar follows it
            if booking.end_at <= self._clock():
                return []  # the meeting is over: an owner tidying their calendar tells nobody
            if start is None or end is None:
                booking.status, booking.cancelled_at = BookingStatus.CANCELLED, self._clock()
                booking.calendar_write = CalendarWrite.NONE  # nothing left to delete
                return [outbox.EMAIL_BOOKING_CANCELLED]
            since = self._availability.requests_since(self._clock())
            if await bookings_overlap(
                session, booking.owner_id, start, end, requests_since=since, other_than=booking.id
            ):
                # Two bookings cannot hold one time: this one stays, and the owner hears why.
                return [outbox.EMAIL_OWNER_MOVE_NOT_FOLLOWED]
            booking.start_at, booking.end_at = start, end
            kinds = [outbox.EMAIL_BOOKING_RESCHEDULED]
            try:
                # Its event is where the booking now is: only the page's rules and other bookings count.
                await self._require_free(session, page, booking, start, now=self._clock(), own_event=True)
            except Refused:
                kinds.append(outbox.EMAIL_OWNER_MOVED_OUTSIDE_RULES)
            return kinds

        await self._change(uuid.UUID(str(payload["booking_id"])), None, change)

    async def _require_free(
        self,
        session: AsyncSession,
        page: SchedulingPage,
        booking: Booking,
        start: datetime,
        *,
        now: datetime,
        own_event: bool = False,
        asked: bool = True,
    ) -> None:
        """Refused unless ``start`` is free by the cache and the rules; ``asked``: the providers
        were just asked about this time, so the cache need not hold it."""
        duration = int((booking.end_at - booking.start_at).total_seconds() // 60)
        free = await self._availability.free_slots(
            SessionRows(session),
            page,
            duration=duration,
            start=start,
            end=start + timedelta(minutes=1),
            now=now,
            ignore_booking=booking.id,
            own_event=own_event,
            known_only=not asked,
        )
        if not any(slot.start == start for slot in free.slots):
            raise Refused(_TAKEN)

    async def _change(
        self,
        booking_id: uuid.UUID,
        owner_id: uuid.UUID | None,
        change: Callable[[AsyncSession, Booking, SchedulingPage], Awaitable[list[str]]],
        *,
        public: bool = False,
    ) -> ChangeResult:
        """Apply ``change`` under the owner's lock and queue its work; ``public``: made through
        the public API, so the invitee's emails count against their address's daily cap."""
        now = self._clock()
        try:
            async with self._db.transaction(write=True) as session:
                booking = await session.get(Booking, booking_id)
                if booking is None or (owner_id is not None and booking.owner_id != owner_id):
                    raise Refused(_NOT_FOUND)
                await lock_owner(SessionRows(session), booking.owner_id)
                await session.refresh(booking)
                page = await session.get(SchedulingPage, booking.page_id)
                if page is None:
                    raise Refused(_NOT_FOUND)
                kinds = await change(session, booking, page)
                if public:
                    kinds = await self._mail_capped(kinds, booking.invitee_email)
                if booking.status in _MOVABLE:
                    since = self._availability.requests_since(now)
                    await retire_expired_requests(
                        SessionRows(session),
                        booking.owner_id,
                        booking.start_at,
                        booking.end_at,
                        requests_since=since,
                        now=now,
                        other_than=booking.id,
                    )
                session.add(booking)
                for kind in kinds:
                    session.add(OutboxMessage(kind=kind, payload={"booking_id": booking.id.hex}, available_at=now))
        except Refused as refused:
            return cast(ChangeResult, refused.result)
        await self._bus.publish(AvailabilityChanged(owner_id=booking.owner_id, reason="booking_changed"))
        self._wake_outbox()
        return BookingView(booking=booking, page=page)
