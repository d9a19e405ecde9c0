"""Busy time kept from a calendar's events, round by round, touching only what changed.

For providers that can say what changed since the last round (``IncrementalSync``): the first
round lists the events of a window and keeps the provider's sync token; each later round asks
only for the changes since and applies them to the events' rows; a token the provider forgot
means a full round again. A full round's window reaches ``SLACK`` beyond what the pages need,
so cheap incremental rounds serve for weeks before the window has to move on.

The same events feed calendar sync (meetings on the owner's contacts): a stored round hands
them to ``RoundHook`` inside its own transaction, so a round that another one superseded
imports nothing either, and a notification's round logs its meetings when it stores busy time.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import BookingStatus, CalendarWrite
from db.engine import Database
from db.models import Booking, BusyInterval, Calendar, OutboxMessage
from providers.base import CalendarEvent, EventChanges, IncrementalSync
from providers.errors import SyncTokenExpired
from scheduling import outbox

logger = logging.getLogger(__name__)

SLACK = timedelta(days=14)
_IDS_PER_STATEMENT = 500  # bound parameters per DELETE, well under every driver's limit


class RoundHook(Protocol):
    """What else a stored round feeds, in the round's transaction: every event it read (a full
    round: the whole ``window``), and the ids it says were deleted."""

    async def __call__(
        self,
        session: AsyncSession,
        calendar: Calendar,
        changes: EventChanges,
        *,
        window: tuple[datetime, datetime],
        now: datetime,
    ) -> None: ...


@dataclass(frozen=True)
class Round:
    """What a round did: whether busy time changed, and whether every event was read (``full``)."""

    changed: bool
    full: bool


async def sync_calendar(
    db: Database,
    client: IncrementalSync,
    calendar: Calendar,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    on_round: RoundHook | None = None,
) -> Round:
    """One round for ``calendar`` so its busy time covers [start, end); ``on_round`` gets the
    round's events too (None: busy time alone)."""
    # Bookings whose event was in place before the provider is asked: a full answer must list
    # them, so one it leaves out was deleted by the owner (not written after the listing).
    written = await _written_bookings(db, calendar.id, since=start)
    covered = (calendar.covered_from, calendar.covered_until)
    incremental = calendar.sync_token is not None and covered[0] is not None and covered[1] is not None
    if incremental and covered[0] is not None and covered[1] is not None and covered[0] <= start and end <= covered[1]:
        try:
            changes = await client.list_changes(
                calendar.external_id, sync_token=calendar.sync_token, start=covered[0], end=covered[1]
            )
        except SyncTokenExpired:
            pass  # the provider forgot where we were: everything again
        else:
            named = {event.event_id for event in changes.changed} | set(changes.deleted)
            if changes.full or not written.unseen - named:
                window = (covered[0], covered[1])
                changed = await _apply(
                    db, calendar, changes, window, now, since=calendar.sync_token, written=written, on_round=on_round
                )
                return Round(changed, changes.full)
            # An event of ours that no round has named, and this one does not either: made and
            # deleted again since the last round (Exchange then says nothing at all). A full
            # round tells whether it is still there.
    window = (start, end + SLACK)
    changes = await client.list_changes(calendar.external_id, sync_token=None, start=window[0], end=window[1])
    stored = await _apply(
        db, calendar, changes, window, now, since=calendar.sync_token, written=written, on_round=on_round
    )
    return Round(stored, True)


@dataclass(frozen=True)
class _Written:
    """The calendar's bookings whose event was in place when a round began."""

    ids: frozenset[uuid.UUID]
    unseen: frozenset[str]  # their events that no round has named yet


async def _written_bookings(db: Database, calendar_id: uuid.UUID, *, since: datetime) -> _Written:
    async with db.session() as session:
        found = (
            await session.exec(
                select(Booking.id, Booking.calendar_event_id, Booking.calendar_event_seen_at).where(
                    *_in_place(calendar_id), col(Booking.end_at) > since
                )
            )
        ).all()
    return _Written(
        ids=frozenset(row[0] for row in found),
        unseen=frozenset(row[1] for row in found if row[1] is not None and row[2] is None),
    )


def _in_place(calendar_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
    """Confirmed bookings whose event on the calendar is written where the booking is."""
    return (
        col(Booking.calendar_event_calendar_id) == calendar_id,
        col(Booking.status) == BookingStatus.CONFIRMED,
        col(Booking.calendar_write) == CalendarWrite.DONE,
    )


class _Superseded(Exception):
    """Another round of this calendar (another process, a notification) stored its result first."""


async def _apply(
    db: Database,
    calendar: Calendar,
    changes: EventChanges,
    window: tuple[datetime, datetime],
    now: datetime,
    *,
    since: str | None,
    written: _Written,
    on_round: RoundHook | None,
) -> bool:
    """Store a round: a full one replaces the calendar's rows, an incremental one only the rows
    of the events it names. Busy events outside the window are not kept (nothing asks there).

    A round is stored only if the calendar's token is still the one it started from: rounds of
    one calendar may overlap (processes, notifications), and an older one finishing last must
    not put back what a newer one replaced. The later round is then simply dropped.
    """
    try:
        return await _store_round(db, calendar, changes, window, now, since=since, written=written, on_round=on_round)
    except _Superseded:
        return False


async def _store_round(
    db: Database,
    calendar: Calendar,
    changes: EventChanges,
    window: tuple[datetime, datetime],
    now: datetime,
    *,
    since: str | None,
    written: _Written,
    on_round: RoundHook | None,
) -> bool:
    calendar_id = calendar.id
    kept = [
        BusyInterval(
            calendar_id=calendar_id, start_at=event.start, end_at=event.end, external_id=event.event_id, updated_at=now
        )
        for event in changes.changed
        if event.busy and event.start < window[1] and window[0] < event.end
    ]
    async with db.transaction() as session:
        values: dict[str, object] = {"sync_token": changes.sync_token, "busy_synced_at": now, "busy_failed_at": None}
        if changes.full:
            values.update(covered_from=window[0], covered_until=window[1])
        same_token = col(Calendar.sync_token).is_(None) if since is None else col(Calendar.sync_token) == since
        claimed = await session.exec(
            update(Calendar).where(col(Calendar.id) == calendar_id, same_token).values(**values)
        )
        if claimed.rowcount != 1:
            raise _Superseded(str(calendar_id))
        if changes.full:
            before = (
                await session.exec(
                    select(col(BusyInterval.start_at), col(BusyInterval.end_at), col(BusyInterval.external_id)).where(
                        BusyInterval.calendar_id == calendar_id
                    )
                )
            ).all()
            changed = {(row[0], row[1], row[2]) for row in before} != {
                (row.start_at, row.end_at, row.external_id) for row in kept
            }
            await session.exec(delete(BusyInterval).where(col(BusyInterval.calendar_id) == calendar_id))
        else:
            touched = [event.event_id for event in changes.changed] + list(changes.deleted)
            removed = 0
            for first in range(0, len(touched), _IDS_PER_STATEMENT):
                batch = touched[first : first + _IDS_PER_STATEMENT]
                counted = await session.exec(
                    select(func.count())
                    .select_from(BusyInterval)
                    .where(BusyInterval.calendar_id == calendar_id, col(BusyInterval.external_id).in_(batch))
                )
                removed += counted.one()
                await session.exec(
                    delete(BusyInterval).where(
                        col(BusyInterval.calendar_id) == calendar_id, col(BusyInterval.external_id).in_(batch)
                    )
                )
            changed = bool(removed or kept)
        session.add_all(kept)
        await _follow_own_events(session, calendar_id, changes, now, window=window, written=written)
        if on_round is not None:
            await _feed(on_round, session, calendar, changes, window=window, now=now)
    return changed


async def _feed(
    on_round: RoundHook,
    session: AsyncSession,
    calendar: Calendar,
    changes: EventChanges,
    *,
    window: tuple[datetime, datetime],
    now: datetime,
) -> None:
    """Run the hook in a savepoint: its failure (a bug) is logged and undone, and busy time is
    stored all the same."""
    try:
        async with session.begin_nested():
            await on_round(session, calendar, changes, window=window, now=now)
    except Exception:
        logger.exception("calendar %s: the round's events were not imported", calendar.id)


async def _follow_own_events(
    session: AsyncSession,
    calendar_id: uuid.UUID,
    changes: EventChanges,
    now: datetime,
    *,
    window: tuple[datetime, datetime],
    written: _Written,
) -> None:
    """A booking's event that the owner deleted or moved in the calendar: queue the booking to follow.

    Only events in place count (the booking's last write reached the calendar): a change we
    made ourselves comes back at the booking's own time and asks for nothing, so it never
    echoes as the owner's. An incremental round names what changed; a full one lists every
    event of its window, so a booking of the window whose event it leaves out was deleted, if
    that event was written before the round asked (``written``).
    """
    touched: dict[str, CalendarEvent | None] = {event.event_id: event for event in changes.changed}
    touched |= {event_id: None for event_id in changes.deleted}
    bookings: list[Booking] = []
    if changes.full:
        booking_ids = list(written.ids)
        for first in range(0, len(booking_ids), _IDS_PER_STATEMENT):
            found = await session.exec(
                select(Booking).where(
                    *_in_place(calendar_id),
                    col(Booking.id).in_(booking_ids[first : first + _IDS_PER_STATEMENT]),
                    col(Booking.start_at) >= window[0],
                    col(Booking.end_at) <= window[1],
                )
            )
            bookings.extend(found.all())
    else:
        event_ids = list(touched)
        for first in range(0, len(event_ids), _IDS_PER_STATEMENT):
            found = await session.exec(
                select(Booking).where(
                    *_in_place(calendar_id),
                    col(Booking.calendar_event_id).in_(event_ids[first : first + _IDS_PER_STATEMENT]),
                )
            )
            bookings.extend(found.all())
    seen = [booking.id for booking in bookings if booking.calendar_event_seen_at is None]
    for first in range(0, len(seen), _IDS_PER_STATEMENT):
        batch = seen[first : first + _IDS_PER_STATEMENT]
        await session.exec(update(Booking).where(col(Booking.id).in_(batch)).values(calendar_event_seen_at=now))
    for booking in bookings:
        event = touched.get(booking.calendar_event_id or "")
        if event is not None and (event.start, event.end) == (booking.start_at, booking.end_at):
            continue  # where the booking is: nothing to follow
        payload: dict[str, object] = {
            "booking_id": booking.id.hex,
            "deleted": event is None,
            # Where the booking was when this was seen: if it moved since, ours is newer.
            "seen_start": booking.start_at.isoformat(),
            "seen_end": booking.end_at.isoformat(),
        }
        if event is not None:
            payload.update(start=event.start.isoformat(), end=event.end.isoformat())
        session.add(OutboxMessage(kind=outbox.BOOKING_FOLLOW_CALENDAR, payload=payload, available_at=now))
