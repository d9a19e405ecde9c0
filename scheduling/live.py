"""Live page state for ``slotsChanged``: a snapshot first, then one per change (SUB-1)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduling import validation
from scheduling.clock import Clock
from scheduling.errors import InvalidInput, ValidationFailed
from scheduling.events import EventBus, owner_channel_key
from scheduling.pages import PageService, PageView
from scheduling.values import PageStatus

MAX_WINDOW = timedelta(days=62)


@dataclass(frozen=True)
class SlotWindow:
    """The visitor's window; the zone changes how times are shown, never which are free."""

    start: datetime
    end: datetime
    timezone: str
    duration: int | None = None


@dataclass(frozen=True)
class SlotSnapshot:
    slots: tuple[tuple[datetime, datetime], ...]
    as_of: datetime
    status: PageStatus


def check_window(window: SlotWindow) -> InvalidInput | None:
    try:
        validation.timezone("timezone", window.timezone)
    except ValidationFailed as failure:
        return failure.as_result()
    if window.start >= window.end:
        return InvalidInput(message="start must be before end", field="start")
    if window.end - window.start > MAX_WINDOW:
        return InvalidInput(message="the window may span at most 62 days", field="end")
    return None


class PageWatch:
    """One visitor's live view of a page; the page existed when the watch was opened."""

    def __init__(self, service: LiveService, view: PageView, host: str | None, window: SlotWindow) -> None:
        self._service = service
        self._page_id: uuid.UUID = view.page.id
        self._owner_id: uuid.UUID = view.page.owner_id
        self._slug = view.page.slug
        self._host = host
        self._window = window

    async def updates(self) -> AsyncIterator[SlotSnapshot]:
        """The current snapshot, then a new one whenever it changes; ends if the page goes away.

        Raises ``PubSubUnavailable`` when the live link is lost (the client subscribes again).
        """
        async with self._service.bus.subscribe(owner_channel_key(self._owner_id)) as events:
            # Subscribed before the first read, so no change can fall between the two.
            last = await self._snapshot()
            if last is None:
                return
            yield last
            async for event in events:
                if not event.affects(self._page_id):
                    continue
                current = await self._snapshot()
                if current is None:
                    return
                if (current.slots, current.status) != (last.slots, last.status):
                    last = current
                    yield current

    async def _snapshot(self) -> SlotSnapshot | None:
        view = await self._service.pages.public_page(self._slug, self._host)
        if view is None or view.page.id != self._page_id:
            return None
        return SlotSnapshot(slots=(), as_of=self._service.clock(), status=view.status)


class LiveService:
    def __init__(self, pages: PageService, bus: EventBus, clock: Clock) -> None:
        self.pages = pages
        self.bus = bus
        self.clock = clock

    async def watch_page(self, slug: str, host: str | None, window: SlotWindow) -> PageWatch | InvalidInput | None:
        """A watch on a visible page, the problem with the window, or None when not found."""
        problem = check_window(window)
        if problem is not None:
            return problem
        view = await self.pages.public_page(slug, host)
        if view is None:
            return None
        if window.duration is not None and window.duration not in view.page.durations:
            return InvalidInput(message=f"duration must be one of {view.page.durations}", field="duration")
        return PageWatch(self, view, host, window)
