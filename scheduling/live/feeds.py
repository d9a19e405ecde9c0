"""Live free slots for ``slotsChanged``: a snapshot first, then one per change.

Widgets watching the same page, window and duration share one feed per process: it listens on
the owner's channel, recomputes once per change and hands the result to every watcher. The
visitor's zone only changes how times are shown, so it is not part of the feed's key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from common.values import PageStatus
from db.engine import Database
from pubsub import PubSubUnavailable
from scheduling import validation
from scheduling.calendars.busy_sync import BusySync
from scheduling.clock import Clock
from scheduling.errors import InvalidInput, ValidationFailed
from scheduling.events import AvailabilityChanged, Event, EventBus, owner_channel_key
from scheduling.pages.availability import AvailabilityService, FreeSlots
from scheduling.pages.service import PageService, PageView

logger = logging.getLogger(__name__)

T = TypeVar("T")

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
    stable_until: datetime | None = None  # time alone changes the answer then (None: never)
    complete: bool = True  # every integrated calendar's busy time is known for the window

    def same_as(self, other: SlotSnapshot) -> bool:
        return (self.slots, self.status, self.complete) == (other.slots, other.status, other.complete)


@dataclass(frozen=True)
class FeedKey:
    page_id: uuid.UUID
    start: datetime
    end: datetime
    duration: int


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


def feed_key(view: PageView, window: SlotWindow) -> FeedKey | InvalidInput:
    duration = window.duration if window.duration is not None else view.page.durations[0]
    if duration not in view.page.durations:
        return InvalidInput(message=f"duration must be one of {view.page.durations}", field="duration")
    return FeedKey(page_id=view.page.id, start=window.start, end=window.end, duration=duration)


class _Mailbox:
    """Holds only the newest snapshot: a slow watcher skips stale ones instead of queueing them."""

    def __init__(self) -> None:
        self.value: SlotSnapshot | None = None
        self.error: Exception | None = None
        self.closed = False
        self.ready = asyncio.Event()

    def put(self, value: SlotSnapshot) -> None:
        self.value = value
        self.ready.set()

    def close(self, error: Exception | None = None) -> None:
        self.closed, self.error = True, error
        self.ready.set()

    async def take(self) -> SlotSnapshot | None:
        """The next snapshot, or None when the feed ended; raises the feed's error."""
        await self.ready.wait()
        self.ready.clear()
        value, self.value = self.value, None
        if value is not None:
            return value
        if self.error is not None:
            raise self.error
        return None


class SlotFeed:
    """One computation of a page's slots for one window and duration, shared by its watchers."""

    def __init__(self, service: LiveService, view: PageView, key: FeedKey, host: str | None) -> None:
        self._service = service
        self._key = key
        self._slug = view.page.slug
        self._view = view
        self._owner_id = view.page.owner_id
        self._host = host
        self._mailboxes: set[_Mailbox] = set()
        self._latest: SlotSnapshot | None = None
        self._started = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"slot-feed-{key.page_id}")

    def attach(self) -> _Mailbox:
        mailbox = _Mailbox()
        if self._latest is not None:
            mailbox.put(self._latest)
        elif self._task.done():
            mailbox.close()
        self._mailboxes.add(mailbox)
        return mailbox

    def detach(self, mailbox: _Mailbox) -> bool:
        """Returns True when that was the last watcher (the feed then stops)."""
        self._mailboxes.discard(mailbox)
        if self._mailboxes:
            return False
        self._service.forget(self._key, self)  # a newcomer from now on starts a fresh feed
        self._task.cancel()
        return True

    async def _run(self) -> None:
        try:
            async with self._service.bus.subscribe(owner_channel_key(self._owner_id)) as events:
                # Listening before the first read, so no change falls between the two.
                if not await self._refresh():
                    return
                await self._follow(aiter(events))
        except PubSubUnavailable as exc:
            self._end(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("slot feed for page %s failed", self._key.page_id)
            self._end(exc)
        else:
            self._end(None)
        finally:
            self._service.forget(self._key, self)

    async def _follow(self, events: AsyncIterator[Event]) -> None:
        """Recompute on each relevant change, and when the passing of time alone changes the slots.

        The wait for the next event is one task kept across timer wake-ups: cancelling it would
        close the event stream.
        """
        upcoming: asyncio.Future[Event] = asyncio.ensure_future(anext(events))
        try:
            while True:
                done, _ = await asyncio.wait({upcoming}, timeout=self._seconds_until_stale())
                if not done:
                    if not await self._refresh(reload_page=False):
                        return
                    continue
                try:
                    event = upcoming.result()
                except StopAsyncIteration:
                    return
                upcoming = asyncio.ensure_future(anext(events))
                if (
                    isinstance(event, AvailabilityChanged)
                    and event.affects(self._key.page_id)
                    and not await self._refresh(reload_page=event.changes_pages)
                ):
                    return
        finally:
            upcoming.cancel()

    def _seconds_until_stale(self) -> float | None:
        stable_until = self._latest.stable_until if self._latest is not None else None
        if stable_until is None:
            return None
        return max((stable_until - self._service.clock()).total_seconds(), 0.0)

    async def _refresh(self, *, reload_page: bool = True) -> bool:
        """Recompute; tell watchers if it changed. False when the page is gone.

        The page itself is read again only when the change may have touched it; a booking
        changes busy time alone, and a thousand widgets wait on this recompute.
        """
        # Shielded: a feed stopped mid-refresh (its last watcher left) lets the reads finish and
        # close their database connections instead of abandoning them half-way.
        if reload_page:
            view = await self._service.unabandoned(self._service.current_view(self._slug, self._host, self._key))
            if view is None:
                self._end(None)
                return False
            self._view = view
        snapshot = await self._service.unabandoned(self._service.compute(self._view, self._key))
        changed = self._latest is None or not snapshot.same_as(self._latest)
        self._latest = snapshot  # even when unchanged: its stable_until has moved on
        if changed:
            for mailbox in self._mailboxes:
                mailbox.put(snapshot)
        return True

    def _end(self, error: Exception | None) -> None:
        for mailbox in self._mailboxes:
            mailbox.close(error)


class PageWatch:
    """One visitor's subscription to a feed."""

    def __init__(self, feed: SlotFeed) -> None:
        self._feed = feed

    async def updates(self) -> AsyncIterator[SlotSnapshot]:
        """Snapshots until the page goes away; raises ``PubSubUnavailable`` if the live link is lost."""
        mailbox = self._feed.attach()
        try:
            while (snapshot := await mailbox.take()) is not None:
                yield snapshot
        finally:
            self._feed.detach(mailbox)


class LiveService:
    def __init__(
        self,
        *,
        db: Database,
        pages: PageService,
        availability: AvailabilityService,
        bus: EventBus,
        clock: Clock,
        busy_sync: BusySync,
    ) -> None:
        self.busy_sync = busy_sync
        self.db = db
        self.pages = pages
        self.availability = availability
        self.bus = bus
        self.clock = clock
        self._feeds: dict[FeedKey, SlotFeed] = {}
        self._inflight: set[asyncio.Future[Any]] = set()

    async def _resolve(
        self, slug: str, host: str | None, window: SlotWindow
    ) -> tuple[PageView, FeedKey] | InvalidInput | None:
        problem = check_window(window)
        if problem is not None:
            return problem
        view = await self.pages.public_page(slug, host)
        if view is None:
            return None
        key = feed_key(view, window)
        return key if isinstance(key, InvalidInput) else (view, key)

    async def query_slots(self, view: PageView, window: SlotWindow) -> SlotSnapshot | InvalidInput:
        """The free slots of a page the visitor already sees, for a one-off query."""
        key = check_window(window) or feed_key(view, window)
        return key if isinstance(key, InvalidInput) else await self.compute(view, key)

    async def watch_page(self, slug: str, host: str | None, window: SlotWindow) -> PageWatch | InvalidInput | None:
        """A watch on a visible page, the problem with the window, or None when not found."""
        resolved = await self._resolve(slug, host, window)
        if resolved is None or isinstance(resolved, InvalidInput):
            return resolved
        view, key = resolved
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = SlotFeed(self, view, key, host)
        return PageWatch(feed)

    def forget(self, key: FeedKey, feed: SlotFeed) -> None:
        if self._feeds.get(key) is feed:
            del self._feeds[key]

    async def current_view(self, slug: str, host: str | None, key: FeedKey) -> PageView | None:
        """The page as visitors see it now, or None if it is gone (or is another page now)."""
        view = await self.pages.public_page(slug, host)
        return None if view is None or view.page.id != key.page_id else view

    async def compute(self, view: PageView, key: FeedKey) -> SlotSnapshot:
        """The page's free slots for the key's window now."""
        free = await self._free_slots(view, key)
        if free.missing_until is not None:
            # Some asked time was never fetched (a new page, a longer horizon, a new calendar):
            # fetch it, all calendars in parallel, then answer.
            await self.busy_sync.fill_uncovered(view.page.owner_id, free.missing_until)
            free = await self._free_slots(view, key)
        return SlotSnapshot(
            slots=tuple((slot.start, slot.end) for slot in free.slots),
            as_of=free.as_of,
            status=view.status,
            stable_until=free.stable_until,
            complete=free.complete,
        )

    async def _free_slots(self, view: PageView, key: FeedKey) -> FreeSlots:
        async with self.db.plain() as plain:
            return await self.availability.free_slots(
                plain, view.page, duration=key.duration, start=key.start, end=key.end, now=self.clock()
            )

    async def unabandoned(self, work: Awaitable[T]) -> T:
        """``work`` runs to its end even if the caller is cancelled (a feed whose last watcher
        left mid-read): its database connection is closed properly, and ``close`` waits for it."""
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    async def close(self) -> None:
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed._task
        await asyncio.gather(*self._inflight, return_exceptions=True)
