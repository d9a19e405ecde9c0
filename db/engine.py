"""The async engine and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import greenlet_spawn
from sqlmodel.ext.asyncio.session import AsyncSession

from db.faults import committing, is_disconnect, lost_as_unavailable
from db.plain import PlainConnection

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 15_000
CLOSE_GRACE = 5.0  # seconds ``dispose`` waits for sessions still open (a cancelled task cleaning up)
_WRITE_OPTION = "kokous_write"
# A pooled PostgreSQL connection idle longer than this is pinged before use; one used more
# recently is taken as alive. (A ping is three round trips; one on every checkout cost a
# booking a quarter of a millisecond per session.)
PING_WHEN_IDLE = 5.0  # seconds


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An engine tuned per backend: SQLite gets WAL, a busy timeout and explicit BEGINs."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _tune_sqlite(engine)
        return engine
    engine = create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_use_lifo=True, pool_recycle=1800)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Check a connection that sat idle in the pool before handing it out (the server may have
    restarted meanwhile); a failed ping makes the pool open a new one.

    The pool hands out the most recently used connection first, so under load the same few stay
    warm and are not pinged, and a connection lost in between is still caught: its error marks
    every older connection of the pool stale, and the work lost with it runs again
    (``db/faults.py``).
    """
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_WHEN_IDLE:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as lost:
            raise DisconnectionError("a pooled connection did not answer its ping") from lost


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
    async def plain(self) -> AsyncIterator[PlainConnection]:
        """Statements on the driver (``db/plain.py``), each in its own implicit transaction: every
        one sees the data as committed when it runs, not one snapshot for all. For the hot public
        reads (slots, a booking's first reads), whose decisions a booking checks again under its
        lock before anything is written.

        A lost connection raises ``ServiceUnavailable``.
        """
        async with self._counted(), lost_as_unavailable(), self._driver_connection(transaction=False) as plain:
            yield plain

    @asynccontextmanager
    async def plain_transaction(self) -> AsyncIterator[PlainConnection]:
        """A write transaction of statements on the driver (``db/plain.py``), committed when the
        block ends without error, as ``transaction(write=True)``: SQLite's write lock is taken at
        BEGIN, in this process's turn; ``committing`` is noted before COMMIT is sent."""
        turn: AbstractAsyncContextManager[object] = self._write_turn or nullcontext()
        async with self._counted(), lost_as_unavailable(), turn, self._driver_connection(transaction=True) as plain:
            await plain.send("BEGIN IMMEDIATE" if self.is_sqlite else "BEGIN")
            yield plain
            committing()
            await plain.send("COMMIT")

    @asynccontextmanager
    async def _driver_connection(self, *, transaction: bool) -> AsyncIterator[PlainConnection]:
        """A pooled connection's driver connection, taken from the pool and given back without
        a SQLAlchemy connection around it (nothing runs through SQLAlchemy, so it sends no BEGIN
        and knows of no transaction: a ``transaction`` left open by an error is rolled back here,
        and a connection that cannot roll back is never given back). The pool pings it if it sat
        idle, and resets it when it comes back."""
        pooled = await self.engine.raw_connection()
        plain = PlainConnection(pooled.driver_connection, self.engine.dialect)
        try:
            yield plain
        except BaseException as error:
            if is_disconnect(error):
                # As SQLAlchemy does when a statement meets a lost connection: this one and
                # every connection opened before it are dropped (a restart ended them all).
                await greenlet_spawn(self.engine.sync_engine.pool._invalidate, pooled, error)
            elif not isinstance(error, Exception):
                # Cancelled (the client went away): a statement may be cut off half-way, and the
                # driver would refuse the next one on this connection. It is closed, not reused.
                await asyncio.shield(greenlet_spawn(pooled.invalidate, error))
            elif transaction:
                try:
                    await plain.send("ROLLBACK")
                except Exception:
                    await greenlet_spawn(pooled.invalidate, error)
            raise
        finally:
            await greenlet_spawn(pooled.close)

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
