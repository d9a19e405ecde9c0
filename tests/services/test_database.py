"""Closing the database waits for open sessions, so no connection is dropped unclosed."""

from __future__ import annotations

import asyncio
import gc

import pytest
from sqlalchemy import text

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
