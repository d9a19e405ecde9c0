"""Finished answers to public page queries, kept until the owner's availability changes.

Every visitor who opens a page asks for the same month of slots. Computing it costs database
reads, the slot engine and hundreds of GraphQL field completions; serving the finished bytes
costs a dictionary lookup (bar B1). An answer may be served only while it is still what a fresh
computation would give, so:

* it is stored only if the request read nothing but one owner's public page data (the caller
  decides that from the document and registers the owner through an ``AnswerScope``), no error
  occurred, the invalidation feed was connected throughout, and no change for that owner
  arrived while it was being computed;
* it is dropped when that owner's ``AvailabilityChanged`` arrives from any process (a global
  channel on the pub/sub hub, plus this process's own publishes directly), when it reaches the
  moment time alone changes it (``stable_until``: the first slot falls inside the minimum
  notice, the horizon opens a new day), and after ``max_age`` at the latest;
* everything is dropped, and nothing stored, while the feed is down: a missed message must
  never leave a stale answer behind.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pubsub import PubSubUnavailable
from scheduling.clock import Clock
from scheduling.events import AVAILABILITY_KEY, AvailabilityChanged, Event, EventBus

logger = logging.getLogger(__name__)

_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)
_MAX_REMEMBERED_OWNERS = 100_000  # then forget them all and refuse answers computed before


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    owner_ids: frozenset[uuid.UUID]
    expires_at: datetime


@dataclass
class AnswerScope:
    """What one request's answer depends on, filled in by the resolvers as they run."""

    generation: int
    epoch: int
    owner_ids: set[uuid.UUID] = field(default_factory=set)
    expires_at: datetime | None = None
    spoiled: bool = False

    def depends_on(self, owner_id: uuid.UUID) -> None:
        self.owner_ids.add(owner_id)

    def stable_until(self, moment: datetime | None) -> None:
        if moment is not None and (self.expires_at is None or moment < self.expires_at):
            self.expires_at = moment

    def spoil(self) -> None:
        """The answer must not be kept (an error, or something read that no event announces)."""
        self.spoiled = True


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stored: int = 0
    invalidated: int = 0


class AnswerCache:
    """A bounded, least-recently-used map of finished answers, kept honest by the event feed."""

    def __init__(
        self, *, bus: EventBus, clock: Clock, max_entries: int = 2_000, max_age: timedelta = timedelta(minutes=5)
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._max_entries = max_entries
        self._max_age = max_age
        self._answers: OrderedDict[Hashable, CachedAnswer] = OrderedDict()
        self._keys_by_owner: dict[uuid.UUID, set[Hashable]] = {}
        self._generation = 0  # counts invalidations
        self._changed_at: dict[uuid.UUID, int] = {}  # owner -> generation of its last invalidation
        self._epoch = 0  # counts feed connections; an answer computed across a reconnect is not kept
        self._live = False
        self.stats = CacheStats()
        bus.on_local_publish(self._on_event)

    @property
    def enabled(self) -> bool:
        return self._max_entries > 0

    @property
    def live(self) -> bool:
        """The invalidation feed is connected, so answers may be stored."""
        return self._live

    def scope(self) -> AnswerScope:
        """Taken before a request reads anything, so a change during it is noticed."""
        return AnswerScope(generation=self._generation, epoch=self._epoch)

    def get(self, key: Hashable) -> CachedAnswer | None:
        answer = self._answers.get(key)
        if answer is None:
            self.stats.misses += 1
            return None
        if answer.expires_at <= self._clock():
            self._drop(key)
            self.stats.misses += 1
            return None
        self._answers.move_to_end(key)
        self.stats.hits += 1
        return answer

    def put(self, key: Hashable, scope: AnswerScope, body: bytes, headers: tuple[tuple[bytes, bytes], ...]) -> bool:
        """Keep the answer if nothing it depends on may have changed since ``scope`` was taken."""
        if not self.enabled or not self._live or scope.spoiled or not scope.owner_ids or scope.epoch != self._epoch:
            return False
        if any(self._changed_at.get(owner_id, -1) > scope.generation for owner_id in scope.owner_ids):
            return False
        now = self._clock()
        expires_at = now + self._max_age
        if scope.expires_at is not None:
            expires_at = min(expires_at, scope.expires_at)
        if expires_at <= now:
            return False
        self._drop(key)
        self._answers[key] = CachedAnswer(body, headers, frozenset(scope.owner_ids), expires_at)
        for owner_id in scope.owner_ids:
            self._keys_by_owner.setdefault(owner_id, set()).add(key)
        while len(self._answers) > self._max_entries:
            self._drop(next(iter(self._answers)))
        self.stats.stored += 1
        return True

    def invalidate(self, owner_id: uuid.UUID) -> None:
        self._generation += 1
        if len(self._changed_at) >= _MAX_REMEMBERED_OWNERS:
            self._changed_at.clear()
            self._epoch += 1
        self._changed_at[owner_id] = self._generation
        for key in self._keys_by_owner.pop(owner_id, set()):
            if self._drop(key):
                self.stats.invalidated += 1

    def clear(self) -> None:
        self._answers.clear()
        self._keys_by_owner.clear()

    def _drop(self, key: Hashable) -> bool:
        answer = self._answers.pop(key, None)
        if answer is None:
            return False
        for owner_id in answer.owner_ids:
            keys = self._keys_by_owner.get(owner_id)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_by_owner[owner_id]
        return True

    def _on_event(self, event: Event) -> None:
        if isinstance(event, AvailabilityChanged):
            self.invalidate(event.owner_id)

    async def run(self) -> None:
        """Follow every owner's changes until cancelled; while disconnected, keep nothing."""
        if not self.enabled:
            return
        failures = 0
        while True:
            try:
                async with self._bus.subscribe(AVAILABILITY_KEY) as events:
                    self._epoch += 1
                    self._live, failures = True, 0
                    async for event in events:
                        self._on_event(event)
            except PubSubUnavailable as exc:
                logger.info("answer cache: invalidation feed unavailable (%s); answering uncached", exc)
            finally:
                self._live = False
                self.clear()
            await asyncio.sleep(_RETRY_DELAYS[min(failures, len(_RETRY_DELAYS) - 1)])
            failures += 1
