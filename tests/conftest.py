"""Fixtures shared by every layer: databases, pub/sub, a running app and its owners.

The tests come in six tiers, each a folder:

* ``engine/``: the pure scheduling functions, with examples and hypothesis properties.
* ``services/``: services against real SQLite and PostgreSQL databases and real pub/sub.
* ``providers/``: the calendar adapters through their real client libraries, against
  wire-level doubles (``tests/doubles/``) or a real Radicale.
* ``api/``: a running server, reached over real HTTP and WebSocket.
* ``system/``: several ``kokous serve`` processes, ``kill -9`` and restarts.
* ``browser/``: the public page and the widget in Debian's Chromium, driven by Playwright.

This module only defines fixtures; the helpers they and the tests use live in ``tests/support/``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import Database
from db.migrate import migrate
from db.models import User
from pubsub import EventHub
from scheduling.services import Services
from server.settings import Settings
from tests.support.live_server import LiveServer, start_live_server
from tests.support.owners import make_owner
from tests.support.services_available import check_postgres, check_redis
from tests.support.settings import GENEROUS_LIMITS, sqlite_settings
from tests.support.smtp_sink import SmtpSink, smtp_sink
from tests.support.sync import run_sync

# The abuse limits must not trip tests that book many times from loopback (their own tests set theirs).
for _name, _value in GENEROUS_LIMITS.items():
    os.environ.setdefault(_name, _value)

TABLES = "busy_intervals, bookings, contacts, calendars, calendar_connections, api_tokens, scheduling_pages, users, domains, outbox"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A private database on the shared server, migrated once, dropped at the end."""
    server_url = check_postgres()
    name = f"kokous_test_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(server_url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    run_sync(admin(f'CREATE DATABASE "{name}"'))
    base = server_url.rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    try:
        run_sync(migrate(url))
        yield url
    finally:
        run_sync(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test runs on SQLite and on PostgreSQL; each starts with empty tables."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'kokous.db'}"
        run_sync(migrate(url))
        yield url
        return
    yield request.getfixturevalue("postgres_url")


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""

    async def truncate() -> None:
        db = Database(postgres_database)
        async with db.engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {TABLES} CASCADE"))
        await db.dispose()

    run_sync(truncate())
    return postgres_database


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'kokous.db'}"
    run_sync(migrate(url))
    return url


@pytest.fixture
def redis_url() -> str:
    return check_redis()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""
    with smtp_sink() as running:
        yield running


@pytest.fixture
def channel_prefix() -> str:
    """A channel prefix of this test alone, since pub/sub servers are shared."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, channel_prefix: str) -> Settings:
    return Settings(
        database_url=database_url,
        broadcast_url="memory://",
        broadcast_channel_prefix=channel_prefix,
        data_dir=tmp_path / "data",
        outbox_dir=tmp_path / "outbox",
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    """The app served by uvicorn on a free loopback port, in this test's event loop."""
    async with start_live_server(settings) as live:
        yield live


@pytest.fixture
async def services(server: LiveServer) -> Services:
    return server.services


@pytest.fixture
async def owner(services: Services) -> tuple[User, str]:
    return await make_owner(services, "owner@example.com")


@pytest.fixture
async def other_owner(services: Services) -> tuple[User, str]:
    return await make_owner(services, "other@example.com")


@pytest.fixture
async def hub_factory() -> AsyncIterator[object]:
    """Connects hubs and disconnects every one of them at the end."""
    hubs: list[EventHub] = []

    async def connect(url: str) -> EventHub:
        hub = EventHub(url)
        await hub.connect()
        hubs.append(hub)
        return hub

    yield connect
    for hub in hubs:
        await hub.disconnect()


@pytest.fixture
async def sqlite_server(sqlite_url: str, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """For behaviour that does not depend on the database engine."""
    async with start_live_server(sqlite_settings(sqlite_url, tmp_path)) as live:
        yield live
