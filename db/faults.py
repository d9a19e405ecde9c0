"""A lost database connection: how to recognise it, what to answer, whether a COMMIT began.

A PostgreSQL restart ends the work in flight half-way; while it is down, connections are
refused. Such a loss inside a session or transaction is raised as ``ServiceUnavailable``, a plain
exception the API answers with the code ``SERVICE_UNAVAILABLE`` and a retry-after (the
schema maps it). Work that committed nothing may run again on a fresh connection: the caller
that runs it again watches it with ``commit_watch``, and ``committing`` notes when a COMMIT is
on its way (it may then have been applied, so running the work again could do it twice).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from asyncpg import exceptions as pg
from sqlalchemy.exc import DBAPIError, EmulatedDBAPIException

logger = logging.getLogger(__name__)

CODE = "SERVICE_UNAVAILABLE"
MESSAGE = "The service is briefly unavailable; try again in a few seconds."
RETRY_AFTER_SECONDS = 3

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


class ServiceUnavailable(Exception):
    """The database cannot be reached just now; the same request may be sent again shortly.

    The API answers it with ``MESSAGE``, the code ``CODE`` and ``RETRY_AFTER_SECONDS``, never
    masked as a bug: over HTTP with status 503 and Retry-After, over WebSocket as the operation's
    error. Nothing the request asked for is known to be done (or known not to be): a booking sent
    again with its idempotency key answers the booking if it was stored.
    """

    def __init__(self) -> None:
        super().__init__(MESSAGE)


def is_disconnect(error: BaseException) -> bool:
    """Whether ``error`` means the database connection is gone (or cannot be had).

    Only the database's own errors are looked into (SQLAlchemy's, and the driver's error it
    wraps): an error of other code that merely has a socket error as its cause, such as a
    calendar provider's outage, is that code's to handle.
    """
    if isinstance(error, EmulatedDBAPIException):
        # The dialect's own error, raised as it is when the pool opens a connection (no
        # SQLAlchemy connection around it to wrap it): the driver's error is its cause.
        return isinstance(error.__cause__, _LOST)
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
class CommitWatch:
    """One run of some work: whether any COMMIT of it was sent (then it must not run again)."""

    began_commit: bool = False


_WATCH: ContextVar[CommitWatch | None] = ContextVar("kokous_db_commit_watch", default=None)


def watching() -> bool:
    """Whether the work running now is already watched (by an outer run that owns any retry)."""
    return _WATCH.get() is not None


@contextmanager
def commit_watch() -> Iterator[CommitWatch]:
    """Watches the work run inside the block: its ``began_commit`` tells whether any of its
    transactions began to COMMIT."""
    watch = CommitWatch()
    token = _WATCH.set(watch)
    try:
        yield watch
    finally:
        _WATCH.reset(token)


def committing() -> None:
    """A transaction is about to COMMIT: the work it belongs to may no longer be run again."""
    watch = _WATCH.get()
    if watch is not None:
        watch.began_commit = True


def _why(error: BaseException) -> str:
    """The driver's own words, short: which fault it was, for the log."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"[:200]
