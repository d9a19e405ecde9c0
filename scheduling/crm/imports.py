"""Calendar sync: meetings the owner makes in the primary calendar, logged on their contacts.

``import_events`` is a sync round's hook (``calendars.event_sync.RoundHook``): it runs in the
round's own transaction with the events the round read, so the notification that started the
round logs the meeting too, and a round that lost to a newer one imports nothing either. Only
the primary calendar of a connection counts (as in HubSpot). A meeting follows its event: moved
with it, removed when the event is deleted or stops qualifying, or when a contact is no longer
a guest. Turning calendar sync off leaves the meetings logged so far as they are.

Each decision leaves one ``calendar_imports`` row: one per event and change, never one per
round for an event that did not change (a full round reads every event again), and only the
newest ``KEPT_DECISIONS`` of an owner are kept.

Meetings the owner made here are not imported (their events are Kokous's), but they follow
their events too, calendar sync on or off: moved or renamed with them, removed when the owner
deletes them in the calendar. Only an event written where its meeting is counts: while a change
of ours is on its way, the event is not yet what the meeting says. A round that read the event
just before our write landed may move the meeting back; the write's own notification starts
the round that sets it right again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, delete, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import BookingStatus, CalendarWrite, MeetingSource
from db.models import Booking, Calendar, CalendarConnection, CalendarImport, Contact, Meeting
from providers.base import CalendarEvent, EventChanges
from scheduling.crm.import_rules import EVENT_DELETED, OWN_FOLLOWED, SYNC_OFF, Decision, decide, listed

logger = logging.getLogger(__name__)

KEPT_DECISIONS = 500  # per owner: the newest decisions, enough to read what sync did lately
_BATCH = 500  # bound parameters per IN list, well under every driver's limit
_TITLE = 300  # the columns' length

T = TypeVar("T")


async def import_events(
    session: AsyncSession,
    calendar: Calendar,
    changes: EventChanges,
    *,
    window: tuple[datetime, datetime],
    now: datetime,
) -> None:
    """Log, update or remove the meetings of the round's events, and note each decision."""
    if not calendar.is_primary or not (changes.changed or changes.deleted or changes.full):
        return  # another calendar, or a round that found nothing new: nothing to decide
    connection = await session.get(CalendarConnection, calendar.connection_id)
    if connection is None:
        return
    known = await _Known.load(session, connection, calendar, changes, window, now)
    notes = [note for event in changes.changed if (note := await _decide_event(session, known, event, now))]
    notes += [
        note
        for event_id in [*changes.deleted, *known.own_unlisted]
        if (note := await _own_deleted(session, known, event_id))
    ]
    if connection.calendar_sync:
        notes += [
            note
            for event_id in [*changes.deleted, *known.unlisted]
            if (note := await _deleted(session, known, event_id))
        ]
    if notes:
        at = await _decided_at(session, connection.user_id, now)
        session.add_all(note.row(known, at) for note in notes)
        await session.flush()
        await _prune(session, connection.user_id)
        logger.debug("calendar %s: %d calendar sync decisions", calendar.id, len(notes))


@dataclass(frozen=True)
class _Note:
    """One decision to note for the owner."""

    event_id: str
    title: str
    start: datetime
    imported: bool
    reason: str

    def row(self, known: _Known, at: datetime) -> CalendarImport:
        return CalendarImport(
            owner_id=known.owner_id,
            calendar_id=known.calendar_id,
            external_event_id=self.event_id,
            title=self.title[:_TITLE],
            start_at=self.start,
            imported=self.imported,
            reason=self.reason[:_TITLE],
            at=at,
        )

    @property
    def same_as(self) -> tuple[bool, str, str, datetime]:
        """What a newer note must differ in to be noted again."""
        return (self.imported, self.reason[:_TITLE], self.title[:_TITLE], self.start)


@dataclass
class _Known:
    """What the round's decisions need from the database, read in a few batched queries."""

    owner_id: uuid.UUID
    calendar_id: uuid.UUID
    sync_on: bool
    connected_at: datetime
    contacts: dict[str, uuid.UUID]  # lower-cased address -> contact
    our_events: set[str]  # the round's events that Kokous wrote (bookings', owners' meetings')
    meetings: dict[str, list[tuple[Meeting, str]]]  # event id -> its meetings, with the contact's address
    last: dict[str, tuple[bool, str, str, datetime]]  # event id -> its newest decision
    unlisted: list[str]  # a full round's window left these imported events out: deleted
    own: dict[str, tuple[Meeting, str]]  # event id -> the owner's meeting written there, in place
    own_unlisted: list[str]  # a full round's window left these events of owner's meetings out

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        connection: CalendarConnection,
        calendar: Calendar,
        changes: EventChanges,
        window: tuple[datetime, datetime],
        began: datetime,
    ) -> _Known:
        owner_id = connection.user_id
        events = changes.changed
        unlisted = await _unlisted(session, _synced(calendar.id), events, window) if changes.full else []
        # Left out of a full round is deleted only for an event written before the round began:
        # one written later may simply have been made after the listing.
        own_unlisted = (
            await _unlisted(session, _in_place(calendar.id, before=began), events, window) if changes.full else []
        )
        named = [event.event_id for event in events] + list(changes.deleted) + unlisted
        # The events' meetings, those found in the calendar and the owner's in place, in one read.
        followed = await _meetings(session, _followed(calendar.id), [*named, *own_unlisted])
        addresses = sorted({address for event in events for address in event.attendees})
        return cls(
            owner_id=owner_id,
            calendar_id=calendar.id,
            sync_on=connection.calendar_sync,
            connected_at=connection.created_at,
            contacts=await _contacts(session, owner_id, addresses),
            our_events=await _our_events(session, owner_id, calendar.id, events),
            meetings={
                event_id: synced
                for event_id, rows in followed.items()
                if (synced := [row for row in rows if row[0].source == MeetingSource.CALENDAR_SYNC])
            },
            last=await _last_decisions(session, owner_id, calendar.id, [event.event_id for event in events]),
            unlisted=unlisted,
            own={
                event_id: own[0]
                for event_id, rows in followed.items()
                if (own := [row for row in rows if row[0].source == MeetingSource.OWNER])
            },
            own_unlisted=own_unlisted,
        )


async def _decide_event(session: AsyncSession, known: _Known, event: CalendarEvent, now: datetime) -> _Note | None:
    """Apply the decision on one changed event; its note, unless nothing changed for the owner."""
    own = known.own.get(event.event_id)
    if own is not None and (followed := await _own_changed(session, own, event, now)):
        return followed
    decision = decide(
        event,
        contacts=known.contacts.keys(),
        sync_on=known.sync_on,
        connected_at=known.connected_at,
        written_by_us=event.event_id in known.our_events,
    )
    meetings = known.meetings.get(event.event_id, [])
    if decision.imported:
        reason = await _follow(session, known, event, decision, meetings, now)
        return _Note(event.event_id, event.title, event.start, True, reason) if reason else None
    removed = [] if decision.why == SYNC_OFF else await _remove(session, meetings)
    reason = f"meeting with {listed(removed)} removed: {decision.why}" if removed else decision.reason
    note = _Note(event.event_id, event.title, event.start, False, reason)
    return None if known.last.get(event.event_id) == note.same_as else note


async def _follow(
    session: AsyncSession,
    known: _Known,
    event: CalendarEvent,
    decision: Decision,
    meetings: list[tuple[Meeting, str]],
    now: datetime,
) -> str:
    """Make the event's meetings match the decision; what changed, as a reason ("" for nothing)."""
    kept = {meeting.contact_id: meeting for meeting, _ in meetings}
    wanted = {known.contacts[address]: address for address in decision.contacts}
    title = (event.title or "(no title)")[:_TITLE]
    added, updated = [], []
    for contact_id, address in wanted.items():
        meeting = kept.get(contact_id)
        if meeting is None:
            session.add(_meeting(known, contact_id, event, title, now))
            added.append(address)
        elif (meeting.title, meeting.start_at, meeting.end_at) != (title, event.start, event.end):
            meeting.title, meeting.start_at, meeting.end_at, meeting.updated_at = title, event.start, event.end, now
            session.add(meeting)
            updated.append(address)
    removed = await _remove(
        session, [(meeting, address) for meeting, address in meetings if meeting.contact_id not in wanted]
    )
    parts = [f"imported as a meeting with {listed(added)}"] if added else []
    parts += [f"meeting with {listed(updated)} updated from its event"] if updated else []
    parts += [f"meeting with {listed(removed)} removed: no longer a guest"] if removed else []
    return "; ".join(parts)


async def _deleted(session: AsyncSession, known: _Known, event_id: str) -> _Note | None:
    """An event gone from the calendar takes its meetings along."""
    meetings = known.meetings.get(event_id, [])
    if not meetings:
        return None
    first = meetings[0][0]
    removed = await _remove(session, meetings)
    return _Note(
        event_id, first.title, first.start_at, False, f"meeting with {listed(removed)} removed: {EVENT_DELETED}"
    )


async def _own_changed(
    session: AsyncSession, own: tuple[Meeting, str], event: CalendarEvent, now: datetime
) -> _Note | None:
    """The owner changed the event of a meeting they made here: the meeting follows."""
    meeting, address = own
    if event.cancelled:
        return await _own_deleted_meeting(session, meeting, address, event.event_id)
    title = (event.title or "(no title)")[:_TITLE]
    if (meeting.title, meeting.start_at, meeting.end_at) == (title, event.start, event.end):
        return None  # where it is: nothing to follow (our own write coming back, too)
    meeting.title, meeting.start_at, meeting.end_at, meeting.updated_at = title, event.start, event.end, now
    session.add(meeting)
    return _Note(event.event_id, title, event.start, False, f"your meeting with {address} {OWN_FOLLOWED}")


async def _own_deleted(session: AsyncSession, known: _Known, event_id: str) -> _Note | None:
    own = known.own.get(event_id)
    return None if own is None else await _own_deleted_meeting(session, *own, event_id)


async def _own_deleted_meeting(session: AsyncSession, meeting: Meeting, address: str, event_id: str) -> _Note:
    """The owner deleted (or cancelled) the event of a meeting they made here: it is cancelled
    too; the provider told the contact as the owner chose."""
    await session.delete(meeting)
    return _Note(
        event_id, meeting.title, meeting.start_at, False, f"your meeting with {address} removed: {EVENT_DELETED}"
    )


async def _remove(session: AsyncSession, meetings: Sequence[tuple[Meeting, str]]) -> list[str]:
    for meeting, _ in meetings:
        await session.delete(meeting)
    return [address for _, address in meetings]


def _meeting(known: _Known, contact_id: uuid.UUID, event: CalendarEvent, title: str, now: datetime) -> Meeting:
    """A meeting from the calendar: the contact is a guest of its event, so the owner's calendar
    invited them (``calendar_invitation_sent``), as it does for meetings the owner makes here."""
    return Meeting(
        owner_id=known.owner_id,
        contact_id=contact_id,
        title=title,
        start_at=event.start,
        end_at=event.end,
        source=MeetingSource.CALENDAR_SYNC,
        calendar_invitation_sent=True,
        calendar_id=known.calendar_id,
        external_event_id=event.event_id,
        created_at=now,
        updated_at=now,
    )


# -- reading ----------------------------------------------------------------------------------


def _batches(items: Sequence[T]) -> Iterable[Sequence[T]]:
    return (items[first : first + _BATCH] for first in range(0, len(items), _BATCH))


async def _contacts(session: AsyncSession, owner_id: uuid.UUID, addresses: Sequence[str]) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for batch in _batches(addresses):
        rows = await session.exec(
            select(col(Contact.id), func.lower(Contact.email)).where(
                col(Contact.owner_id) == owner_id, func.lower(Contact.email).in_(batch)
            )
        )
        found.update({str(address): contact_id for contact_id, address in rows.all()})
    return found


async def _our_events(
    session: AsyncSession, owner_id: uuid.UUID, calendar_id: uuid.UUID, events: Sequence[CalendarEvent]
) -> set[str]:
    """Events Kokous wrote, by the event id their booking or meeting stored; or, for an event an
    app marked without saying which, a booking or meeting whose event is being written right
    then (its id not stored yet) at exactly that time."""
    ids = [event.event_id for event in events if event.app is None or not event.app.ours]
    found: set[str] = set()
    for batch in _batches(ids):
        for statement in (
            select(col(Booking.calendar_event_id)).where(
                col(Booking.calendar_event_calendar_id) == calendar_id, col(Booking.calendar_event_id).in_(batch)
            ),
            select(col(Meeting.external_event_id)).where(
                col(Meeting.calendar_id) == calendar_id,
                col(Meeting.source) != MeetingSource.CALENDAR_SYNC,
                col(Meeting.external_event_id).in_(batch),
            ),
        ):
            found.update(str(event_id) for event_id in (await session.exec(statement)).all())
    unsure: dict[tuple[datetime, datetime], list[str]] = {}
    for event in events:
        if event.app is not None and event.app.ours is None and event.event_id not in found:
            unsure.setdefault((event.start, event.end), []).append(event.event_id)
    for times in await _being_written(session, owner_id, calendar_id, sorted({start for start, _ in unsure})):
        found.update(unsure.get(times, []))
    return found


async def _being_written(
    session: AsyncSession, owner_id: uuid.UUID, calendar_id: uuid.UUID, starts: Sequence[datetime]
) -> set[tuple[datetime, datetime]]:
    """The times, among ``starts``, of the owner's bookings and meetings whose event is being written."""
    found: set[tuple[datetime, datetime]] = set()
    for batch in _batches(starts):
        for statement in (
            select(col(Booking.start_at), col(Booking.end_at)).where(
                col(Booking.owner_id) == owner_id,
                col(Booking.status) == BookingStatus.CONFIRMED,
                col(Booking.calendar_write) == CalendarWrite.PENDING,
                col(Booking.start_at).in_(batch),
            ),
            select(col(Meeting.start_at), col(Meeting.end_at)).where(
                col(Meeting.calendar_id) == calendar_id,
                col(Meeting.source) != MeetingSource.CALENDAR_SYNC,
                col(Meeting.external_event_id).is_(None),
                col(Meeting.start_at).in_(batch),
            ),
        ):
            found.update((start, end) for start, end in (await session.exec(statement)).all())
    return found


async def _meetings(
    session: AsyncSession, which: tuple[ColumnElement[bool], ...], event_ids: Sequence[str]
) -> dict[str, list[tuple[Meeting, str]]]:
    found: dict[str, list[tuple[Meeting, str]]] = {}
    for batch in _batches(sorted(set(event_ids))):
        rows = await session.exec(
            select(Meeting, Contact.email)
            .join(Contact, col(Contact.id) == col(Meeting.contact_id))
            .where(*which, col(Meeting.external_event_id).in_(batch))
        )
        for meeting, address in rows.all():
            found.setdefault(str(meeting.external_event_id), []).append((meeting, address.lower()))
    return found


async def _unlisted(
    session: AsyncSession,
    which: tuple[ColumnElement[bool], ...],
    listed_events: Sequence[CalendarEvent],
    window: tuple[datetime, datetime],
) -> list[str]:
    """Events with meetings in a full round's window that the round did not list: deleted."""
    rows = await session.exec(
        select(col(Meeting.external_event_id))
        .where(*which, col(Meeting.start_at) < window[1], col(Meeting.end_at) > window[0])
        .distinct()
    )
    listed_ids = {event.event_id for event in listed_events}
    return sorted(str(event_id) for event_id in rows.all() if event_id not in listed_ids)


def _synced(calendar_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
    """Meetings calendar sync logged from the calendar's events."""
    return (col(Meeting.calendar_id) == calendar_id, col(Meeting.source) == MeetingSource.CALENDAR_SYNC)


def _followed(calendar_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
    """Meetings that follow the calendar's events: calendar sync's, and the owner's in place."""
    synced, in_place = and_(*_synced(calendar_id)), and_(*_in_place(calendar_id))
    return (or_(synced, in_place),)


def _in_place(calendar_id: uuid.UUID, *, before: datetime | None = None) -> tuple[ColumnElement[bool], ...]:
    """Meetings the owner made here whose event was written where they are (``before``: by then)."""
    written = col(Meeting.calendar_event_written_at)
    return (
        col(Meeting.calendar_id) == calendar_id,
        col(Meeting.source) == MeetingSource.OWNER,
        col(Meeting.external_event_id).is_not(None),
        written.is_not(None) if before is None else written < before,
    )


async def _last_decisions(
    session: AsyncSession, owner_id: uuid.UUID, calendar_id: uuid.UUID, event_ids: Sequence[str]
) -> dict[str, tuple[bool, str, str, datetime]]:
    """The newest decision on each event, so an unchanged one is not noted again."""
    last: dict[str, tuple[datetime, tuple[bool, str, str, datetime]]] = {}
    for batch in _batches(sorted(set(event_ids))):
        rows = await session.exec(
            select(CalendarImport).where(
                col(CalendarImport.owner_id) == owner_id,
                col(CalendarImport.calendar_id) == calendar_id,
                col(CalendarImport.external_event_id).in_(batch),
            )
        )
        for row in rows.all():
            seen = last.get(row.external_event_id)
            if seen is None or row.at > seen[0]:
                last[row.external_event_id] = (row.at, (row.imported, row.reason, row.title, row.start_at))
    return {event_id: decision for event_id, (_, decision) in last.items()}


# -- writing ----------------------------------------------------------------------------------


async def _decided_at(session: AsyncSession, owner_id: uuid.UUID, now: datetime) -> datetime:
    """``now``, but never before the owner's newest decision: the newest is always last, even
    when clocks of processes disagree a little (or a test's clock stands still)."""
    newest = (
        await session.exec(select(func.max(CalendarImport.at)).where(col(CalendarImport.owner_id) == owner_id))
    ).one()
    return now if newest is None or newest < now else newest + timedelta(microseconds=1)


async def _prune(session: AsyncSession, owner_id: uuid.UUID) -> None:
    """Keep the owner's newest ``KEPT_DECISIONS`` decisions."""
    stale = (
        select(col(CalendarImport.id))
        .where(col(CalendarImport.owner_id) == owner_id)
        .order_by(col(CalendarImport.at).desc(), col(CalendarImport.id).desc())
        .offset(KEPT_DECISIONS)
    )
    await session.exec(delete(CalendarImport).where(col(CalendarImport.id).in_(stale)))
