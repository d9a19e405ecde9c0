"""Bookings and requests, and the expected failures of booking (BookMeetingResult)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import strawberry

from db.models import Booking as BookingRow
from resolvers import bookings as booking_resolvers
from resolvers.context import RequestContext
from scheduling import errors as domain_errors
from scheduling.booking import BookingView
from scheduling.values import BookingSource, BookingStatus, CalendarWrite
from schema import enums as _enums  # noqa: F401  (registers the enums)
from schema.errors import Error
from schema.scalars import DateTime
from schema.slot_types import Slot, slots_in_zone


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
        description="PENDING until the event is on the owner's calendar (BOOK-7)."
    )
    manage_token: str = strawberry.field(description="The invitee's signed token to cancel or reschedule (BOOK-5).")

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
        }


@strawberry.type
class Booking(BookingFields):
    @classmethod
    def from_row(cls, row: BookingRow, context: RequestContext) -> Booking:
        return cls(**cls.values(row, context))  # type: ignore[arg-type]


@strawberry.type(description="A meeting requested on an offline page; the owner accepts or declines it.")
class BookingRequest(BookingFields):
    @classmethod
    def from_row(cls, row: BookingRow, context: RequestContext) -> BookingRequest:
        return cls(**cls.values(row, context))  # type: ignore[arg-type]


@strawberry.type(description="The time was taken or is not bookable; nothing was stored.")
class SlotUnavailable(Error):
    alternatives: list[Slot] = strawberry.field(description="Up to three nearest free slots.")


@strawberry.type(description="An integrated calendar of the owner is inactive; nobody can book for now.")
class CalendarInactive(Error):
    pass


@strawberry.type(
    description="The owner's calendar could not be checked just now and nothing was booked; try again shortly."
)
class CalendarUnreachable(Error):
    retry_after_seconds: int


@strawberry.type
class PageNotFound(Error):
    pass


def booking_from_view(view: BookingView, context: RequestContext) -> Booking | BookingRequest:
    """Requests (pending or declined) are ``BookingRequest``; everything else is ``Booking``."""
    row = view.booking
    if row.status in (BookingStatus.REQUESTED, BookingStatus.DECLINED):
        return BookingRequest.from_row(row, context)
    return Booking.from_row(row, context)


def slot_unavailable(error: domain_errors.SlotUnavailable, timezone: str) -> SlotUnavailable:
    return SlotUnavailable(message=error.message, alternatives=slots_in_zone(error.alternatives, timezone))
