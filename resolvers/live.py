"""Subscriptions: a visitor's live slots, an owner's new bookings and calendar status changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import GraphQLError

from pubsub import PubSubUnavailable
from resolvers.auth import require_user
from resolvers.context import RequestContext
from scheduling.booking.book import BookingView
from scheduling.errors import InvalidInput
from scheduling.events import BookingCreated, CalendarStatusChanged, Event, owner_channel_key
from scheduling.live.feeds import SlotSnapshot, SlotWindow


def _interrupted() -> GraphQLError:
    return GraphQLError(
        "live updates were interrupted; subscribe again", extensions={"code": "LIVE_UPDATES_INTERRUPTED"}
    )


async def slots_changed(
    context: RequestContext, slug: str, domain: str | None, window: SlotWindow
) -> AsyncIterator[SlotSnapshot]:
    watch = await context.services.live.watch_page(slug, domain, window)
    if watch is None:
        raise GraphQLError("scheduling page not found", extensions={"code": "NOT_FOUND"})
    if isinstance(watch, InvalidInput):
        raise GraphQLError(watch.message, extensions={"code": "INVALID_INPUT", "field": watch.field})
    try:
        async for snapshot in watch.updates():
            yield snapshot
    except PubSubUnavailable:
        raise _interrupted() from None
    raise GraphQLError("scheduling page is no longer available", extensions={"code": "NOT_FOUND"})


async def booking_created(context: RequestContext) -> AsyncIterator[BookingView]:
    """The owner's new bookings and requests, as they are stored."""
    user = require_user(context)
    async for event in _owner_events(context):
        if isinstance(event, BookingCreated):
            # Shielded: a client leaving mid-read must not abandon a database connection half-way.
            view = await context.services.live.unabandoned(
                context.services.lifecycle.get(event.booking_id, owner_id=user.id)
            )
            if view is not None:
                yield view


async def calendar_status_changed(context: RequestContext) -> AsyncIterator[CalendarStatusChanged]:
    """The owner's calendars turning inactive, active again, or removed; nobody else's."""
    async for event in _owner_events(context):
        if isinstance(event, CalendarStatusChanged):
            yield event


async def _owner_events(context: RequestContext) -> AsyncIterator[Event]:
    user = require_user(context)
    try:
        async with context.services.bus.subscribe(owner_channel_key(user.id)) as events:
            async for event in events:
                yield event
    except PubSubUnavailable:
        raise _interrupted() from None
