"""broadcaster backends with the fixes the hub relies on.

Upstream broadcaster 0.3.1 loses its Redis listener silently on a restart, races Redis
subscriptions, and shares one asyncpg connection between LISTEN and NOTIFY. These backends
make every link failure surface as an exception from ``next_published()`` so the hub can
close subscriptions and reconnect, and make ``subscribe()`` return only once the server has
the subscription.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
from broadcaster import BroadcastBackend, Event
from broadcaster._backends.memory import MemoryBackend as _UpstreamMemoryBackend
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

SCHEMES = frozenset({"memory", "redis", "rediss", "postgres", "postgresql"})
LISTEN_APPLICATION_NAME = "kokous-pubsub-listen"
PUBLISH_APPLICATION_NAME = "kokous-pubsub-publish"
NOTIFY_PAYLOAD_LIMIT = 8000  # bytes; PostgreSQL refuses NOTIFY payloads of this size or more
PG_CHANNEL_LIMIT = 63  # bytes; longer identifiers are truncated (LISTEN) or refused (NOTIFY)

_T = TypeVar("_T")


class Backend(Protocol):
    """What the hub needs from a backend: broadcaster's interface plus a readiness probe."""

    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def publish(self, channel: str, message: str) -> None: ...
    async def next_published(self) -> Event: ...
    async def ping(self) -> bool: ...


def create_backend(url: str) -> Backend:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryBackend(url)
    if scheme in ("redis", "rediss"):
        return RedisBackend(url)
    if scheme in ("postgres", "postgresql"):
        return PostgresBackend(url)
    raise ValueError(f"unsupported pub/sub URL scheme {scheme!r}; use one of {sorted(SCHEMES)}")


class MemoryBackend(_UpstreamMemoryBackend):
    """broadcaster's in-process backend unchanged; it cannot lose a link, so ping is True."""

    async def ping(self) -> bool:
        return True


def _keepalive_options() -> dict[int, int]:
    """Notice a vanished peer in about half a minute instead of the kernel's two hours."""
    names = {"TCP_KEEPIDLE": 10, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}
    return {getattr(socket, n): v for n, v in names.items() if hasattr(socket, n)}


class RedisBackend(BroadcastBackend):
    """Redis pub/sub on one dedicated connection, read only by ``next_published``.

    A private sentinel channel is subscribed at connect, so the pub/sub connection is always
    in subscribed mode (redis-py then never reads on it from ``subscribe``) and is watched even
    when no one listens. ``subscribe`` waits for the server's confirmation, read by
    ``next_published``. The pub/sub client never retries: any error ends ``next_published``.
    An idle link is PINGed every ``health_check_interval`` seconds and declared dead after
    three intervals without any reply.
    """

    def __init__(self, url: str, *, health_check_interval: int = 5, timeout: float = 5.0) -> None:
        options: dict[str, Any] = {
            "socket_keepalive": True,
            "socket_keepalive_options": _keepalive_options(),
            "socket_connect_timeout": min(timeout, 2.0),
            "health_check_interval": health_check_interval,
        }
        # URL query arguments (max_connections=, health_check_interval=...) win, as in redis-py.
        self._client = aioredis.Redis.from_url(url, socket_timeout=timeout, retry=Retry(NoBackoff(), 1), **options)
        self._sub_client = aioredis.Redis.from_url(url, **options)
        self._pubsub = self._sub_client.pubsub()
        configured = self._sub_client.connection_pool.connection_kwargs["health_check_interval"]
        self._interval = float(configured or health_check_interval)
        self._timeout = timeout
        self._sentinel = f"kokous:pubsub:sentinel:{uuid.uuid4().hex}"
        self._confirmations: dict[str, list[asyncio.Future[None]]] = {}
        self._last_seen = self._last_ping = 0.0

    async def connect(self) -> None:
        await cast(Awaitable[bool], self._client.ping())
        await self._subscribe_and_confirm(self._sentinel)
        self._last_seen = self._last_ping = asyncio.get_running_loop().time()

    async def _subscribe_and_confirm(self, channel: str) -> None:
        """Only used by connect(), before anyone else reads the pub/sub connection."""
        await self._pubsub.subscribe(channel)
        async with asyncio.timeout(self._timeout):
            while True:
                message = await self._pubsub.get_message(timeout=self._timeout)
                if message is not None and message["type"] == "subscribe":
                    return

    async def disconnect(self) -> None:
        self._fail_confirmations(ConnectionError("Redis backend disconnected"))
        close_pubsub: Callable[[], Awaitable[None]] = self._pubsub.aclose
        try:
            await close_pubsub()
        finally:
            await self._sub_client.aclose()
            await self._client.aclose()

    async def subscribe(self, channel: str) -> None:
        confirmed = asyncio.get_running_loop().create_future()
        waiting = self._confirmations.setdefault(channel, [])
        waiting.append(confirmed)  # before SUBSCRIBE: the reply may be read before we resume
        try:
            await self._pubsub.subscribe(channel)
            async with asyncio.timeout(self._timeout):
                await confirmed
        finally:
            if confirmed in waiting:
                waiting.remove(confirmed)
            if not waiting:
                self._confirmations.pop(channel, None)

    async def unsubscribe(self, channel: str) -> None:
        await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, message: str) -> None:
        await cast(Awaitable[int], self._client.publish(channel, message))

    async def ping(self) -> bool:
        return bool(await cast(Awaitable[bool], self._client.ping()))

    async def next_published(self) -> Event:
        loop = asyncio.get_running_loop()
        try:
            while True:
                message = await self._pubsub.get_message(timeout=min(1.0, self._interval))
                now = loop.time()
                if message is None:
                    if now - self._last_seen > 3 * self._interval:
                        raise ConnectionError("Redis pub/sub connection stopped answering PINGs")
                    if now - self._last_ping >= self._interval:
                        self._last_ping = now
                        await self._pubsub.ping()
                    continue
                self._last_seen = now
                kind = message["type"]
                if kind == "message":
                    return Event(_text(message["channel"]), _text(message["data"]))
                if kind == "subscribe":
                    for confirmed in self._confirmations.pop(_text(message["channel"]), []):
                        if not confirmed.done():
                            confirmed.set_result(None)
        except Exception as exc:
            self._fail_confirmations(exc)
            raise

    def _fail_confirmations(self, exc: Exception) -> None:
        for waiting in self._confirmations.values():
            for confirmed in waiting:
                if not confirmed.done():
                    confirmed.set_exception(ConnectionError(f"Redis pub/sub link failed: {exc}"))
        self._confirmations.clear()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class PostgresBackend(BroadcastBackend):
    """LISTEN/NOTIFY with one connection for LISTEN and another, locked, for NOTIFY.

    asyncpg runs one operation per connection at a time, so publishes are serialised. The
    listen connection's termination listener pushes an error into the event queue; an idle
    link is also probed with ``SELECT 1`` so a silent network failure ends the wait too.
    """

    def __init__(self, url: str, *, probe_interval: float = 5.0, timeout: float = 5.0) -> None:
        self._url = url
        self._probe_interval = probe_interval
        self._timeout = timeout
        self._queue: asyncio.Queue[Event | Exception] = asyncio.Queue()
        self._listen: Any = None
        self._publish: Any = None
        self._listen_lock = asyncio.Lock()
        self._publish_lock = asyncio.Lock()
        self._closing = False

    @property
    def listen_pid(self) -> int | None:
        """Server pid of the LISTEN connection (operators and tests can find it by this)."""
        return None if self._listen is None else int(self._listen.get_server_pid())

    @property
    def publish_pid(self) -> int | None:
        return None if self._publish is None else int(self._publish.get_server_pid())

    async def _open(self, application_name: str) -> Any:
        return await asyncpg.connect(
            self._url, timeout=self._timeout, server_settings={"application_name": application_name}
        )

    async def connect(self) -> None:
        self._listen = await self._open(LISTEN_APPLICATION_NAME)
        self._listen.add_termination_listener(self._on_terminated)
        self._publish = await self._open(PUBLISH_APPLICATION_NAME)

    async def disconnect(self) -> None:
        self._closing = True
        for connection in (self._listen, self._publish):
            if connection is None:
                continue
            try:
                await asyncio.wait_for(connection.close(), self._timeout)
            except Exception:
                connection.terminate()

    def _on_terminated(self, _connection: object) -> None:
        if not self._closing:
            self._queue.put_nowait(ConnectionError("PostgreSQL closed the LISTEN connection"))

    def _on_notify(self, _connection: object, _pid: int, channel: str, payload: str) -> None:
        self._queue.put_nowait(Event(channel, payload))

    async def subscribe(self, channel: str) -> None:
        _check_channel(channel)
        async with self._listen_lock:
            await self._listen.add_listener(channel, self._on_notify)

    async def unsubscribe(self, channel: str) -> None:
        async with self._listen_lock:
            await self._listen.remove_listener(channel, self._on_notify)

    async def publish(self, channel: str, message: str) -> None:
        _check_channel(channel)
        if len(message.encode()) >= NOTIFY_PAYLOAD_LIMIT:
            raise ValueError(f"NOTIFY payload must be under {NOTIFY_PAYLOAD_LIMIT} bytes")
        await self._on_publish_connection(
            lambda connection: connection.execute("SELECT pg_notify($1, $2)", channel, message)
        )

    async def ping(self) -> bool:
        if self._listen is None or self._listen.is_closed():
            return False
        value = await self._on_publish_connection(lambda c: c.fetchval("SELECT 1"))
        return bool(value == 1)

    async def _on_publish_connection(self, operation: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run on the publish connection; if it is (or turns out) dead, reconnect once."""
        async with self._publish_lock:
            if self._publish is None or self._publish.is_closed():
                self._publish = await self._open(PUBLISH_APPLICATION_NAME)
                return await operation(self._publish)
            try:
                return await operation(self._publish)
            except Exception:
                if not self._publish.is_closed():
                    raise
            self._publish = await self._open(PUBLISH_APPLICATION_NAME)
            return await operation(self._publish)

    async def next_published(self) -> Event:
        while True:
            if self._listen is None or self._listen.is_closed():
                raise ConnectionError("PostgreSQL LISTEN connection is closed")
            try:
                item = await asyncio.wait_for(self._queue.get(), self._probe_interval)
            except TimeoutError:
                await self._probe()
                continue
            if isinstance(item, Exception):
                raise item
            return item

    async def _probe(self) -> None:
        try:
            async with self._listen_lock:
                await asyncio.wait_for(self._listen.fetchval("SELECT 1"), self._timeout)
        except Exception as exc:
            raise ConnectionError(f"PostgreSQL LISTEN connection failed a probe: {exc}") from exc


def _check_channel(channel: str) -> None:
    if not channel or len(channel.encode()) > PG_CHANNEL_LIMIT:
        raise ValueError(f"PostgreSQL channel names must be 1 to {PG_CHANNEL_LIMIT} bytes")
