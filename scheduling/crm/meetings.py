"""Meetings the owner makes on a contact: recorded, and with calendar sync on, put in the calendar.

With calendar sync on (a connection with it on whose primary calendar can be written), the
meeting commits with an outbox row that writes its event with the contact invited: the
provider mails the invitation from the owner's own account. Moving or cancelling it later
queues the matching update or delete; and when the owner moves, renames or deletes its event in
the calendar, the meeting follows (``imports.py``). With calendar sync off the meeting is only
recorded and no calendar is asked anything, then or later.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import MeetingSource
from db.engine import Database
from db.models import Contact, Meeting, OutboxMessage
from scheduling import outbox
from scheduling.calendars.writes import calendar_sync_calendar
from scheduling.clock import Clock
from scheduling.crm import rules
from scheduling.crm.timeline import meetings_of, view_of
from scheduling.crm.values import MeetingChange, MeetingDraft, MeetingView, Removed
from scheduling.errors import InvalidInput, NotFound, Refused, ValidationFailed

MeetingResult = MeetingView | InvalidInput | NotFound
_NO_CONTACT = NotFound(message="contact not found")
_NO_MEETING = NotFound(message="meeting not found")
_NOT_OWN = InvalidInput(
    message="only meetings you made on a contact change here; a booking changes through its own mutations, "
    "a meeting from your calendar in the calendar",
    field="id",
)


class MeetingService:
    def __init__(self, *, db: Database, clock: Clock, wake_outbox: Callable[[], None]) -> None:
        self._db = db
        self._clock = clock
        self._wake_outbox = wake_outbox

    async def of_contacts(
        self, owner_id: uuid.UUID, contact_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[MeetingView]]:
        async with self._db.session() as session:
            return await meetings_of(session, owner_id, contact_ids)

    async def create(self, owner_id: uuid.UUID, draft: MeetingDraft) -> MeetingResult:
        try:
            title = rules.title(draft.title)
            start, end = rules.meeting_times(draft.start, draft.end)
        except ValidationFailed as failure:
            return failure.as_result()
        now = self._clock()
        async with self._db.transaction() as session:
            contact = await session.get(Contact, draft.contact_id)
            if contact is None or contact.owner_id != owner_id:
                return _NO_CONTACT
            calendar = await calendar_sync_calendar(session, owner_id)
            meeting = Meeting(
                owner_id=owner_id,
                contact_id=contact.id,
                title=title,
                start_at=start,
                end_at=end,
                source=MeetingSource.OWNER,
                # Queued with the meeting, the invitation goes out however long the provider takes.
                calendar_invitation_sent=calendar is not None,
                calendar_id=calendar.id if calendar is not None else None,
                created_at=now,
                updated_at=now,
            )
            session.add(meeting)
            await session.flush()
            self._queue(session, meeting, outbox.MEETING_CREATE_EVENT)
        self._woken(meeting)
        return view_of(meeting)

    async def update(self, owner_id: uuid.UUID, meeting_id: uuid.UUID, change: MeetingChange) -> MeetingResult:
        """Rename or move a meeting the owner made; its calendar event (if it has one) follows."""
        try:
            async with self._db.transaction() as session:
                meeting = await _own_meeting(session, owner_id, meeting_id)
                if change.title is not None:
                    meeting.title = rules.title(change.title)
                meeting.start_at, meeting.end_at = rules.meeting_times(*_moved(meeting, change))
                meeting.updated_at = self._clock()
                meeting.calendar_event_written_at = None  # on its way: the event is not where it is
                session.add(meeting)
                self._queue(session, meeting, outbox.MEETING_UPDATE_EVENT)
        except Refused as refused:
            return cast(InvalidInput | NotFound, refused.result)
        self._woken(meeting)
        return view_of(meeting)

    async def delete(self, owner_id: uuid.UUID, meeting_id: uuid.UUID) -> Removed | InvalidInput | NotFound:
        """Cancel a meeting the owner made; its calendar event (if it has one) is deleted, and the
        provider tells the contact."""
        try:
            async with self._db.transaction() as session:
                meeting = await _own_meeting(session, owner_id, meeting_id)
                # The event as far as it is known now: a write under way finds the meeting gone
                # and deletes what it wrote itself.
                self._queue(
                    session,
                    meeting,
                    outbox.MEETING_DELETE_EVENT,
                    calendar_id=meeting.calendar_id.hex if meeting.calendar_id else None,
                    event_id=meeting.external_event_id,
                )
                await session.delete(meeting)
        except Refused as refused:
            return cast(InvalidInput | NotFound, refused.result)
        self._woken(meeting)
        return Removed(id=meeting_id)

    def _queue(self, session: AsyncSession, meeting: Meeting, kind: str, **extra: str | None) -> None:
        """The calendar's part of a change, in the change's own transaction: only for a meeting
        that calendar sync put in a calendar."""
        if meeting.calendar_id is not None:
            payload = {"meeting_id": meeting.id.hex, **extra}
            session.add(OutboxMessage(kind=kind, payload=payload, available_at=self._clock()))

    def _woken(self, meeting: Meeting) -> None:
        """After commit: the outbox writes at once what was queued."""
        if meeting.calendar_id is not None:
            self._wake_outbox()


def _moved(meeting: Meeting, change: MeetingChange) -> tuple[datetime, datetime]:
    """The new times; a new start alone keeps the meeting's length."""
    start = change.start or meeting.start_at
    if change.end is not None:
        return start, change.end
    return start, start + (meeting.end_at - meeting.start_at)


async def _own_meeting(session: AsyncSession, owner_id: uuid.UUID, meeting_id: uuid.UUID) -> Meeting:
    """A meeting the owner made, locked against a concurrent write of its event. Another owner's
    (or a booking's id) is not found; one found in the calendar is not changed here."""
    meeting = await session.get(Meeting, meeting_id, with_for_update=True)
    if meeting is None or meeting.owner_id != owner_id:
        raise Refused(_NO_MEETING)
    if meeting.source != MeetingSource.OWNER:
        raise Refused(_NOT_OWN)
    return meeting
