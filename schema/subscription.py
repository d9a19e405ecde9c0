"""The Subscription root."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers import live as live_resolvers
from scheduling.live.feeds import SlotWindow
from schema.booking_types import BookingRequest, BookingType, booking_from_view
from schema.scalars import DateTime
from schema.slot_types import SlotList
from schema.types import CalendarStatusEvent, Ctx


@strawberry.type
class Subscription:
    @strawberry.subscription(description="The page's free slots now, then again each time they change.")
    async def slots_changed(
        self,
        info: Ctx,
        slug: str,
        start: DateTime,
        end: DateTime,
        timezone: str,
        duration: int | None = None,
        domain: str | None = None,
    ) -> AsyncGenerator[SlotList, None]:
        window = SlotWindow(start=start, end=end, timezone=timezone, duration=duration)
        async for snapshot in live_resolvers.slots_changed(info.context, slug, domain, window):
            yield SlotList.from_domain(snapshot, timezone)

    @strawberry.subscription(description="The owner's calendars turning inactive, active again or removed.")
    async def calendar_status_changed(self, info: Ctx) -> AsyncGenerator[CalendarStatusEvent, None]:
        async for event in live_resolvers.calendar_status_changed(info.context):
            yield CalendarStatusEvent.from_domain(event)

    @strawberry.subscription(description="The owner's new bookings and requests as they are stored.")
    async def booking_created(self, info: Ctx) -> AsyncGenerator[BookingType | BookingRequest, None]:
        async for view in live_resolvers.booking_created(info.context):
            yield booking_from_view(view, info.context)
