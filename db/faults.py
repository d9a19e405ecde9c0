"""A lost database connection: how to recognise it, when work may run again, what to answer.

A PostgreSQL restart ends the work in flight half-way; while it is down, connections are
refused. Work that committed nothing can simply run again on a fresh connection
(``retry_once_if_lost``). What is still lost after that, or was lost while a COMMIT was on its
way (it may have been applied, so running the work again could do it twice), is answered as
``ServiceUnavailable``: a typed error that tells the user to try again in a few seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from asyncpg import exceptions as pg
from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

T = TypeVar("T")

CODE = "SERVICE_UNAVAILABLE"
MESSAGE = "The service is briefly unavailable; try again in a few seconds."
RETRY_AFTER_SECONDS = 3
# Before the one retry: a restart (stop, then start) usually takes less than this.
RETRY_PAUSE = 0.5

# What the driver raises when the server went away, is going away, or is not there (yet).
_LOST: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out: the socket itself
    pg.ConnectionDoesNotExistError,  # closed in the middle of an operation
    pg.PostgresConnectionError,  # SQLSTATE class 08
    pg.AdminShutdownError,  # 57P01: terminated by a shutdown or pg_terminate_backend
    pg.CrashShutdownError,  # 57P02
    pg.CannotConnectNowError,  # 57P03: the database system is starting up or shutting down
    pg.TooManyConnectionsError,  # 53300: no connection to be had right now
)


class ServiceUnavailable(GraphQLError):
    """The database cannot be reached just now; the same request may be sent again shortly.

    It is a GraphQLError with its own code so that the API answers it as it is, never masked as
    a bug: over HTTP with status 503 and Retry-After, over WebSocket as the operation's error.
    Nothing the request asked for is known to be done (or known not to be): a booking sent again
    with its idempotency key answers the booking if it was stored.
    """

    def __init__(self) -> None:
        super().__init__(MESSAGE, extensions={"code": CODE, "retryAfterSeconds": RETRY_AFTER_SECONDS})


def is_disconnect(error: BaseException) -> bool:
    """Whether ``error`` means the database connection is gone (or cannot be had).

    Only the database's own errors are looked into (SQLAlchemy's, and the driver's error it
    wraps): an error of other code that merely has a socket error as its cause, such as a
    calendar provider's outage, is that code's to handle.
    """
    if not isinstance(error, DBAPIError):
        # Raised as it is by the driver while connecting; inside a database block, a bare
        # socket error is taken to be the database's.
        return isinstance(error, _LOST)
    if error.connection_invalidated:
        return True
    adapted = error.orig  # the dialect's adapter error; the driver's own error is its cause
    return isinstance(adapted, _LOST) or (adapted is not None and isinstance(adapted.__cause__, _LOST))


@asynccontextmanager
async def lost_as_unavailable() -> AsyncIterator[None]:
    """Turns a lost connection inside the block into ``ServiceUnavailable``; other errors pass."""
    try:
        yield
    except ServiceUnavailable:
        raise
    except Exception as error:
        if not is_disconnect(error):
            raise
        logger.warning("database connection lost: %s", _why(error))
        raise ServiceUnavailable from error


@dataclass
class _Attempt:
    """One run of some work; whether any COMMIT of it was sent (then it must not run again)."""

    began_commit: bool = False


_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("kokous_db_attempt", default=None)


def committing() -> None:
    """A transaction is about to COMMIT: the work it belongs to may no longer be run again."""
    attempt = _ATTEMPT.get()
    if attempt is not None:
        attempt.began_commit = True


async def retry_once_if_lost(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; if a lost connection ends it before any of its transactions began to
    commit, run it once more, on a fresh connection, after a short pause.

    ``work`` must be safe to run again from the start when none of its transactions began to
    commit: nothing it did outside the database may matter if done twice. Inside another such
    run it runs once: the outermost run owns the retry, so nothing runs more than twice.
    """
    if _ATTEMPT.get() is not None:
        return await work()
    attempt = _Attempt()
    token = _ATTEMPT.set(attempt)
    try:
        return await work()
    except ServiceUnavailable:
        if attempt.began_commit:
            raise
    finally:
        _ATTEMPT.reset(token)
    logger.warning("running the work again on a fresh database connection")
    await asyncio.sleep(RETRY_PAUSE)
    token = _ATTEMPT.set(_Attempt())
    try:
        return await work()
    finally:
        _ATTEMPT.reset(token)


def _why(error: BaseException) -> str:
    """The driver's own words, short: which fault it was, for the log."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"[:200]
