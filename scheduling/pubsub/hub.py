"""The supervised pub/sub hub: one backend link per process, fanned out to local subscribers.

broadcaster's own ``Broadcast`` lets its listener die silently and leaves subscribers hanging.
Here a supervisor task owns the listener; when the link fails it ends every subscription
with ``PubSubUnavailable`` (clients resubscribe), then reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from broadcaster import Event

from scheduling.pubsub.backends import SCHEMES, Backend, create_backend

logger = logging.getLogger(__name__)

_OPERATION_TIMEOUT = 5.0  # connect, subscribe, publish, unsubscribe
_PING_TIMEOUT = 2.0


class PubSubUnavailable(Exception):
    """The pub/sub link is down; a subscriber must subscribe again later."""


@dataclass
class HubStats:
    """Plain counters, read by the metrics endpoint."""

    published: int = 0
    publish_failures: int = 0
    delivered: int = 0
    reconnects: int = 0
    subscribers: int = 0


class _Subscription:
    """One local subscriber's bounded buffer; the listener never waits for a slow consumer."""

    __slots__ = ("_buffer", "_ended", "_error", "_limit", "_wakeup", "channel", "entry")

    def __init__(self, channel: str, entry: _Channel, limit: int) -> None:
        self.channel = channel
        self.entry = entry
        self._limit = limit
        self._buffer: deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._ended = False
        self._error: str | None = None

    def push(self, message: str) -> bool:
        if self._ended:
            return False
        if len(self._buffer) >= self._limit:
            self._buffer.clear()  # it is behind anyway: tell it now, not after the backlog
            self.end("subscriber too slow")
            return False
        self._buffer.append(message)
        self._wakeup.set()
        return True

    def end(self, error: str | None) -> None:
        """Stop the iterator: cleanly (None) or with PubSubUnavailable(error) once drained."""
        if not self._ended:
            self._ended, self._error = True, error
            self._wakeup.set()

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> str:
        while not self._buffer:
            if self._ended:
                if self._error is not None:
                    raise PubSubUnavailable(self._error)
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._buffer.popleft()


@dataclass(eq=False, slots=True)
class _Channel:
    """Local subscribers of one channel, sharing one backend subscription."""

    backend: Backend
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # orders (UN)SUBSCRIBE here
    pending: int = 0  # subscribers waiting for the lock
    subscribed: bool = False
    subscribers: set[_Subscription] = field(default_factory=set)


class EventHub:
    """Publishes and subscribes through one supervised backend link."""

    def __init__(
        self,
        url: str,
        *,
        reconnect_delay: float = 0.2,
        max_reconnect_delay: float = 2.0,
        queue_size: int = 256,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"unsupported pub/sub URL; use one of {sorted(SCHEMES)}")
        if reconnect_delay <= 0 or max_reconnect_delay < reconnect_delay or queue_size < 1:
            raise ValueError("need 0 < reconnect_delay <= max_reconnect_delay and queue_size >= 1")
        self._url = url
        self._name = f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}"  # no secrets
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._queue_size = queue_size
        self.stats = HubStats()
        self._backend: Backend | None = None
        self._link_up = False
        self._supervisor: asyncio.Task[None] | None = None
        self._channels: dict[str, _Channel] = {}

    @property
    def connected(self) -> bool:
        """The link is up and the listener is alive."""
        task = self._supervisor
        return self._link_up and task is not None and not task.done()

    async def connect(self) -> None:
        """First attempt; on failure log and leave retrying to the supervisor (never raises)."""
        if self._supervisor is not None:
            return
        try:
            await self._open()
        except Exception as exc:
            logger.warning("pub/sub: cannot connect to %s (%s); retrying", self._name, exc)
        self._supervisor = asyncio.create_task(self._supervise(), name="kokous-pubsub")

    async def disconnect(self) -> None:
        """Stop the supervisor, end every subscription cleanly and close the backend."""
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self._end_all(None)
        backend, self._backend = self._backend, None
        self._link_up = False
        if backend is not None:
            await self._close(backend)

    async def publish(self, channel: str, message: str) -> bool:
        """Hand a message to the backend; False (logged, counted) instead of raising."""
        backend = self._backend
        if backend is None or not self.connected:
            logger.warning("pub/sub: link down; dropped a message on %s", channel)
            self.stats.publish_failures += 1
            return False
        try:
            async with asyncio.timeout(_OPERATION_TIMEOUT):
                await backend.publish(channel, message)
        except Exception as exc:
            logger.warning("pub/sub: publish on %s failed: %r", channel, exc)
            self.stats.publish_failures += 1
            return False
        self.stats.published += 1
        return True

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        """Entered once the backend has the subscription; raises PubSubUnavailable if down."""
        subscription = await self._attach(channel)
        try:
            yield subscription
        finally:
            subscription.end(None)
            await self._detach(subscription)

    async def ping(self) -> bool:
        """Readiness: the backend answers and the listener is alive. Never raises."""
        backend = self._backend
        if backend is None or not self.connected:
            return False
        try:
            async with asyncio.timeout(_PING_TIMEOUT):
                answered = await backend.ping()
        except Exception as exc:
            logger.info("pub/sub: ping of %s failed: %r", self._name, exc)
            return False
        return answered and self.connected

    async def _open(self) -> None:
        backend = create_backend(self._url)
        try:
            async with asyncio.timeout(_OPERATION_TIMEOUT):
                await backend.connect()
        except BaseException:
            await self._close(backend)
            raise
        self._backend, self._link_up = backend, True

    async def _close(self, backend: Backend) -> None:
        try:
            async with asyncio.timeout(_OPERATION_TIMEOUT):
                await backend.disconnect()
        except Exception as exc:
            logger.debug("pub/sub: closing %s: %r", self._name, exc)

    async def _supervise(self) -> None:
        """Run the listener; on failure end subscribers, then reconnect with backoff."""
        delay = self._reconnect_delay
        while True:
            backend = self._backend
            if backend is None:
                await asyncio.sleep(delay)
                try:
                    await self._open()
                except Exception as exc:
                    delay = min(delay * 2, self._max_reconnect_delay)
                    logger.warning("pub/sub: reconnect to %s failed: %r", self._name, exc)
                    continue
                self.stats.reconnects += 1
                delay = self._reconnect_delay
                logger.info("pub/sub: connected to %s", self._name)
                continue
            try:
                while True:
                    self._dispatch(await backend.next_published())
            except Exception as exc:
                logger.warning("pub/sub: lost the link to %s: %r", self._name, exc)
            self._link_up = False
            self._end_all("pub/sub link lost")
            await self._close(backend)
            self._backend = None

    def _dispatch(self, event: Event) -> None:
        entry = self._channels.get(event.channel)
        if entry is None:
            return
        for subscription in list(entry.subscribers):
            if subscription.push(event.message):
                self.stats.delivered += 1
            else:
                self._remove(subscription)
                logger.warning("pub/sub: ended a subscriber too slow for %s", event.channel)

    def _end_all(self, error: str | None) -> None:
        channels, self._channels = self._channels, {}
        for entry in channels.values():
            for subscription in list(entry.subscribers):
                subscription.end(error)
                self._remove(subscription)

    def _remove(self, subscription: _Subscription) -> None:
        if subscription in subscription.entry.subscribers:
            subscription.entry.subscribers.remove(subscription)
            self.stats.subscribers -= 1

    async def _attach(self, channel: str) -> _Subscription:
        backend = self._backend
        if backend is None or not self.connected:
            raise PubSubUnavailable("pub/sub link is down")
        entry = self._channels.get(channel)
        if entry is None:
            entry = self._channels[channel] = _Channel(backend)
        entry.pending += 1
        try:
            async with entry.lock:
                if self._channels.get(channel) is not entry:
                    raise PubSubUnavailable("pub/sub link lost")
                if not entry.subscribed:
                    try:
                        async with asyncio.timeout(_OPERATION_TIMEOUT):
                            await entry.backend.subscribe(channel)
                    except ValueError:
                        raise
                    except Exception as exc:
                        raise PubSubUnavailable(f"cannot subscribe: {exc!r}") from exc
                    if self._channels.get(channel) is not entry:
                        raise PubSubUnavailable("pub/sub link lost")
                    entry.subscribed = True
                subscription = _Subscription(channel, entry, self._queue_size)
                entry.subscribers.add(subscription)
                self.stats.subscribers += 1
                return subscription
        finally:
            entry.pending -= 1
            self._forget_if_unused(channel, entry)

    async def _detach(self, subscription: _Subscription) -> None:
        """The last local subscriber of a channel takes the backend subscription with it."""
        channel, entry = subscription.channel, subscription.entry
        self._remove(subscription)
        if entry.subscribers or entry.pending or self._channels.get(channel) is not entry:
            return
        async with entry.lock:
            if entry.subscribers or entry.pending or not entry.subscribed:
                return  # someone subscribed meanwhile, or the link was lost and reset
            entry.subscribed = False
            try:
                async with asyncio.timeout(_OPERATION_TIMEOUT):
                    await entry.backend.unsubscribe(channel)
            except Exception as exc:
                logger.debug("pub/sub: unsubscribe from %s failed: %r", channel, exc)
        self._forget_if_unused(channel, entry)

    def _forget_if_unused(self, channel: str, entry: _Channel) -> None:
        unused = not (entry.subscribers or entry.pending or entry.subscribed)
        if unused and self._channels.get(channel) is entry:
            del self._channels[channel]
