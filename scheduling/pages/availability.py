"""Free slots of a page: its rules, minus busy time on every integrated calendar and bookings.

Reads only the database (the busy-time cache and bookings), never a provider: a visitor's slot
query must not wait on Google or Microsoft. Only time whose busy time every integrated calendar
holds is offered; the answer says when some of the asked time is not known.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import BookingStatus, CalendarStatus, Weekday
from db.models import Booking, BusyInterval, Calendar, CalendarConnection, SchedulingPage
from scheduling.engine import (
    FixedHorizon,
    Interval,
    RollingHorizon,
    SlotRules,
    TimeRange,
    WeeklyRules,
    bookable_range,
    free_slots,
    stable_until,
    subtract,
)
from scheduling.engine.coverage import Known, known_range


@dataclass(frozen=True)
class FreeSlots:
    slots: list[Interval]
    as_of: datetime
    # When the passing of time alone changes the answer (None: never); see ``stable_until``.
    stable_until: datetime | None
    # Every integrated calendar's busy time is known for the asked time (fetched, not failing).
    complete: bool = True
    # Busy time must be fetched until then before the asked time can be offered (None: held).
    missing_until: datetime | None = None


@dataclass(frozen=True)
class BusyTime:
    intervals: list[tuple[Interval, uuid.UUID | None]]  # each with its booking id if it is a booking
    as_of: datetime  # the oldest fetch of the calendars' busy time
    inactive: bool  # an integrated calendar lost access
    known: Known | None  # where every active integrated calendar's busy time is held (None: no calendar counts)
    failing: bool  # the last fetch of some integrated calendar failed
    released_at: datetime | None = None  # when the first pending request counted here expires

    def without(self, booking_id: uuid.UUID | None, *, own_event: bool = False) -> list[Interval]:
        """Busy time with one booking's row freed (it is being moved or accepted).

        ``own_event``: the booking's event was written to the calendar, and comes back from it as
        busy time that would stop the booking from moving to a time overlapping where it is now;
        that time is freed too. Providers give busy time without event ids, so this also frees
        any other event in exactly that time (which the booking already overlapped).
        """
        if booking_id is None:
            return [interval for interval, _ in self.intervals]
        own = [interval for interval, row_id in self.intervals if row_id == booking_id]
        calendars = [interval for interval, row_id in self.intervals if row_id is None]
        bookings = [interval for interval, row_id in self.intervals if row_id not in (None, booking_id)]
        return [*subtract(calendars, own), *bookings] if own and own_event else [*calendars, *bookings]


def weekly_rules(page: SchedulingPage) -> WeeklyRules:
    """The page's stored hours as the engine's rules."""
    weekly: dict[int, list[TimeRange]] = {}
    for row in page.weekly_hours:
        weekly.setdefault(Weekday(row["weekday"]).iso_index, []).append(_range(row))
    overrides = {
        date.fromisoformat(row["date"]): tuple(_range(span) for span in row["intervals"]) for row in page.date_overrides
    }
    return WeeklyRules(
        timezone=page.timezone,
        weekly={day: tuple(sorted(ranges, key=lambda r: r.start)) for day, ranges in weekly.items()},
        overrides=overrides,
    )


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _range(row: dict[str, str]) -> TimeRange:
    return TimeRange(start=_minutes(row["start"]), end=_minutes(row["end"]))


def slot_rules(page: SchedulingPage, duration: int) -> SlotRules:
    horizon: FixedHorizon | RollingHorizon
    if page.fixed_range_start is not None and page.fixed_range_end is not None:
        horizon = FixedHorizon(first=page.fixed_range_start, last=page.fixed_range_end)
    else:
        horizon = RollingHorizon(days=page.booking_horizon_days)
    return SlotRules(
        duration=duration,
        increment=page.start_increment,
        buffer_before=page.buffer_minutes,
        buffer_after=page.buffer_minutes,
        minimum_notice=page.minimum_notice_minutes,
        horizon=horizon,
    )


def earliest(*moments: datetime | None) -> datetime | None:
    """The first of the moments given (None: none is given)."""
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


def blocks_time(requests_since: datetime) -> ColumnElement[bool]:
    """Which bookings hold their time: confirmed ones, and requests made since ``requests_since``
    (older requests have expired: the owner can no longer accept them)."""
    return or_(
        col(Booking.status) == BookingStatus.CONFIRMED,
        and_(col(Booking.status) == BookingStatus.REQUESTED, col(Booking.created_at) > requests_since.astimezone(UTC)),
    )


class AvailabilityService:
    """``request_ttl``: how long a pending request holds its time."""

    def __init__(self, *, request_ttl: timedelta) -> None:
        self.request_ttl = request_ttl

    def requests_since(self, now: datetime) -> datetime:
        """Requests made after this still hold their time at ``now``."""
        return now - self.request_ttl

    async def free_slots(
        self,
        session: AsyncSession,
        page: SchedulingPage,
        *,
        duration: int,
        start: datetime,
        end: datetime,
        now: datetime,
        ignore_booking: uuid.UUID | None = None,
        own_event: bool = False,
        known_only: bool = True,
    ) -> FreeSlots:
        """Slots starting in [start, end); ``ignore_booking`` frees a booking being moved or
        accepted, and with ``own_event`` its calendar event (see ``BusyTime.without``).

        ``known_only=False`` when the providers were just asked about this very time (a booking's
        live check), so the cache need not hold it.
        """
        rules, rules_for_duration = weekly_rules(page), slot_rules(page, duration)
        bookable = bookable_range(rules, rules_for_duration, now)
        if bookable is None or bookable.end <= start or bookable.start >= end:
            return FreeSlots(slots=[], as_of=now, stable_until=stable_until(rules, rules_for_duration, now, []))
        margin = timedelta(minutes=duration + page.buffer_minutes)
        needed = Interval(max(start, bookable.start) - margin, min(end, bookable.end) + margin)
        busy = await self.busy_time(
            session, page.owner_id, needed.start, needed.end, now, requests_since=self.requests_since(now)
        )
        if busy.inactive:  # An inactive integrated calendar leaves no time bookable
            return FreeSlots(slots=[], as_of=busy.as_of, stable_until=None, complete=False)
        known_start, known_end = start, end
        missing_until = None
        if known_only and busy.known is not None and not busy.known.covers(needed.start, needed.end):
            # A slot is offered only if it and its buffers lie in time every calendar has fetched.
            buffer = timedelta(minutes=page.buffer_minutes)
            if busy.known.start is None or busy.known.end is None:
                known_end = known_start
            else:
                known_start = max(start, busy.known.start + buffer)
                known_end = min(end, busy.known.end - margin + timedelta(microseconds=1))
            missing_until = needed.end
        slots = (
            free_slots(
                rules,
                rules_for_duration,
                busy.without(ignore_booking, own_event=own_event),
                known_start,
                known_end,
                now,
            )
            if known_start < known_end
            else []
        )
        return FreeSlots(
            slots=slots,
            as_of=busy.as_of,
            stable_until=earliest(stable_until(rules, rules_for_duration, now, slots), busy.released_at),
            complete=missing_until is None and not busy.failing,
            missing_until=missing_until,
        )

    @staticmethod
    async def busy_time(
        session: AsyncSession,
        owner_id: uuid.UUID,
        start: datetime,
        end: datetime,
        now: datetime,
        *,
        requests_since: datetime,
    ) -> BusyTime:
        """Busy intervals overlapping [start, end), and the state of the calendars they come from;
        requests count when made since ``requests_since`` (older ones have expired).

        Busy time as plain rows, not ORM objects: a month can hold thousands of intervals. Times are compared
        in UTC (SQLite compares the stored text), so bounds are converted first.
        """
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        calendars = (
            await session.exec(
                select(Calendar)
                .join(CalendarConnection, col(Calendar.connection_id) == col(CalendarConnection.id))
                .where(col(CalendarConnection.user_id) == owner_id, col(Calendar.integrated).is_(True))
            )
        ).all()
        busy_rows = await session.exec(
            select(col(BusyInterval.start_at), col(BusyInterval.end_at)).where(
                col(BusyInterval.calendar_id).in_([calendar.id for calendar in calendars]),
                col(BusyInterval.start_at) < end,
                col(BusyInterval.end_at) > start,
            )
        )
        requested_at = case((col(Booking.status) == BookingStatus.REQUESTED, col(Booking.created_at)), else_=None)
        booking_rows = await session.exec(
            select(col(Booking.start_at), col(Booking.end_at), col(Booking.id), requested_at).where(
                col(Booking.owner_id) == owner_id,
                blocks_time(requests_since),
                col(Booking.start_at) < end,
                col(Booking.end_at) > start,
            )
        )
        intervals: list[tuple[Interval, uuid.UUID | None]] = [
            (Interval(row[0], row[1]), None) for row in busy_rows.all()
        ]
        bookings = booking_rows.all()
        intervals.extend((Interval(row[0], row[1]), row[2]) for row in bookings)
        requested = [row[3] for row in bookings if row[3] is not None]
        # A request made at ``created`` holds its time until ``created + ttl``, and the TTL is
        # ``now - requests_since``: the slots change then by time alone.
        released_at = min(requested) + (now - requests_since) if requested else None
        active = [calendar for calendar in calendars if calendar.status == CalendarStatus.ACTIVE]
        synced = [calendar.busy_synced_at for calendar in calendars if calendar.busy_synced_at is not None]
        return BusyTime(
            intervals=intervals,
            as_of=min(now, *synced) if synced else now,
            inactive=len(active) < len(calendars),
            known=known_range([(calendar.covered_from, calendar.covered_until) for calendar in active]),
            failing=any(calendar.busy_failed_at is not None for calendar in active),
            released_at=released_at,
        )
