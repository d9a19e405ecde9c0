"""broadcaster backends fixed for the hub: any link failure is raised by next_published().

Upstream 0.3.1 loses its Redis listener silently, races Redis subscriptions and shares one
asyncpg connection for LISTEN and NOTIFY. ``subscribe()`` returns once the server has it.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import asyncpg  # asyncpg ships no type information
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
# Notice a vanished Redis peer in about half a minute instead of the kernel's two hours.
_KEEPALIVE = {"TCP_KEEPIDLE": 10, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}


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


class RedisBackend(BroadcastBackend):
    """Redis pub/sub on one dedicated connection that only ``next_published`` reads.

    A private sentinel subscription keeps it in subscribed mode (so redis-py never reads it
    elsewhere) and watched when idle: PINGed every ``health_check_interval`` s, dead after three
    silent intervals. ``subscribe`` waits for the server's confirmation. No retries on it.
    """

    def __init__(self, url: str, *, health_check_interval: int = 5, timeout: float = 5.0) -> None:
        options: dict[str, Any] = {
            "socket_keepalive": True,
            "socket_keepalive_options": {
                getattr(socket, name): value for name, value in _KEEPALIVE.items() if hasattr(socket, name)
            },
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
        self._closed = False

    async def connect(self) -> None:
        await self._command(self._client.ping())
        await self._pubsub.subscribe(self._sentinel)  # no one else reads the connection yet
        async with asyncio.timeout(self._timeout):
            message = None
            while message is None or message["type"] != "subscribe":
                message = await self._pubsub.get_message(timeout=self._timeout)
        self._last_seen = self._last_ping = asyncio.get_running_loop().time()

    async def disconnect(self) -> None:
        self._closed = True
        self._fail_confirmations(ConnectionError("Redis backend disconnected"))
        close_pubsub: Callable[[], Awaitable[None]] = self._pubsub.aclose
        try:
            await close_pubsub()
        finally:
            await self._sub_client.aclose()
            await self._client.aclose()

    async def subscribe(self, channel: str) -> None:
        if self._pubsub.connection is None:  # closed: redis-py would quietly open a new one
            raise ConnectionError("Redis pub/sub connection is closed")
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

    async def unsubscribe(self, channel: str) -> None:
        if self._pubsub.connection is not None:
            await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, message: str) -> None:
        await self._command(self._client.publish(channel, message))

    async def ping(self) -> bool:
        return bool(await self._command(self._client.ping()))

    async def _command(self, command: Any) -> Any:
        """A retry may reconnect after disconnect(): close that connection too."""
        try:
            return await command
        finally:
            if self._closed:
                await self._client.aclose()

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
                if message["type"] == "message":
                    return Event(_text(message["channel"]), _text(message["data"]))
                if message["type"] == "subscribe":
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
    """LISTEN on one connection, NOTIFY on another behind a lock (asyncpg runs one operation
    per connection). The LISTEN connection's termination listener queues an error; when idle it
    is probed with ``SELECT 1``, so a silent network failure ends ``next_published`` too.
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
        for connection in filter(None, (self._listen, self._publish)):
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
        return bool(await self._on_publish_connection(lambda c: c.fetchval("SELECT 1")) == 1)

    async def _on_publish_connection(self, operation: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run on the publish connection; if it is (or turns out) dead, reconnect once."""
        async with self._publish_lock:
            reconnected = False
            try:
                while True:
                    if self._closing:
                        raise ConnectionError("PostgreSQL pub/sub backend is closed")
                    if self._publish is None or self._publish.is_closed():
                        self._publish = await self._open(PUBLISH_APPLICATION_NAME)
                        reconnected = True
                    try:
                        return await operation(self._publish)
                    except Exception:
                        if reconnected or not self._publish.is_closed():
                            raise
            finally:
                if self._closing and self._publish is not None:
                    self._publish.terminate()  # disconnect() ran meanwhile: leave nothing open

    async def next_published(self) -> Event:
        while True:
            if self._listen is None or self._listen.is_closed():
                raise ConnectionError("PostgreSQL LISTEN connection is closed")
            try:
                item = await asyncio.wait_for(self._queue.get(), self._probe_interval)
            except TimeoutError:  # idle: make sure the link still answers
                try:
                    async with self._listen_lock:
                        await asyncio.wait_for(self._listen.fetchval("SELECT 1"), self._timeout)
                except Exception as exc:
                    raise ConnectionError(f"PostgreSQL LISTEN probe failed: {exc}") from exc
                continue
            if isinstance(item, Exception):
                raise item
            return item


def _check_channel(channel: str) -> None:
    if not channel or len(channel.encode()) > PG_CHANNEL_LIMIT:
        raise ValueError(f"PostgreSQL channel names must be 1 to {PG_CHANNEL_LIMIT} bytes")
