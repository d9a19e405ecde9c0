"""The event of a meeting the owner made, written to the calendar by the outbox worker.

As with bookings (``calendars/writes.py``): the meeting's id is the event's idempotency key,
so a retry after a lost answer finds the event instead of making a second; outages and rate
limits are retried with backoff; a final refusal leaves the meeting recorded without an
invitation (``calendar_invitation_sent`` false). The provider mails the contact the
invitation, its changes and its cancellation from the owner's own account. A write that lands
where the meeting is notes when (``calendar_event_written_at``): from then on a change of the
event in the calendar is the owner's, and the meeting follows it (``imports.py``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from db.models import Calendar, CalendarConnection, Contact, Meeting, User
from providers.base import Attendee, CalendarClient, EventDraft
from scheduling import outbox
from scheduling.calendars.access import ProviderAccess
from scheduling.calendars.writes import call_for_outbox, event_home, write_new_event
from scheduling.clock import Clock
from scheduling.outbox import Handler

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class _MeetingTarget:
    meeting: Meeting
    contact: Contact
    owner: User
    calendar: Calendar
    connection: CalendarConnection


def event_for(meeting: Meeting, contact: Contact, owner: User) -> EventDraft:
    return EventDraft(
        idempotency_key=meeting.id.hex,
        summary=meeting.title,
        start=meeting.start_at,
        end=meeting.end_at,
        timezone=owner.timezone,
        attendees=(Attendee(email=contact.email, name=contact.name),),
        organizer_email=owner.email,
    )


class MeetingWrites:
    def __init__(self, *, access: ProviderAccess, clock: Clock) -> None:
        self._access = access
        self._db = access.db
        self._clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {
            outbox.MEETING_CREATE_EVENT: self._create,
            outbox.MEETING_UPDATE_EVENT: self._update,
            outbox.MEETING_DELETE_EVENT: self._delete,
        }

    async def _create(self, payload: dict[str, Any]) -> None:
        target = await self._target(uuid.UUID(payload["meeting_id"]))
        if target is not None and target.meeting.external_event_id is None:
            await self._write_new(target)

    async def _update(self, payload: dict[str, Any]) -> None:
        target = await self._target(uuid.UUID(payload["meeting_id"]))
        if target is None:
            return
        event_id = target.meeting.external_event_id
        if event_id is None:
            # Not written yet (its create is being retried): written now, as it is. A create
            # running meanwhile may have written the old times, so the update follows anyway.
            event_id = await self._write_new(target)
            if event_id is None:
                return
        draft = event_for(target.meeting, target.contact, target.owner)
        calendar_id = target.calendar.external_id
        written = await self._call(target, lambda client: client.update_event(calendar_id, event_id, draft))
        if written is not None:
            await self._written(target.meeting.id, written.event_id, draft=draft)

    async def _delete(self, payload: dict[str, Any]) -> None:
        """The meeting is gone; its event goes too, when one was known to be written (a write
        under way deletes its own event when it finds the meeting gone)."""
        calendar_id, event_id = payload.get("calendar_id"), payload.get("event_id")
        if calendar_id is None or event_id is None:
            return
        async with self._db.session() as session:
            home = await event_home(session, uuid.UUID(calendar_id))
        if home is None:
            return  # disconnected since: the event went with the account's access
        calendar, connection = home
        await call_for_outbox(
            self._access,
            connection,
            lambda client: client.delete_event(calendar.external_id, event_id),
            partial(_delete_failed, payload["meeting_id"]),
        )

    async def _write_new(self, target: _MeetingTarget) -> str | None:
        """Create the event; its id, or None when nothing (any more) stands for the meeting."""
        draft = event_for(target.meeting, target.contact, target.owner)
        return await write_new_event(
            partial(self._call, target),
            target.calendar.external_id,
            draft,
            partial(self._written, target.meeting.id, draft=draft),
        )

    async def _call(self, target: _MeetingTarget, operation: Callable[[CalendarClient], Awaitable[T]]) -> T | None:
        return await call_for_outbox(
            self._access, target.connection, operation, partial(self._failed, target.meeting.id)
        )

    async def _target(self, meeting_id: uuid.UUID) -> _MeetingTarget | None:
        """The meeting and the calendar calendar sync put it in; None when either is gone (a
        calendar removed since leaves the meeting recorded, and uninvited if it was not written)."""
        async with self._db.session() as session:
            meeting = await session.get(Meeting, meeting_id)
            if meeting is None:
                return None
            contact = await session.get(Contact, meeting.contact_id)
            owner = await session.get(User, meeting.owner_id)
            home = await event_home(session, meeting.calendar_id)
        if contact is None or owner is None or home is None:
            await self._failed(meeting_id, "its calendar is no longer connected")
            return None
        return _MeetingTarget(meeting, contact, owner, *home)

    async def _written(self, meeting_id: uuid.UUID, event_id: str, *, draft: EventDraft) -> bool:
        """Record the written event; False when the meeting was cancelled meanwhile. The event is
        where the meeting is only if the meeting did not change while it was written."""
        async with self._db.transaction() as session:
            meeting = await session.get(Meeting, meeting_id, with_for_update=True)
            if meeting is None:
                return False
            meeting.external_event_id = event_id
            meeting.calendar_invitation_sent = True
            if (meeting.title, meeting.start_at, meeting.end_at) == (draft.summary, draft.start, draft.end):
                meeting.calendar_event_written_at = self._clock()
            session.add(meeting)
            return True

    async def _failed(self, meeting_id: uuid.UUID, reason: str) -> None:
        """A final refusal: a meeting never written went without an invitation."""
        logger.warning("calendar write for meeting %s failed for good: %s", meeting_id, reason)
        async with self._db.transaction() as session:
            meeting = await session.get(Meeting, meeting_id)
            if meeting is None or meeting.external_event_id is not None:
                return
            meeting.calendar_invitation_sent = False
            session.add(meeting)


async def _delete_failed(meeting_id: str, reason: str) -> None:
    logger.warning("deleting the calendar event of cancelled meeting %s failed for good: %s", meeting_id, reason)
