"""The pub/sub hub against real backends: in-process memory, Redis and PostgreSQL.

Link failures are real ones: a private redis-server is killed and restarted, and the hub's
PostgreSQL LISTEN connection is terminated by the server.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from redis import asyncio as aioredis

from pubsub import EventHub, PubSubUnavailable
from pubsub.backends import LISTEN_APPLICATION_NAME, PUBLISH_APPLICATION_NAME
from tests.support.polling import eventually
from tests.support.redis_process import RedisProcess, answers_ping
from tests.support.services_available import check_postgres, check_redis, unavailable

MakeHub = Callable[..., Awaitable[EventHub]]
DEADLINE = 5.0


@pytest.fixture(scope="session")
def redis_url() -> str:
    return check_redis()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return check_postgres()


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def shared_url(request: pytest.FixtureRequest) -> str:
    """A backend that several processes (here: several hubs) can share."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def make_hub() -> AsyncIterator[MakeHub]:
    hubs: list[EventHub] = []

    async def make(url: str, **options: Any) -> EventHub:
        hub = EventHub(url, **options)
        hubs.append(hub)
        await hub.connect()
        return hub

    yield make
    for hub in hubs:
        await hub.disconnect()


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    """A redis-server of our own on a free port: the shared one is never restarted."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = RedisProcess()
    try:
        yield server
    finally:
        server.close()


def new_channel() -> str:
    return f"kokous_test_{uuid4().hex}"


async def receive(messages: AsyncIterator[str]) -> str:
    async with asyncio.timeout(DEADLINE):
        return await anext(messages)


async def assert_unavailable(messages: AsyncIterator[str]) -> None:
    """The iterator must fail with PubSubUnavailable before the deadline, not hang."""
    with pytest.raises(PubSubUnavailable):
        await drain(messages)


async def drain(messages: AsyncIterator[str]) -> list[str]:
    async with asyncio.timeout(DEADLINE):
        return [message async for message in messages]


# covers: SUB-1, SUB-5
async def test_publish_reaches_a_subscriber(url: str, make_hub: MakeHub) -> None:
    hub = await make_hub(url)
    channel = new_channel()
    assert hub.connected
    assert await hub.ping() is True
    async with hub.subscribe(channel) as messages:
        assert await hub.publish(channel, "hello") is True
        assert await receive(messages) == "hello"
    assert (hub.stats.published, hub.stats.delivered, hub.stats.subscribers) == (1, 1, 0)


# covers: SUB-1
async def test_local_subscribers_share_a_channel_and_leave_cleanly(url: str, make_hub: MakeHub) -> None:
    hub = await make_hub(url)
    channel = new_channel()
    async with hub.subscribe(channel) as staying:
        async with hub.subscribe(channel) as leaving:
            assert hub.stats.subscribers == 2
            assert await hub.publish(channel, "both")
            assert await receive(leaving) == "both"
            assert await receive(staying) == "both"
        assert await hub.publish(channel, "after")
        assert await receive(staying) == "after"
        with pytest.raises(StopAsyncIteration):  # closed: it got nothing more
            await anext(leaving)
    assert hub.stats.subscribers == 0
    # The backend subscription went with the last subscriber; a new one sets it up again.
    async with hub.subscribe(channel) as fresh:
        assert await hub.publish(channel, "fresh")
        assert await receive(fresh) == "fresh"


# covers: SUB-1
async def test_disconnect_ends_subscriptions_cleanly(url: str, make_hub: MakeHub) -> None:
    hub = await make_hub(url)
    async with hub.subscribe(new_channel()) as messages:
        await hub.disconnect()
        assert await drain(messages) == []
    assert not hub.connected
    assert await hub.ping() is False
    assert await hub.publish(new_channel(), "late") is False


# covers: SUB-1
async def test_a_subscriber_that_falls_behind_is_ended(make_hub: MakeHub) -> None:
    hub = await make_hub("memory://", queue_size=4)
    channel = new_channel()
    async with hub.subscribe(channel) as slow:
        for number in range(10):
            assert await hub.publish(channel, str(number))
        await eventually(
            lambda: hub.stats.subscribers == 0, bool, "the slow subscriber is dropped", timeout=DEADLINE, interval=0.02
        )
        with pytest.raises(PubSubUnavailable, match="too slow"):
            await receive(slow)
    async with hub.subscribe(channel) as keeping_up:
        assert await hub.publish(channel, "next")
        assert await receive(keeping_up) == "next"


# covers: OPS-1, OPS-4
async def test_unknown_scheme_and_hub_not_connected() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        EventHub("kafka://127.0.0.1:9092")
    hub = EventHub("memory://")
    assert not hub.connected
    assert await hub.publish(new_channel(), "x") is False
    assert await hub.ping() is False
    with pytest.raises(PubSubUnavailable):
        async with hub.subscribe(new_channel()):
            pass


# covers: SUB-5
async def test_hubs_of_two_processes_share_events(shared_url: str, make_hub: MakeHub) -> None:
    publisher, receiver = await make_hub(shared_url), await make_hub(shared_url)
    channel = new_channel()
    async with receiver.subscribe(channel) as messages:
        assert await publisher.publish(channel, "across")
        assert await receive(messages) == "across"
        sent = [f"message {number}" for number in range(50)]
        results = await asyncio.gather(*(publisher.publish(channel, m) for m in sent))
        assert results == [True] * 50
        got = [await receive(messages) for _ in sent]
    assert sorted(got) == sorted(sent)
    assert publisher.stats.publish_failures == 0
    assert receiver.stats.delivered == 51


# covers: SUB-5
@pytest.mark.redis
async def test_redis_local_subscribers_share_one_server_subscription(redis_url: str, make_hub: MakeHub) -> None:
    hub = await make_hub(redis_url)
    channel = new_channel()
    observer = aioredis.Redis.from_url(redis_url)

    async def server_subscribers() -> int:
        [(_name, count)] = await observer.pubsub_numsub(channel)
        return int(count)

    async def server_unsubscribed() -> bool:
        return await server_subscribers() == 0

    try:
        async with hub.subscribe(channel), hub.subscribe(channel):
            assert await server_subscribers() == 1
        await eventually(
            server_unsubscribed,
            bool,
            "the last local subscriber unsubscribed the server",
            timeout=DEADLINE,
            interval=0.02,
        )
    finally:
        await observer.aclose()


# covers: SUB-5
@pytest.mark.redis
async def test_redis_url_options_are_accepted(redis_url: str, make_hub: MakeHub) -> None:
    separator = "&" if "?" in redis_url else "?"
    hub = await make_hub(f"{redis_url}{separator}max_connections=20&health_check_interval=1")
    channel = new_channel()
    async with hub.subscribe(channel) as messages:
        assert await hub.publish(channel, "with options")
        assert await receive(messages) == "with options"
    assert await hub.ping() is True


# covers: SUB-5, OPS-4
@pytest.mark.redis
async def test_redis_restart_ends_subscribers_then_recovers(private_redis: RedisProcess, make_hub: MakeHub) -> None:
    private_redis.start()
    hub = await make_hub(private_redis.url, reconnect_delay=0.05, max_reconnect_delay=0.5)
    channel = new_channel()
    async with hub.subscribe(channel) as messages:
        assert await hub.publish(channel, "before")
        assert await receive(messages) == "before"
        private_redis.kill()
        await assert_unavailable(messages)

    assert not hub.connected
    assert await hub.publish(channel, "while down") is False
    assert hub.stats.publish_failures == 1
    assert await hub.ping() is False
    with pytest.raises(PubSubUnavailable):
        async with hub.subscribe(channel):
            pass

    private_redis.start()
    await eventually(lambda: hub.connected, bool, "the hub reconnected", timeout=DEADLINE, interval=0.02)
    assert await hub.ping() is True
    assert hub.stats.reconnects >= 1
    async with hub.subscribe(channel) as messages:
        assert await hub.publish(channel, "after")
        assert await receive(messages) == "after"


# covers: SUB-5, OPS-4
@pytest.mark.redis
async def test_hub_started_while_redis_is_down_connects_later(
    private_redis: RedisProcess, make_hub: MakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pubsub.hub"):
        hub = await make_hub(private_redis.url, reconnect_delay=0.05, max_reconnect_delay=0.2)
    assert "cannot connect" in caplog.text
    assert not hub.connected
    assert await hub.ping() is False
    private_redis.start()
    await eventually(hub.ping, bool, "ping answers once Redis is up", timeout=DEADLINE, interval=0.02)
    assert hub.connected
    assert hub.stats.reconnects == 1
    channel = new_channel()
    async with hub.subscribe(channel) as messages:
        assert await hub.publish(channel, "first")
        assert await receive(messages) == "first"


async def terminate(postgres_url: str, application_name: str, pid: int) -> bool:
    admin = await asyncpg.connect(postgres_url)
    try:
        return bool(
            await admin.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid = $2",
                application_name,
                pid,
            )
        )
    finally:
        await admin.close()


# covers: SUB-5, OPS-4
@pytest.mark.postgres
async def test_postgres_listen_connection_loss_ends_subscribers_then_recovers(
    postgres_url: str, make_hub: MakeHub
) -> None:
    hub = await make_hub(postgres_url, reconnect_delay=0.05)
    channel = new_channel()
    async with hub.subscribe(channel) as messages:
        assert await hub.publish(channel, "before")
        assert await receive(messages) == "before"
        listen_pid = hub._backend.listen_pid
        assert await terminate(postgres_url, LISTEN_APPLICATION_NAME, listen_pid)
        await assert_unavailable(messages)

    await eventually(lambda: hub.connected, bool, "the hub reconnected", timeout=DEADLINE, interval=0.02)
    assert await hub.ping() is True
    assert hub.stats.reconnects == 1
    assert hub._backend.listen_pid != listen_pid
    async with hub.subscribe(channel) as messages:
        assert await hub.publish(channel, "after")
        assert await receive(messages) == "after"


# covers: SUB-5
@pytest.mark.postgres
async def test_postgres_publish_reconnects_once_after_losing_its_connection(
    postgres_url: str, make_hub: MakeHub
) -> None:
    hub = await make_hub(postgres_url)
    channel = new_channel()
    publish_pid = hub._backend.publish_pid
    assert await terminate(postgres_url, PUBLISH_APPLICATION_NAME, publish_pid)
    async with hub.subscribe(channel) as messages:
        assert await hub.publish(channel, "through a new connection") is True
        assert await receive(messages) == "through a new connection"
    assert hub._backend.publish_pid != publish_pid
    assert hub.stats.reconnects == 0  # the LISTEN link was never lost


# covers: SUB-5
@pytest.mark.postgres
async def test_postgres_refuses_payloads_of_8000_bytes_or_more(
    postgres_url: str, make_hub: MakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await make_hub(postgres_url)
    channel = new_channel()
    async with hub.subscribe(channel) as messages:
        with caplog.at_level(logging.WARNING, logger="pubsub.hub"):
            assert await hub.publish(channel, "x" * 9000) is False
        assert "ValueError" in caplog.text
        assert hub.stats.publish_failures == 1
        assert hub.connected
        assert await hub.publish(channel, "y" * 7000) is True
        assert await receive(messages) == "y" * 7000


# covers: SUB-5 (the helper the restart tests rely on)
def test_private_redis_restarts_on_its_port(private_redis: RedisProcess) -> None:
    private_redis.start()
    port = private_redis.port
    private_redis.kill()
    assert not answers_ping(port)
    private_redis.start()
    assert private_redis.port == port
    assert answers_ping(port)
