"""The resolvers' ``retry_once_if_lost`` on the shared PostgreSQL server: once more only if nothing committed.

A connection is lost the way a restart loses it: its backend is terminated
(``pg_terminate_backend``) while the work holds it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from asyncpg.exceptions import CannotConnectNowError, InvalidPasswordError
from graphql import located_error
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import OperationalError

from db.engine import Database
from db.faults import ServiceUnavailable, is_disconnect
from resolvers.retry import retry_once_if_lost
from schema.limits import is_unavailable, is_unexpected, unavailable_error

TERMINATE_MYSELF = text("SELECT pg_terminate_backend(pg_backend_pid())")


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url)
    yield database
    await database.dispose()


class Work:
    """Work for ``retry_once_if_lost`` that counts its runs; run number ``n`` does ``step(n)``."""

    def __init__(self, step: Callable[[int], Awaitable[Any]]) -> None:
        self.step = step
        self.runs = 0

    async def __call__(self) -> Any:
        self.runs += 1
        return await self.step(self.runs)


async def lose_connection(db: Database) -> None:
    """The session's connection is terminated under it, as a restart does."""
    async with db.session() as session:
        await session.exec(TERMINATE_MYSELF)  # type: ignore[call-overload]


async def test_work_lost_before_it_committed_runs_once_more_on_a_fresh_connection(db: Database) -> None:
    # covers: OPS-4
    backends: list[int] = []

    async def step(run: int) -> int:
        async with db.transaction() as session:
            backends.append((await session.exec(text("SELECT pg_backend_pid()"))).one()[0])  # type: ignore[call-overload]
            if run == 1:
                await session.exec(TERMINATE_MYSELF)  # type: ignore[call-overload]
            return len(backends)

    assert await retry_once_if_lost(Work(step)) == 2
    assert backends[0] != backends[1]


async def test_work_lost_twice_is_answered_as_unavailable(db: Database) -> None:
    # covers: OPS-4
    work = Work(lambda _run: lose_connection(db))
    with pytest.raises(ServiceUnavailable) as lost:
        await retry_once_if_lost(work)
    assert work.runs == 2
    # As the API answers it when a resolver raised it: typed, never masked.
    answered = located_error(lost.value, path=["work"])
    assert is_unavailable(answered)
    assert not is_unexpected(answered)
    assert unavailable_error(answered).extensions == {"code": "SERVICE_UNAVAILABLE", "retryAfterSeconds": 3}


async def test_work_that_committed_is_not_run_again(db: Database) -> None:
    # covers: BOOK-4
    # Its first transaction committed; running it again would do that twice.
    async def step(_run: int) -> None:
        async with db.transaction() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        await lose_connection(db)

    work = Work(step)
    with pytest.raises(ServiceUnavailable):
        await retry_once_if_lost(work)
    assert work.runs == 1


async def test_inside_another_run_work_runs_once_and_the_outer_run_retries(db: Database) -> None:
    # covers: OPS-4
    inner = Work(lambda _run: lose_connection(db))

    async def outer() -> None:
        await retry_once_if_lost(inner)

    with pytest.raises(ServiceUnavailable):
        await retry_once_if_lost(outer)
    assert inner.runs == 2


async def test_other_errors_pass_untouched_and_are_not_retried(db: Database) -> None:
    # covers: OPS-4
    async def step(_run: int) -> None:
        async with db.session() as session:
            await session.exec(text("SELECT 1/0"))  # type: ignore[call-overload]

    work = Work(step)
    with pytest.raises(Exception, match="division by zero") as failed:
        await retry_once_if_lost(work)
    assert not isinstance(failed.value, ServiceUnavailable)
    assert work.runs == 1


def test_only_the_databases_own_errors_count_as_a_lost_connection() -> None:
    # covers: OPS-4
    assert is_disconnect(ConnectionRefusedError(111, "Connect call failed"))
    # A calendar provider's outage inside a database block stays the provider's error.
    provider_outage = RuntimeError("the calendar provider is unreachable")
    provider_outage.__cause__ = ConnectionRefusedError(111, "Connect call failed")
    assert not is_disconnect(provider_outage)
    # SQLite's writer lock is a wait, not a lost connection.
    locked = OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))
    assert not is_disconnect(locked)
    # The pool opening a connection to a server shutting down: the dialect's error, unwrapped.
    shutting_down = AsyncAdapt_asyncpg_dbapi.Error("the database system is shutting down")
    shutting_down.__cause__ = CannotConnectNowError("the database system is shutting down")
    assert is_disconnect(shutting_down)
    refused_login = AsyncAdapt_asyncpg_dbapi.Error("password authentication failed")
    refused_login.__cause__ = InvalidPasswordError("password authentication failed")
    assert not is_disconnect(refused_login)
