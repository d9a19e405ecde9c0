"""The async engine and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from db.faults import committing, lost_as_unavailable

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 15_000
CLOSE_GRACE = 5.0  # seconds ``dispose`` waits for sessions still open (a cancelled task cleaning up)
_WRITE_OPTION = "kokous_write"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An engine tuned per backend: SQLite gets WAL, a busy timeout and explicit BEGINs."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _tune_sqlite(engine)
        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself, so a write transaction can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A read-then-write transaction must hold the write lock from its start, or two
        # writers deadlock and one gets "database is locked" (BEGIN IMMEDIATE serialises them).
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class DatabaseClosed(RuntimeError):
    """A session was asked for after ``dispose``: a task outlived the server's shutdown."""


class Database:
    """Owns the engine; hands out sessions and transactions.

    It counts the sessions that are open, so ``dispose`` can wait for the last one: a
    connection given back after the pool was disposed is never closed, only dropped.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo)
        self.is_sqlite = url.startswith("sqlite")
        # SQLite has one writer at a time. Writers of this process queue here instead of in
        # SQLite's busy handler, which sleeps in growing steps and wastes the freed lock
        # (50 concurrent bookings ran at 0.6x the rate of one client at a time without it).
        self._write_turn: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(
            self.engine.execution_options(**{_WRITE_OPTION: True}),
            class_=AsyncSession,
            expire_on_commit=False,
        )
        self._open = 0
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._disposed = False
        # Every driver connection the pool opened: ``dispose`` closes any the pool no longer
        # holds (one given back after the pool was closed is dropped by it, never closed).
        self._drivers: weakref.WeakSet[Any] = weakref.WeakSet()

        @event.listens_for(self.engine.sync_engine, "connect")
        def _remember(dbapi_connection: Any, _record: Any) -> None:
            self._drivers.add(dbapi_connection.driver_connection)

    @asynccontextmanager
    async def _counted(self) -> AsyncIterator[None]:
        if self._disposed:
            raise DatabaseClosed("the database was closed")
        self._open += 1
        self._all_closed.clear()
        try:
            yield
        finally:
            self._open -= 1
            if not self._open:
                self._all_closed.set()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; its transaction is rolled back at the end.

        A lost connection raises ``ServiceUnavailable`` (``db/faults.py``).
        """
        async with self._counted(), lost_as_unavailable(), self._sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed when the block ends without error.

        ``write=True`` takes SQLite's write lock at BEGIN, so a check-then-write stays atomic.
        A lost connection raises ``ServiceUnavailable``. The block's statements are flushed
        before COMMIT is sent, so a run watched with ``commit_watch`` knows a loss from then on
        may follow a commit, and is never run again after it.
        """
        factory = self._write_sessions if write else self._sessions
        turn: AbstractAsyncContextManager[object] = (
            self._write_turn if write and self._write_turn is not None else nullcontext()
        )
        async with self._counted(), lost_as_unavailable(), turn, factory() as session, session.begin():
            yield session
            await session.flush()
            committing()

    async def ping(self) -> bool:
        try:
            async with self._counted(), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        """Close every connection, once the sessions still open (at most ``CLOSE_GRACE``) ended."""
        self._disposed = True
        try:
            await asyncio.wait_for(self._all_closed.wait(), CLOSE_GRACE)
        except TimeoutError:
            logger.warning("closing the database with %d sessions still open", self._open)
        await self.engine.dispose()
        for driver in list(self._drivers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(driver.close(), CLOSE_GRACE)
