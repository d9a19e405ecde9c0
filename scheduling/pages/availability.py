"""Free slots of a page: its rules, minus busy time on every integrated calendar and bookings.

Reads only the database (the busy-time cache and bookings), never a provider: a visitor's slot
query must not wait on Google or Microsoft. Only time whose busy time every integrated calendar
holds is offered; the answer says when some of the asked time is not known.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple, Protocol

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    String,
    and_,
    bindparam,
    case,
    cast,
    null,
    or_,
    select,
    union_all,
)
from sqlmodel import col

from common.values import BookingStatus, CalendarStatus, Weekday
from db.columns import UTCDateTime
from db.epoch import epoch_micros
from db.models import Booking, BusyInterval, Calendar, CalendarConnection, SchedulingPage
from db.plain import Plain, Rows
from scheduling.engine import (
    FixedHorizon,
    Interval,
    MicroSpans,
    RollingHorizon,
    SlotRules,
    TimeRange,
    WeeklyRules,
    bookable_range,
    free_slots,
    stable_until,
)
from scheduling.engine.coverage import Known, known_range
from scheduling.engine.epoch import from_micros
from scheduling.engine.spans import merge_spans, subtract_spans


class CalendarState(Protocol):
    """An integrated calendar's busy-time cache state, as ``busy_time`` reads it or a caller
    that read it moments ago passes it in."""

    @property
    def status(self) -> CalendarStatus: ...
    @property
    def busy_synced_at(self) -> datetime | None: ...
    @property
    def covered_from(self) -> datetime | None: ...
    @property
    def covered_until(self) -> datetime | None: ...
    @property
    def busy_failed_at(self) -> datetime | None: ...


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
    calendars: list[tuple[int, int]]  # the calendars' busy time, microseconds since the epoch
    bookings: list[tuple[int, int, uuid.UUID]]  # bookings holding time, in the same unit, with their ids
    as_of: datetime  # the oldest fetch of the calendars' busy time
    inactive: bool  # an integrated calendar lost access
    known: Known | None  # where every active integrated calendar's busy time is held (None: no calendar counts)
    failing: bool  # the last fetch of some integrated calendar failed
    released_at: datetime | None = None  # when the first pending request counted here expires

    def without(self, booking_id: uuid.UUID | None, *, own_event: bool = False) -> MicroSpans:
        """Busy time with one booking's row freed (it is being moved or accepted).

        ``own_event``: the booking's event was written to the calendar, and comes back from it as
        busy time that would stop the booking from moving to a time overlapping where it is now;
        that time is freed too. Providers give busy time without event ids, so this also frees
        any other event in exactly that time (which the booking already overlapped).
        """
        bookings = [(start, end) for start, end, row_id in self.bookings if row_id != booking_id]
        if booking_id is None or not own_event:
            return MicroSpans([*self.calendars, *bookings])
        own = merge_spans((start, end) for start, end, row_id in self.bookings if row_id == booking_id)
        calendars = subtract_spans(merge_spans(self.calendars), own) if own else self.calendars
        return MicroSpans([*calendars, *bookings])


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


def blocks_time(requests_since: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """Which bookings hold their time: confirmed ones, and requests made since ``requests_since``
    (older requests have expired: the owner can no longer accept them); a bind parameter lets a
    statement built once take the moment at execution."""
    since = requests_since.astimezone(UTC) if isinstance(requests_since, datetime) else requests_since
    return or_(
        col(Booking.status) == BookingStatus.CONFIRMED,
        and_(col(Booking.status) == BookingStatus.REQUESTED, col(Booking.created_at) > since),
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
        rows: Rows,
        page: SchedulingPage,
        *,
        duration: int,
        start: datetime,
        end: datetime,
        now: datetime,
        ignore_booking: uuid.UUID | None = None,
        own_event: bool = False,
        known_only: bool = True,
        calendars: Sequence[CalendarState] | None = None,
    ) -> FreeSlots:
        """Slots starting in [start, end); ``ignore_booking`` frees a booking being moved or
        accepted, and with ``own_event`` its calendar event (see ``BusyTime.without``).

        ``known_only=False`` when the providers were just asked about this very time (a booking's
        live check), so the cache need not hold it. ``calendars``: the owner's integrated
        calendars as the caller read them moments ago (None: read them here).
        """
        rules, rules_for_duration = weekly_rules(page), slot_rules(page, duration)
        bookable = bookable_range(rules, rules_for_duration, now)
        if bookable is None or bookable.end <= start or bookable.start >= end:
            return FreeSlots(slots=[], as_of=now, stable_until=stable_until(rules, rules_for_duration, now, []))
        margin = timedelta(minutes=duration + page.buffer_minutes)
        needed = Interval(max(start, bookable.start) - margin, min(end, bookable.end) + margin)
        busy = await self.busy_time(
            rows,
            page.owner_id,
            needed.start,
            needed.end,
            now,
            requests_since=self.requests_since(now),
            calendars=calendars,
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
        rows: Rows,
        owner_id: uuid.UUID,
        start: datetime,
        end: datetime,
        now: datetime,
        *,
        requests_since: datetime,
        calendars: Sequence[CalendarState] | None = None,
    ) -> BusyTime:
        """Busy intervals overlapping [start, end), and the state of the calendars they come from
        (``calendars`` when the caller read it already); requests count when made since
        ``requests_since`` (older ones have expired).

        A month can hold thousands of busy rows: they come in one Core statement (calendars'
        busy time and bookings together) as integer microseconds computed by the database
        (``db.epoch``), never as ORM objects or datetimes.
        """
        if calendars is None:
            calendars = [CalendarRow(*row) for row in await rows.rows(_CALENDARS, {"owner_id": owner_id})]
        window = {"owner_id": owner_id, "start": start, "end": end, "requests_since": requests_since}
        found = await rows.rows(_BUSY_ROWS, window)
        busy = [(row[0], row[1]) for row in found if row[2] is None]
        bookings = [(row[0], row[1], uuid.UUID(row[2])) for row in found if row[2] is not None]
        requested = [row[3] for row in found if row[3] is not None]
        # A request made at ``created`` holds its time until ``created + ttl``, and the TTL is
        # ``now - requests_since``: the slots change then by time alone.
        released_at = from_micros(min(requested)) + (now - requests_since) if requested else None
        active = [calendar for calendar in calendars if calendar.status == CalendarStatus.ACTIVE]
        synced = [calendar.busy_synced_at for calendar in calendars if calendar.busy_synced_at is not None]
        return BusyTime(
            calendars=busy,
            bookings=bookings,
            as_of=min(now, *synced) if synced else now,
            inactive=len(active) < len(calendars),
            known=known_range([(calendar.covered_from, calendar.covered_until) for calendar in active]),
            failing=any(calendar.busy_failed_at is not None for calendar in active),
            released_at=released_at,
        )


# Built once, run with bind parameters: building and hashing these statements on every request
# cost about as much as running them. UTCDateTime converts the bounds to UTC as they are bound
# (SQLite compares the stored text).
_INTEGRATED = (
    select(col(Calendar.id))
    .join(CalendarConnection, col(Calendar.connection_id) == col(CalendarConnection.id))
    .where(col(CalendarConnection.user_id) == bindparam("owner_id"), col(Calendar.integrated).is_(True))
    .scalar_subquery()
)
# The state of the owner's integrated calendars: few rows, read as values (not ORM objects).
_CALENDARS = Plain(
    select(
        col(Calendar.status),
        col(Calendar.busy_synced_at),
        col(Calendar.covered_from),
        col(Calendar.covered_until),
        col(Calendar.busy_failed_at),
    ).where(col(Calendar.id).in_(_INTEGRATED))
)


class CalendarRow(NamedTuple):
    """One row of ``_CALENDARS``: a calendar's state as ``CalendarState`` reads it."""

    status: CalendarStatus
    busy_synced_at: datetime | None
    covered_from: datetime | None
    covered_until: datetime | None
    busy_failed_at: datetime | None


# (start, end, booking id as text, request time) in microseconds: the integrated calendars' busy
# time (no booking id), then the owner's bookings holding time, overlapping [start, end).
_BUSY_ROWS = Plain(
    union_all(
        select(
            epoch_micros(col(BusyInterval.start_at)),
            epoch_micros(col(BusyInterval.end_at)),
            cast(null(), String),
            cast(null(), BigInteger),
        ).where(
            col(BusyInterval.calendar_id).in_(_INTEGRATED),
            col(BusyInterval.start_at) < bindparam("end"),
            col(BusyInterval.end_at) > bindparam("start"),
        ),
        select(
            epoch_micros(col(Booking.start_at)),
            epoch_micros(col(Booking.end_at)),
            cast(col(Booking.id), String),
            case((col(Booking.status) == BookingStatus.REQUESTED, epoch_micros(col(Booking.created_at)))),
        ).where(
            col(Booking.owner_id) == bindparam("owner_id"),
            blocks_time(bindparam("requests_since", type_=UTCDateTime)),
            col(Booking.start_at) < bindparam("end"),
            col(Booking.end_at) > bindparam("start"),
        ),
    )
)
