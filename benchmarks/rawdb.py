"""One connection of the bare driver (aiosqlite or asyncpg), no ORM: the floor the baselines of
B5 and B7 stand on.

Values are converted as the server's own column types store them (``db.columns``): UUIDs as
32-digit hex and times as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text on SQLite, native types on
PostgreSQL. Statements are written with ``?`` placeholders and numbered for asyncpg.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


class RawDb:
    """A single kept-open driver connection (as a pool would hand out)."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.sqlite = database_url.startswith("sqlite")
        self._connection: Any = None
        self._numbered: dict[str, str] = {}

    async def open(self) -> None:
        if self.sqlite:
            import aiosqlite

            self._connection = await aiosqlite.connect(self.url.split(":///", 1)[1], isolation_level=None)
            # The same settings the server's engine gives each connection (db.engine._tune_sqlite).
            for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "synchronous=NORMAL"):
                await self._connection.execute(f"PRAGMA {pragma}")
        else:
            import asyncpg

            self._connection = await asyncpg.connect(self.url.replace("postgresql+asyncpg://", "postgresql://", 1))

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    # -- values ------------------------------------------------------------------------------

    def id(self, value: uuid.UUID) -> Any:
        return value.hex if self.sqlite else value

    def time(self, value: datetime) -> Any:
        return value.astimezone(UTC).strftime(SQLITE_TIME) if self.sqlite else value

    def read_time(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    def json(self, value: Any) -> str:
        return json.dumps(value)

    def _sql(self, statement: str) -> str:
        if self.sqlite:
            return statement
        numbered = self._numbered.get(statement)
        if numbered is None:
            counter = iter(range(1, 1_000))
            numbered = self._numbered[statement] = re.sub(r"\?", lambda _: f"${next(counter)}", statement)
        return numbered

    # -- statements --------------------------------------------------------------------------

    async def fetch(self, statement: str, *args: Any) -> list[Sequence[Any]]:
        if self.sqlite:
            async with self._connection.execute(statement, args) as cursor:
                return list(await cursor.fetchall())
        return list(await self._connection.fetch(self._sql(statement), *args))

    async def execute(self, statement: str, *args: Any) -> None:
        if self.sqlite:
            await self._connection.execute(statement, args)
        else:
            await self._connection.execute(self._sql(statement), *args)

    async def execute_many(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        if self.sqlite:
            await self._connection.executemany(statement, rows)
        else:
            await self._connection.executemany(self._sql(statement), rows)

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[None]:
        """``BEGIN IMMEDIATE`` on SQLite (the write lock up front, as the server takes it), else BEGIN."""
        await self.execute("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")
        try:
            yield
        except BaseException:
            await self.execute("ROLLBACK")
            raise
        await self.execute("COMMIT")
