"""Several server processes share one pub/sub backend (SUB-5, OPS-1, QUALITY B6 faults).

An event raised through process A reaches a subscriber on process B; when the pub/sub server
goes away, B's subscribers get an error within 5 s instead of hanging, and B serves live
updates again once the server is back.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql.transport.exceptions import TransportQueryError

from common.values import CalendarProvider, Weekday
from db.engine import Database
from db.models import Calendar, CalendarConnection
from pubsub import EventHub
from scheduling.calendars.clients import ProviderSettings
from scheduling.clock import system_clock
from scheduling.limits import AbuseLimits, LimitRules, MemoryCounters
from scheduling.notifications.mailer import Mailer
from scheduling.pages.rules import WeeklyHours
from scheduling.pages.service import PageDraft
from scheduling.services import Services
from tests.support.redis_process import RedisProcess
from tests.support.services_available import check_postgres, unavailable
from tests.support.ws_client import PROTOCOLS, WINDOW, Watcher, ws_session
from tests.system.processes import ServerProcess, kokous_servers

SEED_LIMITS = LimitRules(
    client_per_minute=10,
    client_per_hour=50,
    page_per_minute=60,
    bookings_per_client_and_page_per_day=5,
    emails_per_address_per_day=10,
)

pytestmark = pytest.mark.system

TOGGLE = """
mutation($id: ID!, $on: Boolean!) {
  updateCalendarConnection(id: $id, input: {schedulingPages: $on}) { __typename }
}
"""


async def seed_owner_with_page(database_url: str) -> tuple[str, uuid.UUID]:
    """An owner with a page and a calendar connection, written straight to the database."""
    db = Database(database_url)
    hub = EventHub("memory://")
    await hub.connect()
    services = Services.build(
        db=db,
        hub=hub,
        channel_prefix="seed",
        public_url="http://127.0.0.1:8000",
        secret_keys=("seed-key-of-sixteen-chars",),
        mailer=Mailer(smtp_url=None, outbox_dir=Path(tempfile.mkdtemp()), sender="seed@example.com"),
        dashboard_url="http://127.0.0.1:8000/dashboard",
        clock=system_clock,
        answer_cache_entries=0,
        providers=ProviderSettings(),
        push_address=None,
        limits=AbuseLimits(counters=MemoryCounters(), rules=SEED_LIMITS, prefix="seed"),
        request_ttl=timedelta(days=7),
    )
    try:
        created = await services.users.create(email=f"{uuid.uuid4().hex[:8]}@example.com")
        assert not hasattr(created, "field"), created
        user, token = created.user, created.token  # type: ignore[union-attr]

        every_day = [WeeklyHours(day, "00:00", "24:00") for day in Weekday]
        await services.pages.create(
            user.id, PageDraft(slug="team", name="Team call", durations=[30], weekly_hours=every_day, timezone="UTC")
        )
        async with db.transaction() as session:
            connection = CalendarConnection(user_id=user.id, provider=CalendarProvider.GOOGLE, account_email=user.email)
            session.add(connection)
            await session.flush()
            session.add(Calendar(connection_id=connection.id, external_id="primary", name="Work", is_primary=True))
        return token, connection.id
    finally:
        await hub.disconnect()
        await db.dispose()


async def toggle(server: ServerProcess, token: str, connection_id: uuid.UUID, on: bool) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        response = await http.post(
            "/graphql",
            json={"query": TOGGLE, "variables": {"id": str(connection_id), "on": on}},
            headers={"authorization": f"Bearer {token}"},
        )
    assert response.json() == {"data": {"updateCalendarConnection": {"__typename": "CalendarConnection"}}}


def status_of(message: dict[str, Any] | BaseException) -> str:
    assert isinstance(message, dict), message
    return str(message["slotsChanged"]["status"])


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    try:
        server = RedisProcess()
    except FileNotFoundError:
        unavailable("redis-server is not installed (make test installs it as root)")
    try:
        server.start()
        yield server
    finally:
        server.close()


def server_env(database_url: str, broadcast_url: str, prefix: str) -> dict[str, str]:
    return {
        "KOKOUS_DATABASE_URL": database_url,
        "KOKOUS_BROADCAST_URL": broadcast_url,
        "KOKOUS_BROADCAST_CHANNEL_PREFIX": prefix,
        "KOKOUS_LOG_LEVEL": "WARNING",
    }


async def assert_event_crosses(
    a: ServerProcess, b: ServerProcess, token: str, connection_id: uuid.UUID, protocol: str
) -> None:
    async with ws_session(b.ws_url, protocol) as session:
        watcher = Watcher(session, {"slug": "team", **WINDOW})
        assert status_of(await watcher.next()) == "ONLINE"
        await toggle(a, token, connection_id, on=False)
        assert status_of(await watcher.next()) == "OFFLINE"
        await toggle(a, token, connection_id, on=True)
        assert status_of(await watcher.next()) == "ONLINE"
        await watcher.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_event_through_one_process_reaches_another_over_redis(
    postgres_url: str, redis_url: str, channel_prefix: str, tmp_path: Path, protocol: str
) -> None:
    # covers: SUB-5, SUB-4, OPS-1
    token, connection_id = await seed_owner_with_page(postgres_url)
    with kokous_servers(2, server_env(postgres_url, redis_url, channel_prefix), tmp_path) as (a, b):
        await assert_event_crosses(a, b, token, connection_id, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_event_through_one_process_reaches_another_over_postgres(
    postgres_url: str, channel_prefix: str, tmp_path: Path, protocol: str
) -> None:
    # covers: SUB-5, SUB-4, OPS-1
    token, connection_id = await seed_owner_with_page(postgres_url)
    broadcast = postgres_url.replace("postgresql+asyncpg://", "postgres://", 1)
    with kokous_servers(2, server_env(postgres_url, broadcast, channel_prefix), tmp_path) as (a, b):
        await assert_event_crosses(a, b, token, connection_id, protocol)


async def test_processes_share_a_sqlite_file(
    sqlite_url: str, redis_url: str, channel_prefix: str, tmp_path: Path
) -> None:
    # covers: SUB-5, OPS-1
    token, connection_id = await seed_owner_with_page(sqlite_url)
    with kokous_servers(2, server_env(sqlite_url, redis_url, channel_prefix), tmp_path) as (a, b):
        await assert_event_crosses(a, b, token, connection_id, "graphql-transport-ws")


async def wait_until(predicate: Any, timeout: float, what: str) -> float:
    """Seconds until ``predicate()`` is true; fails with ``what`` after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout} s")


async def ready(server: ServerProcess) -> bool:
    async with httpx.AsyncClient(timeout=1) as http:
        try:
            return (await http.get(f"{server.base_url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False


async def test_redis_restart_ends_subscriptions_with_an_error_then_recovers(
    postgres_url: str, redis_process: RedisProcess, channel_prefix: str, tmp_path: Path
) -> None:
    # covers: SUB-5, OPS-4
    token, connection_id = await seed_owner_with_page(postgres_url)
    with kokous_servers(2, server_env(postgres_url, redis_process.url, channel_prefix), tmp_path) as (a, b):
        async with ws_session(b.ws_url, "graphql-transport-ws") as session:
            watcher = Watcher(session, {"slug": "team", **WINDOW})
            assert status_of(await watcher.next()) == "ONLINE"
            redis_process.kill()
            killed_at = time.monotonic()
            error = await watcher.next(timeout=5)
            assert time.monotonic() - killed_at < 5
            assert isinstance(error, TransportQueryError), error
            assert error.errors[0]["extensions"]["code"] == "LIVE_UPDATES_INTERRUPTED"  # type: ignore[index]
            await wait_until(lambda: _not(ready(b)), 5, "readyz reporting pub/sub down")
            # Bookings and other writes keep working while pub/sub is down.
            await toggle(a, token, connection_id, on=False)

            redis_process.start()
            await wait_until(lambda: ready(a), 5, "process A ready again")
            await wait_until(lambda: ready(b), 5, "process B ready again")
            again = Watcher(session, {"slug": "team", **WINDOW})
            assert status_of(await again.next()) == "OFFLINE"
            await toggle(a, token, connection_id, on=True)
            assert status_of(await again.next()) == "ONLINE"
            await again.close()


async def _not(awaitable: Any) -> bool:
    return not await awaitable


async def test_postgres_listener_loss_ends_subscriptions_with_an_error_then_recovers(
    postgres_url: str, channel_prefix: str, tmp_path: Path
) -> None:
    # covers: SUB-5, OPS-4
    server_url = check_postgres()
    token, connection_id = await seed_owner_with_page(postgres_url)
    broadcast = postgres_url.replace("postgresql+asyncpg://", "postgres://", 1)
    database_name = postgres_url.rsplit("/", 1)[1]
    with kokous_servers(2, server_env(postgres_url, broadcast, channel_prefix), tmp_path) as (a, b):
        async with ws_session(b.ws_url, "graphql-transport-ws") as session:
            watcher = Watcher(session, {"slug": "team", **WINDOW})
            assert status_of(await watcher.next()) == "ONLINE"
            import asyncpg

            admin = await asyncpg.connect(server_url)
            try:
                # As a server restart looks to the clients: their pub/sub connections drop.
                terminated = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = $1 AND application_name LIKE 'kokous-pubsub-%'",
                    database_name,
                )
            finally:
                await admin.close()
            assert terminated >= 2
            error = await watcher.next(timeout=5)
            assert isinstance(error, TransportQueryError), error
            assert error.errors[0]["extensions"]["code"] == "LIVE_UPDATES_INTERRUPTED"  # type: ignore[index]
            await wait_until(lambda: ready(b), 5, "process B ready again")
            again = Watcher(session, {"slug": "team", **WINDOW})
            assert status_of(await again.next()) == "ONLINE"
            await toggle(a, token, connection_id, on=False)
            assert status_of(await again.next()) == "OFFLINE"
            await again.close()


SLOTS = """
query($slug: String!, $start: DateTime!, $end: DateTime!, $timezone: String!) {
  schedulingPage(slug: $slug) { slots(start: $start, end: $end, timezone: $timezone) { slots { start } } }
}
"""
BOOK = """
mutation($start: DateTime!) {
  bookMeeting(input: {slug: "team", start: $start, timezone: "UTC", invitee: {name: "Vera", email: "vera@example.com"}}) {
    __typename ... on Booking { id }
  }
}
"""


async def test_a_booking_on_one_process_updates_widgets_on_another(
    postgres_url: str, redis_url: str, channel_prefix: str, tmp_path: Path
) -> None:
    # covers: SUB-1, SUB-5, BOOK-1, BOOK-3
    token, _connection_id = await seed_owner_with_page(postgres_url)
    day = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    window = {"slug": "team", "start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat(), "timezone": "UTC"}
    ten = (day + timedelta(hours=10)).isoformat()
    with kokous_servers(2, server_env(postgres_url, redis_url, channel_prefix), tmp_path) as (a, b):
        async with (
            ws_session(b.ws_url, "graphql-transport-ws") as session,
            httpx.AsyncClient(base_url=a.base_url, timeout=10) as on_a,
            httpx.AsyncClient(base_url=b.base_url, timeout=10) as on_b,
        ):

            async def starts_on_b() -> list[str]:
                answer = (await on_b.post("/graphql", json={"query": SLOTS, "variables": window})).json()
                return [slot["start"] for slot in answer["data"]["schedulingPage"]["slots"]["slots"]]

            watcher = Watcher(session, window)
            first = await watcher.next()
            assert isinstance(first, dict)
            assert ten in [slot["start"] for slot in first["slotsChanged"]["slots"]]
            assert ten in await starts_on_b()
            assert ten in await starts_on_b()  # now a kept answer on B

            booked = (await on_a.post("/graphql", json={"query": BOOK, "variables": {"start": ten}})).json()
            assert booked["data"]["bookMeeting"]["__typename"] == "Booking", booked
            after = await watcher.next()
            assert isinstance(after, dict)
            assert ten not in [slot["start"] for slot in after["slotsChanged"]["slots"]]
            for _ in range(100):  # the event from A drops B's kept answer
                if ten not in await starts_on_b():
                    break
                await asyncio.sleep(0.05)
            assert ten not in await starts_on_b()

            cancel = "mutation($id: ID!) { cancelBooking(id: $id) { __typename } }"
            await on_a.post(
                "/graphql",
                json={"query": cancel, "variables": {"id": booked["data"]["bookMeeting"]["id"]}},
                headers={"authorization": f"Bearer {token}"},
            )
            back = await watcher.next()
            assert isinstance(back, dict)
            assert back["slotsChanged"]["slots"] == first["slotsChanged"]["slots"]
            await watcher.close()
