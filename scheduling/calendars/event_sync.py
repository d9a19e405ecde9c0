"""Busy time kept from a calendar's events, round by round, touching only what changed.

For providers that can say what changed since the last round (``IncrementalSync``): the first
round lists the events of a window and keeps the provider's sync token; each later round asks
only for the changes since and applies them to the events' rows; a token the provider forgot
means a full round again. A full round's window reaches ``SLACK`` beyond what the pages need,
so cheap incremental rounds serve for weeks before the window has to move on.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import BookingStatus, CalendarWrite
from db.engine import Database
from db.models import Booking, BusyInterval, Calendar, OutboxMessage
from providers.base import EventChanges, IncrementalSync
from providers.errors import SyncTokenExpired
from scheduling import outbox

SLACK = timedelta(days=14)
_IDS_PER_STATEMENT = 500  # bound parameters per DELETE, well under every driver's limit


async def sync_calendar(
    db: Database, client: IncrementalSync, calendar: Calendar, *, start: datetime, end: datetime, now: datetime
) -> bool:
    """One round for ``calendar`` so its busy time covers [start, end); True when it changed."""
    covered = (calendar.covered_from, calendar.covered_until)
    incremental = calendar.sync_token is not None and covered[0] is not None and covered[1] is not None
    if incremental and covered[0] is not None and covered[1] is not None and covered[0] <= start and end <= covered[1]:
        try:
            changes = await client.list_changes(
                calendar.external_id, sync_token=calendar.sync_token, start=covered[0], end=covered[1]
            )
            return await _apply(db, calendar.id, changes, (covered[0], covered[1]), now, since=calendar.sync_token)
        except SyncTokenExpired:
            pass  # the provider forgot where we were: everything again
    window = (start, end + SLACK)
    changes = await client.list_changes(calendar.external_id, sync_token=None, start=window[0], end=window[1])
    return await _apply(db, calendar.id, changes, window, now, since=calendar.sync_token)


class _Superseded(Exception):
    """Another round of this calendar (another process, a notification) stored its result first."""


async def _apply(
    db: Database,
    calendar_id: uuid.UUID,
    changes: EventChanges,
    window: tuple[datetime, datetime],
    now: datetime,
    *,
    since: str | None,
) -> bool:
    """Store a round: a full one replaces the calendar's rows, an incremental one only the rows
    of the events it names. Busy events outside the window are not kept (nothing asks there).

    A round is stored only if the calendar's token is still the one it started from: rounds of
    one calendar may overlap (processes, notifications), and an older one finishing last must
    not put back what a newer one replaced. The later round is then simply dropped.
    """
    try:
        return await _store_round(db, calendar_id, changes, window, now, since=since)
    except _Superseded:
        return False


async def _store_round(
    db: Database,
    calendar_id: uuid.UUID,
    changes: EventChanges,
    window: tuple[datetime, datetime],
    now: datetime,
    *,
    since: str | None,
) -> bool:
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
        if not changes.full:
            await _follow_own_events(session, calendar_id, changes, now)
    return changed


async def _follow_own_events(
    session: AsyncSession, calendar_id: uuid.UUID, changes: EventChanges, now: datetime
) -> None:
    """A booking's event that the owner deleted or moved in the calendar: queue the booking to follow.

    Only events in place count (the booking's last write reached the calendar): a change we
    made ourselves comes back at the booking's own time and asks for nothing, so it never
    echoes as the owner's.
    """
    touched = {event.event_id: event for event in changes.changed} | {event_id: None for event_id in changes.deleted}
    if not touched:
        return
    ids = list(touched)
    bookings: list[Booking] = []
    for first in range(0, len(ids), _IDS_PER_STATEMENT):
        found = await session.exec(
            select(Booking).where(
                Booking.calendar_event_calendar_id == calendar_id,
                col(Booking.calendar_event_id).in_(ids[first : first + _IDS_PER_STATEMENT]),
                Booking.status == BookingStatus.CONFIRMED,
                Booking.calendar_write == CalendarWrite.DONE,
            )
        )
        bookings.extend(found.all())
    for booking in bookings:
        event = touched[booking.calendar_event_id or ""]
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
