"""``slotsChanged``: a visitor's live view of a page's free slots."""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import GraphQLError

from resolvers.context import RequestContext
from scheduling.errors import InvalidInput
from scheduling.live import SlotSnapshot, SlotWindow
from scheduling.pubsub import PubSubUnavailable


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
        raise GraphQLError(
            "live updates were interrupted; subscribe again", extensions={"code": "LIVE_UPDATES_INTERRUPTED"}
        ) from None
    raise GraphQLError("scheduling page is no longer available", extensions={"code": "NOT_FOUND"})
