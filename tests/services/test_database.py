"""Closing the database waits for open sessions, so no connection is dropped unclosed."""

from __future__ import annotations

import asyncio
import gc

import pytest
from sqlalchemy import text

from db import engine
from db.engine import Database, DatabaseClosed


async def test_dispose_waits_for_a_session_still_open(database_url: str) -> None:
    # covers: OPS-1
    db = Database(database_url)
    reading, release = asyncio.Event(), asyncio.Event()

    async def slow_reader() -> int:
        async with db.session() as session:
            await session.exec(text("SELECT 1"))
            reading.set()
            await release.wait()
            return int((await session.exec(text("SELECT 2"))).one()[0])

    reader = asyncio.create_task(slow_reader())
    await reading.wait()
    closing = asyncio.create_task(db.dispose())
    await asyncio.sleep(0.1)
    assert not closing.done()  # the session still holds its connection

    release.set()
    assert await reader == 2
    await asyncio.wait_for(closing, 5)
    gc.collect()  # a connection given back to a disposed pool would warn here, failing the test


async def test_a_session_after_dispose_is_refused(database_url: str) -> None:
    # covers: OPS-1
    db = Database(database_url)
    await db.dispose()
    with pytest.raises(DatabaseClosed):
        async with db.session():
            pass
    with pytest.raises(DatabaseClosed):
        async with db.transaction():
            pass
    assert await db.ping() is False


async def test_a_session_left_open_past_the_grace_has_its_connection_closed(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # covers: OPS-1
    monkeypatch.setattr(engine, "CLOSE_GRACE", 0.2)
    db = Database(database_url)
    reading, release = asyncio.Event(), asyncio.Event()

    async def stuck_reader() -> None:
        async with db.session() as session:
            await session.exec(text("SELECT 1"))
            reading.set()
            await release.wait()  # a task that never gives its session back in time

    reader = asyncio.create_task(stuck_reader())
    await reading.wait()
    with caplog.at_level("WARNING", logger="db.engine"):
        await asyncio.wait_for(db.dispose(), 5)
    assert "1 sessions still open" in caplog.text
    release.set()
    await asyncio.gather(reader, return_exceptions=True)  # its connection is gone: it may fail, as it should
    del reader
    gc.collect()  # the dropped connection was closed by dispose: nothing warns here
