"""Fixtures the service tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from db.engine import Database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A ``Database`` on the test's migrated database (SQLite, then PostgreSQL), closed after it."""
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()
