"""The answer cache keeps nothing that may be stale: changes during a computation, a lost
invalidation feed and this process's own changes all keep or drop answers correctly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from pubsub import EventHub
from scheduling.events import AvailabilityChanged, EventBus
from scheduling.live.answer_cache import AnswerCache
from tests.support.polling import eventually

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
HEADERS = ((b"content-type", b"application/json"),)


@dataclass
class Feed:
    hub: EventHub
    bus: EventBus
    cache: AnswerCache
    task: asyncio.Task[None]


@pytest.fixture
async def feed(channel_prefix: str) -> AsyncIterator[Feed]:
    hub = EventHub("memory://")
    await hub.connect()
    bus = EventBus(hub, channel_prefix)
    cache = AnswerCache(bus=bus, clock=lambda: NOW, max_entries=3)
    task = asyncio.create_task(cache.run())
    await eventually(lambda: cache.live, bool, "the cache follows the feed", timeout=5, interval=0.01)
    try:
        yield Feed(hub, bus, cache, task)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await hub.disconnect()


def keep(cache: AnswerCache, key: str, owner_id: uuid.UUID) -> bool:
    scope = cache.scope()
    scope.depends_on(owner_id)
    return cache.put(key, scope, key.encode(), HEADERS)


async def test_a_change_published_anywhere_drops_that_owners_answers(feed: Feed) -> None:
    # covers: BOOK-1, SUB-5
    owner, other = uuid.uuid4(), uuid.uuid4()
    assert keep(feed.cache, "mine", owner)
    assert keep(feed.cache, "theirs", other)
    # As another process would: straight onto the hub, not through this bus.
    message = '{"kind":"availability_changed","data":{"owner_id":"%s","reason":"booking","page_ids":[]}}'
    await feed.hub.publish(feed.bus.channel("availability"), message % owner.hex)
    await eventually(
        lambda: feed.cache.get("mine") is None, bool, "the owner's answer is dropped", timeout=5, interval=0.01
    )
    cached = feed.cache.get("theirs")
    assert cached is not None
    assert cached.body == b"theirs"


async def test_an_answer_computed_across_a_change_is_not_kept(feed: Feed) -> None:
    # covers: BOOK-1
    owner = uuid.uuid4()
    scope = feed.cache.scope()  # the request starts reading
    await feed.bus.publish(AvailabilityChanged(owner_id=owner, reason="booking"))  # a booking commits meanwhile
    scope.depends_on(owner)
    assert not feed.cache.put("slots", scope, b"stale", HEADERS)
    assert feed.cache.get("slots") is None
    assert keep(feed.cache, "slots", owner)  # the next request's answer is fine


async def test_own_changes_drop_answers_even_when_pub_sub_is_down(feed: Feed) -> None:
    # covers: BOOK-1, BOOK-7
    owner = uuid.uuid4()
    assert keep(feed.cache, "slots", owner)
    feed.hub._link_up = False  # the link is down: the hub refuses the publish
    await feed.bus.publish(AvailabilityChanged(owner_id=owner, reason="booking"))
    assert feed.hub.stats.publish_failures == 2
    assert feed.cache.get("slots") is None


async def test_nothing_is_kept_while_the_feed_is_lost(feed: Feed) -> None:
    # covers: BOOK-1, SUB-5
    owner = uuid.uuid4()
    assert keep(feed.cache, "slots", owner)
    scope = feed.cache.scope()
    scope.depends_on(owner)
    feed.hub._end_all("pub/sub link lost")  # what the hub does when its backend link fails
    await eventually(lambda: not feed.cache.live, bool, "the cache notices", timeout=5, interval=0.01)
    assert feed.cache.get("slots") is None
    assert not keep(feed.cache, "other", owner)
    await eventually(lambda: feed.cache.live, bool, "the cache follows the feed again", timeout=5, interval=0.01)
    assert not feed.cache.put("slots", scope, b"from before the loss", HEADERS)
    assert keep(feed.cache, "slots", owner)


async def test_answers_expire_and_the_least_recently_used_go_first(channel_prefix: str) -> None:
    # covers: BOOK-1
    hub = EventHub("memory://")
    await hub.connect()
    now = [NOW]
    cache = AnswerCache(bus=EventBus(hub, channel_prefix), clock=lambda: now[0], max_entries=2)
    task = asyncio.create_task(cache.run())
    try:
        await eventually(lambda: cache.live, bool, "the cache follows the feed", timeout=5, interval=0.01)
        owner = uuid.uuid4()
        scope = cache.scope()
        scope.depends_on(owner)
        scope.stable_until(NOW + timedelta(minutes=1))
        assert cache.put("soon", scope, b"", HEADERS)
        assert keep(cache, "b", owner)
        assert cache.get("soon") is not None  # now the most recently used
        assert keep(cache, "c", owner)
        assert cache.get("b") is None
        now[0] = NOW + timedelta(minutes=1)
        assert cache.get("soon") is None
        assert cache.get("c") is not None
        now[0] = NOW + timedelta(minutes=5)
        assert cache.get("c") is None  # max_age
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await hub.disconnect()
