"""A mutation whose connection was lost before anything committed runs once more, unseen.

A database restart ends the work in flight half-way. Work none of whose transactions began to
COMMIT stored nothing, so it may run again from the start on a fresh connection; a loss once a
COMMIT was on its way may follow a commit, so it is answered as ``ServiceUnavailable`` (the
same request sent again then answers what was stored). Only work that did nothing outside the
database before its commit (no provider call, email or counted limit) may be run this way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from db.faults import ServiceUnavailable, commit_watch, watching

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")

# Before the one retry: a restart (stop, then start) usually takes less than this.
RETRY_PAUSE = 0.5


async def retry_once_if_lost(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; if a lost connection ends it before any of its transactions began to
    commit, run it once more, on a fresh connection, after a short pause.

    Inside another such run it runs once: the outermost run owns the retry, so nothing runs
    more than twice.
    """
    if watching():
        return await work()
    with commit_watch() as first:
        try:
            return await work()
        except ServiceUnavailable:
            if first.began_commit:
                raise
    logger.warning("running the work again on a fresh database connection")
    await asyncio.sleep(RETRY_PAUSE)
    with commit_watch():
        return await work()


def retried_if_lost(resolver: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """``resolver`` run by ``retry_once_if_lost``: for a mutation whose work is one unit of
    database work with nothing done outside the database before its commit."""

    @functools.wraps(resolver)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await retry_once_if_lost(lambda: resolver(*args, **kwargs))

    return run
