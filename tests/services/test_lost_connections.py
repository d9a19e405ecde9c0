"""``retry_once_if_lost`` on the shared PostgreSQL server: once more only if nothing committed.

A connection is lost the way a restart loses it: its backend is terminated
(``pg_terminate_backend``) while the work holds it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db.engine import Database
from db.faults import ServiceUnavailable, is_disconnect, retry_once_if_lost

TERMINATE_MYSELF = text("SELECT pg_terminate_backend(pg_backend_pid())")


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url)
    yield database
    await database.dispose()


async def test_work_lost_before_it_committed_runs_once_more_on_a_fresh_connection(db: Database) -> None:
    # covers: OPS-4
    backends: list[int] = []

    async def work() -> int:
        async with db.transaction() as session:
            backends.append((await session.exec(text("SELECT pg_backend_pid()"))).one()[0])  # type: ignore[call-overload]
            if len(backends) == 1:
                await session.exec(TERMINATE_MYSELF)  # type: ignore[call-overload]
            return len(backends)

    assert await retry_once_if_lost(work) == 2
    assert backends[0] != backends[1]


async def test_work_lost_twice_is_answered_as_unavailable(db: Database) -> None:
    # covers: OPS-4
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        async with db.session() as session:
            await session.exec(TERMINATE_MYSELF)  # type: ignore[call-overload]

    with pytest.raises(ServiceUnavailable) as lost:
        await retry_once_if_lost(work)
    assert runs == 2
    assert lost.value.extensions == {"code": "SERVICE_UNAVAILABLE", "retryAfterSeconds": 3}


async def test_work_that_committed_is_not_run_again(db: Database) -> None:
    # covers: BOOK-4
    # Its first transaction committed; running it again would do that twice.
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        async with db.transaction() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        async with db.session() as session:
            await session.exec(TERMINATE_MYSELF)  # type: ignore[call-overload]

    with pytest.raises(ServiceUnavailable):
        await retry_once_if_lost(work)
    assert runs == 1


async def test_inside_another_run_work_runs_once_and_the_outer_run_retries(db: Database) -> None:
    # covers: OPS-4
    runs = 0

    async def inner() -> None:
        nonlocal runs
        runs += 1
        async with db.session() as session:
            await session.exec(TERMINATE_MYSELF)  # type: ignore[call-overload]

    async def outer() -> None:
        await retry_once_if_lost(inner)

    with pytest.raises(ServiceUnavailable):
        await retry_once_if_lost(outer)
    assert runs == 2


async def test_other_errors_pass_untouched_and_are_not_retried(db: Database) -> None:
    # covers: OPS-4
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        async with db.session() as session:
            await session.exec(text("SELECT 1/0"))  # type: ignore[call-overload]

    with pytest.raises(Exception, match="division by zero") as failed:
        await retry_once_if_lost(work)
    assert not isinstance(failed.value, ServiceUnavailable)
    assert runs == 1


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
