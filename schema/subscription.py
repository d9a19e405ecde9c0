"""The Subscription root."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers import live as live_resolvers
from scheduling.live import SlotWindow
from schema.scalars import DateTime
from schema.types import Ctx, SlotList


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
            yield SlotList.from_domain(snapshot)
