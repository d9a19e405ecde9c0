"""The supervised pub/sub hub: one backend link per process, fanned out to local subscribers.

broadcaster's ``Broadcast`` lets its listener die silently; here a supervisor owns it, ends
every subscription with ``PubSubUnavailable`` when the link fails, and reconnects with backoff.
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

from pubsub.backends import SCHEMES, Backend, create_backend

logger = logging.getLogger(__name__)

_OPERATION_TIMEOUT = 5.0  # connect, subscribe, publish, unsubscribe; a ping gets 2 s


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


@dataclass(eq=False, slots=True)
class _Subscription:
    """One local subscriber's bounded buffer; the listener never waits for a slow consumer."""

    entry: _Channel
    limit: int
    buffer: deque[str] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    error: str | None = None

    def push(self, message: str) -> bool:
        if self.ended:
            return False
        if len(self.buffer) >= self.limit:
            self.buffer.clear()  # it is behind anyway: tell it now, not after the backlog
            self.end("subscriber too slow")
            return False
        self.buffer.append(message)
        self.wakeup.set()
        return True

    def end(self, error: str | None) -> None:
        """Stop the iterator: cleanly (None) or with PubSubUnavailable(error) once drained."""
        if not self.ended:
            self.ended, self.error = True, error
            self.wakeup.set()

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> str:
        while not self.buffer:
            if self.ended:
                if self.error is not None:
                    raise PubSubUnavailable(self.error)
                raise StopAsyncIteration
            self.wakeup.clear()
            await self.wakeup.wait()
        return self.buffer.popleft()


@dataclass(eq=False, slots=True)
class _Channel:
    """Local subscribers of one channel, sharing one backend subscription."""

    name: str
    backend: Backend
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # orders (UN)SUBSCRIBE here
    pending: int = 0  # subscribers waiting for the lock
    subscribed: bool = False
    subscribers: set[_Subscription] = field(default_factory=set)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


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
        self._reconnect_delay, self._max_reconnect_delay = reconnect_delay, max_reconnect_delay
        self._queue_size = queue_size
        self.stats = HubStats()
        self._backend: Backend | None = None
        self._link_up = False
        self._supervisor: asyncio.Task[None] | None = None
        self._channels: dict[str, _Channel] = {}

    @property
    def connected(self) -> bool:
        """The link is up and the listener is alive."""
        return self._link_up and self._supervisor is not None and not self._supervisor.done()

    async def connect(self) -> None:
        """First attempt; on failure log and leave retrying to the supervisor (never raises)."""
        if self._supervisor is not None:
            return
        try:
            await self._open()
        except Exception as exc:
            logger.warning("pub/sub: cannot connect to %s (%s); retrying", self._name, _why(exc))
        self._supervisor = asyncio.create_task(self._supervise(), name="kokous-pubsub")

    async def disconnect(self) -> None:
        """Stop the supervisor, end every subscription cleanly and close the backend."""
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self._end_all(None)
        backend, self._backend, self._link_up = self._backend, None, False
        if backend is not None:
            await self._close(backend)

    async def publish(self, channel: str, message: str) -> bool:
        """Hand a message to the backend; False (logged, counted) instead of raising."""
        try:
            if self._backend is None or not self.connected:
                raise PubSubUnavailable("pub/sub link is down")
            async with asyncio.timeout(_OPERATION_TIMEOUT):
                await self._backend.publish(channel, message)
        except Exception as exc:
            logger.warning("pub/sub: publish on %s failed: %s", channel, _why(exc))
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
        if self._backend is None or not self.connected:
            return False
        try:
            async with asyncio.timeout(2.0):
                return await self._backend.ping() and self.connected
        except Exception as exc:
            logger.info("pub/sub: ping of %s failed: %s", self._name, _why(exc))
            return False

    async def _open(self) -> Backend:
        backend = create_backend(self._url)
        try:
            async with asyncio.timeout(_OPERATION_TIMEOUT):
                await backend.connect()
        except BaseException:
            await self._close(backend)
            raise
        self._backend, self._link_up = backend, True
        return backend

    async def _close(self, backend: Backend) -> None:
        try:
            async with asyncio.timeout(_OPERATION_TIMEOUT):
                await backend.disconnect()
        except Exception as exc:
            logger.debug("pub/sub: closing %s: %s", self._name, _why(exc))

    async def _supervise(self) -> None:
        """Run the listener; on failure end subscribers, then reconnect with backoff."""
        delay, backend = self._reconnect_delay, self._backend
        while True:
            if backend is None:
                await asyncio.sleep(delay)
                try:
                    backend = await self._open()
                except Exception as exc:
                    delay = min(delay * 2, self._max_reconnect_delay)
                    logger.warning("pub/sub: reconnect to %s failed: %s", self._name, _why(exc))
                    continue
                self.stats.reconnects += 1
                delay = self._reconnect_delay
                logger.info("pub/sub: connected to %s", self._name)
            try:
                while True:
                    self._dispatch(await backend.next_published())
            except Exception as exc:
                logger.warning("pub/sub: lost the link to %s: %s", self._name, _why(exc))
            self._link_up = False
            self._end_all("pub/sub link lost")
            await self._close(backend)  # still referenced by _backend if we are cancelled here
            self._backend = backend = None

    def _dispatch(self, event: Event) -> None:
        entry = self._channels.get(event.channel)
        for subscription in list(entry.subscribers) if entry else []:
            if subscription.push(event.message):
                self.stats.delivered += 1
            else:
                self._remove(subscription)
                logger.warning("pub/sub: ended a subscriber too slow for %s", event.channel)

    def _end_all(self, error: str | None) -> None:
        channels, self._channels = self._channels, {}
        for entry in channels.values():
            entry.subscribed = False  # that backend subscription dies with the link
            for subscription in list(entry.subscribers):
                subscription.end(error)
                self._remove(subscription)

    def _remove(self, subscription: _Subscription) -> None:
        if subscription in subscription.entry.subscribers:
            subscription.entry.subscribers.remove(subscription)
            self.stats.subscribers -= 1

    async def _attach(self, channel: str) -> _Subscription:
        if self._backend is None or not self.connected:
            raise PubSubUnavailable("pub/sub link is down")
        entry = self._channels.setdefault(channel, _Channel(channel, self._backend))
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
                        raise PubSubUnavailable(f"cannot subscribe: {_why(exc)}") from exc
                    if self._channels.get(channel) is not entry:
                        raise PubSubUnavailable("pub/sub link lost")
                    entry.subscribed = True
                subscription = _Subscription(entry, self._queue_size)
                entry.subscribers.add(subscription)
                self.stats.subscribers += 1
                return subscription
        finally:
            entry.pending -= 1
            self._forget_if_unused(entry)

    async def _detach(self, subscription: _Subscription) -> None:
        """The last local subscriber of a channel takes the backend subscription with it."""
        entry = subscription.entry
        self._remove(subscription)
        if entry.subscribers or not entry.subscribed:
            return
        async with entry.lock:
            if entry.subscribers or entry.pending or not entry.subscribed:
                return  # someone subscribed meanwhile, or the link was lost and reset
            entry.subscribed = False
            try:
                async with asyncio.timeout(_OPERATION_TIMEOUT):
                    await entry.backend.unsubscribe(entry.name)
            except Exception as exc:
                logger.debug("pub/sub: unsubscribe from %s failed: %s", entry.name, _why(exc))
        self._forget_if_unused(entry)

    def _forget_if_unused(self, entry: _Channel) -> None:
        unused = not (entry.subscribers or entry.pending or entry.subscribed)
        if unused and self._channels.get(entry.name) is entry:
            del self._channels[entry.name]
