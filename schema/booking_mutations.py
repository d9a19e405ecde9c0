"""Booking mutations: visitors book or request, invitees and owners change bookings."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import bookings as booking_resolvers
from resolvers.context import RequestContext
from scheduling import errors as domain
from scheduling.booking import BookingView, BookResult
from scheduling.booking_lifecycle import ChangeResult
from schema import errors
from schema.booking_inputs import BookMeetingInput
from schema.booking_types import (
    Booking,
    BookingRequest,
    CalendarInactive,
    CalendarUnreachable,
    PageNotFound,
    SlotUnavailable,
    booking_from_view,
    slot_unavailable,
)
from schema.scalars import DateTime
from schema.types import Ctx

BookMeetingResult = Annotated[
    Booking
    | BookingRequest
    | SlotUnavailable
    | CalendarInactive
    | CalendarUnreachable
    | PageNotFound
    | errors.InvalidInput,
    strawberry.union("BookMeetingResult"),
]
BookingResult = Annotated[
    Booking
    | BookingRequest
    | SlotUnavailable
    | CalendarInactive
    | CalendarUnreachable
    | errors.NotFound
    | errors.InvalidInput,
    strawberry.union("BookingResult"),
]


def _calendar_refusal(
    result: domain.CalendarInactive | domain.CalendarUnreachable,
) -> CalendarInactive | CalendarUnreachable:
    if isinstance(result, domain.CalendarInactive):
        return CalendarInactive(message=result.message)
    return CalendarUnreachable(message=result.message, retry_after_seconds=result.retry_after_seconds)


def _book_result(result: BookResult, context: RequestContext, timezone: str) -> BookMeetingResult:
    if isinstance(result, BookingView):
        return booking_from_view(result, context)
    if isinstance(result, domain.SlotUnavailable):
        return slot_unavailable(result, timezone)
    if isinstance(result, domain.CalendarInactive | domain.CalendarUnreachable):
        return _calendar_refusal(result)
    if isinstance(result, domain.PageNotFound):
        return PageNotFound(message=result.message)
    return errors.InvalidInput(message=result.message, field=result.field)


def _change_result(result: ChangeResult, context: RequestContext) -> BookingResult:
    if isinstance(result, BookingView):
        return booking_from_view(result, context)
    if isinstance(result, domain.SlotUnavailable):
        return slot_unavailable(result, "UTC")
    if isinstance(result, domain.NotFound):
        return errors.NotFound(message=result.message)
    if isinstance(result, domain.CalendarInactive | domain.CalendarUnreachable):
        return _calendar_refusal(result)
    return errors.InvalidInput(message=result.message, field=result.field)


@strawberry.type
class BookingMutation:
    @strawberry.mutation(description="Book a free slot; on an offline page this stores a request (PAGE-4).")
    async def book_meeting(self, info: Ctx, input: BookMeetingInput) -> BookMeetingResult:
        result = await booking_resolvers.book(info.context, input.to_draft(), request_only=False)
        return _book_result(result, info.context, input.timezone)

    @strawberry.mutation(description="Ask the owner for a time; nothing goes to a calendar until accepted.")
    async def request_meeting(self, info: Ctx, input: BookMeetingInput) -> BookMeetingResult:
        result = await booking_resolvers.book(info.context, input.to_draft(), request_only=True)
        return _book_result(result, info.context, input.timezone)

    @strawberry.mutation(description="The owner cancels a booking or a request.")
    async def cancel_booking(self, info: Ctx, id: strawberry.ID) -> BookingResult:
        return _change_result(await booking_resolvers.cancel(info.context, id), info.context)

    @strawberry.mutation(description="The owner moves a booking to another free start.")
    async def reschedule_booking(self, info: Ctx, id: strawberry.ID, start: DateTime) -> BookingResult:
        return _change_result(await booking_resolvers.reschedule(info.context, id, start), info.context)

    @strawberry.mutation(description="The owner accepts a request: it becomes a booking on the calendar (BOOK-6).")
    async def accept_booking_request(self, info: Ctx, id: strawberry.ID) -> BookingResult:
        return _change_result(await booking_resolvers.accept(info.context, id), info.context)

    @strawberry.mutation(description="The owner declines a request.")
    async def decline_booking_request(self, info: Ctx, id: strawberry.ID) -> BookingResult:
        return _change_result(await booking_resolvers.decline(info.context, id), info.context)

    @strawberry.mutation(description="The invitee cancels through the signed link token (BOOK-5).")
    async def cancel_booking_by_token(self, info: Ctx, token: str) -> BookingResult:
        return _change_result(await booking_resolvers.cancel_by_token(info.context, token), info.context)

    @strawberry.mutation(description="The invitee reschedules through the signed link token (BOOK-5).")
    async def reschedule_booking_by_token(self, info: Ctx, token: str, start: DateTime) -> BookingResult:
        return _change_result(await booking_resolvers.reschedule_by_token(info.context, token, start), info.context)
