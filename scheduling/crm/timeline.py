"""A contact's meetings: the stored ones (made by the owner, found in the calendar) and the
confirmed bookings, read for many contacts at once so a list of contacts costs two queries.

Bookings stay the record of what was booked on a page; here each confirmed one is a meeting
titled with its page's name, from the chat link (CHAT) or otherwise a page (BOOKING). Its
invitation went out with Kokous's confirmation email, so ``calendar_invitation_sent`` is true.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from common.values import BookingSource, BookingStatus, MeetingSource
from db.models import Booking, Meeting, SchedulingPage
from scheduling.crm.values import MeetingView


def view_of(meeting: Meeting) -> MeetingView:
    return MeetingView(
        id=meeting.id,
        contact_id=meeting.contact_id,
        title=meeting.title,
        start=meeting.start_at,
        end=meeting.end_at,
        source=MeetingSource(meeting.source),
        calendar_invitation_sent=meeting.calendar_invitation_sent,
    )


def _booking_as_meeting(booking: Booking, contact_id: uuid.UUID, page_name: str) -> MeetingView:
    return MeetingView(
        id=booking.id,
        contact_id=contact_id,
        title=page_name,
        start=booking.start_at,
        end=booking.end_at,
        source=MeetingSource.CHAT if booking.source == BookingSource.CHAT else MeetingSource.BOOKING,
        calendar_invitation_sent=True,
    )


async def meetings_of(
    session: AsyncSession, owner_id: uuid.UUID, contact_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[MeetingView]]:
    """Each of the owner's ``contact_ids`` with its meetings, earliest first (another owner's
    contacts get none)."""
    ids = list(contact_ids)
    found: dict[uuid.UUID, list[MeetingView]] = {contact_id: [] for contact_id in ids}
    if not ids:
        return found
    stored = select(Meeting).where(Meeting.owner_id == owner_id, col(Meeting.contact_id).in_(ids))
    for meeting in (await session.exec(stored)).all():
        found[meeting.contact_id].append(view_of(meeting))
    booked = (
        select(Booking, SchedulingPage.name)
        .join(SchedulingPage, col(Booking.page_id) == col(SchedulingPage.id))
        .where(
            Booking.owner_id == owner_id,
            col(Booking.contact_id).in_(ids),
            Booking.status == BookingStatus.CONFIRMED,
        )
    )
    for booking, page_name in (await session.exec(booked)).all():
        if booking.contact_id is not None:
            found[booking.contact_id].append(_booking_as_meeting(booking, booking.contact_id, page_name))
    for meetings in found.values():
        meetings.sort(key=lambda meeting: (meeting.start, meeting.id))
    return found
