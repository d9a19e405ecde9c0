"""Booking mutations: visitors book or request, invitees and owners change bookings."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import bookings as booking_resolvers
from resolvers.context import RequestContext
from scheduling.booking.book import BookingView, BookResult
from scheduling.booking.lifecycle import ChangeResult
from schema.booking_inputs import BookMeetingInput
from schema.booking_types import BookingRequest, BookingType, booking_from_view
from schema.errors import (
    CalendarInactiveError,
    CalendarUnreachableError,
    InvalidInputError,
    NotFoundError,
    PageNotFoundError,
    RateLimitedError,
    SlotUnavailableError,
    error_from_domain,
)
from schema.scalars import DateTime
from schema.types import Ctx

BookMeetingResult = Annotated[
    BookingType
    | BookingRequest
    | SlotUnavailableError
    | CalendarInactiveError
    | CalendarUnreachableError
    | PageNotFoundError
    | InvalidInputError
    | RateLimitedError,
    strawberry.union("BookMeetingResult"),
]
BookingResult = Annotated[
    BookingType
    | BookingRequest
    | SlotUnavailableError
    | CalendarInactiveError
    | CalendarUnreachableError
    | NotFoundError
    | InvalidInputError
    | RateLimitedError,
    strawberry.union("BookingResult"),
]


def _book_result(result: BookResult, context: RequestContext) -> BookMeetingResult:
    return booking_from_view(result, context) if isinstance(result, BookingView) else error_from_domain(result)


def _change_result(result: ChangeResult, context: RequestContext) -> BookingResult:
    return booking_from_view(result, context) if isinstance(result, BookingView) else error_from_domain(result)


@strawberry.type
class BookingMutation:
    @strawberry.mutation(description="Book a free slot; on an offline page this stores a request .")
    async def book_meeting(self, info: Ctx, input: BookMeetingInput) -> BookMeetingResult:
        result = await booking_resolvers.book(info.context, input.to_draft(), request_only=False)
        return _book_result(result, info.context)

    @strawberry.mutation(description="Ask the owner for a time; nothing goes to a calendar until accepted.")
    async def request_meeting(self, info: Ctx, input: BookMeetingInput) -> BookMeetingResult:
        result = await booking_resolvers.book(info.context, input.to_draft(), request_only=True)
        return _book_result(result, info.context)

    @strawberry.mutation(description="The owner cancels a booking or a request.")
    async def cancel_booking(self, info: Ctx, id: strawberry.ID) -> BookingResult:
        return _change_result(await booking_resolvers.cancel(info.context, id), info.context)

    @strawberry.mutation(description="The owner moves a booking to another free start.")
    async def reschedule_booking(self, info: Ctx, id: strawberry.ID, start: DateTime) -> BookingResult:
        return _change_result(await booking_resolvers.reschedule(info.context, id, start), info.context)

    @strawberry.mutation(description="The owner accepts a request: it becomes a booking on the calendar.")
    async def accept_booking_request(self, info: Ctx, id: strawberry.ID) -> BookingResult:
        return _change_result(await booking_resolvers.accept(info.context, id), info.context)

    @strawberry.mutation(description="The owner declines a request.")
    async def decline_booking_request(self, info: Ctx, id: strawberry.ID) -> BookingResult:
        return _change_result(await booking_resolvers.decline(info.context, id), info.context)

    @strawberry.mutation(description="The invitee cancels through the signed link token.")
    async def cancel_booking_by_token(self, info: Ctx, token: str) -> BookingResult:
        return _change_result(await booking_resolvers.cancel_by_token(info.context, token), info.context)

    @strawberry.mutation(description="The invitee reschedules through the signed link token.")
    async def reschedule_booking_by_token(self, info: Ctx, token: str, start: DateTime) -> BookingResult:
        return _change_result(await booking_resolvers.reschedule_by_token(info.context, token, start), info.context)
