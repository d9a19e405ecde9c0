"""Bookings and requests as the API shows them, in the invitee's time zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import strawberry

from common.values import BookingSource, BookingStatus, CalendarWrite
from db.models import Booking as BookingRow
from resolvers import bookings as booking_resolvers
from resolvers.context import RequestContext
from scheduling.booking.book import BookingView
from schema import enums as _enums  # noqa: F401  (registers the enums)
from schema.scalars import DateTime


@strawberry.interface(description="Fields shared by bookings and requests; times in the invitee's zone.")
class BookingFields:
    id: strawberry.ID
    start: DateTime
    end: DateTime
    status: BookingStatus
    invitee_email: str
    invitee_name: str
    invitee_timezone: str
    source: BookingSource
    calendar_write: CalendarWrite = strawberry.field(
        description="PENDING until the event is on the owner's calendar; FAILED says why it could not be."
    )
    manage_token: str = strawberry.field(description="The invitee's signed token to cancel or reschedule.")
    contact_token: str | None = strawberry.field(
        description="The invitee's signed token: kept by their browser, it fills their next booking's form."
    )

    @classmethod
    def values(cls, row: BookingRow, context: RequestContext) -> dict[str, object]:
        zone = ZoneInfo(row.invitee_timezone)
        return {
            "id": strawberry.ID(str(row.id)),
            "start": DateTime(row.start_at.astimezone(zone)),
            "end": DateTime(row.end_at.astimezone(zone)),
            "status": BookingStatus(row.status),
            "invitee_email": row.invitee_email,
            "invitee_name": row.invitee_name,
            "invitee_timezone": row.invitee_timezone,
            "source": BookingSource(row.source),
            "calendar_write": CalendarWrite(row.calendar_write),
            "manage_token": booking_resolvers.manage_token(context, row),
            "contact_token": booking_resolvers.contact_token(context, row),
        }


@strawberry.type(name="Booking")
class BookingType(BookingFields):
    @classmethod
    def from_row(cls, row: BookingRow, context: RequestContext) -> BookingType:
        return cls(**cls.values(row, context))  # type: ignore[arg-type]


@strawberry.type(description="A meeting requested on an offline page; the owner accepts or declines it.")
class BookingRequest(BookingFields):
    @classmethod
    def from_row(cls, row: BookingRow, context: RequestContext) -> BookingRequest:
        return cls(**cls.values(row, context))  # type: ignore[arg-type]


def booking_from_view(view: BookingView, context: RequestContext) -> BookingType | BookingRequest:
    """Requests (pending or declined) are ``BookingRequest``; everything else is ``BookingType``."""
    row = view.booking
    if row.status in (BookingStatus.REQUESTED, BookingStatus.DECLINED):
        return BookingRequest.from_row(row, context)
    return BookingType.from_row(row, context)
