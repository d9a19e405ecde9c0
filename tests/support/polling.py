"""Waiting for what happens in the background: poll until a value is accepted, or fail."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    what: str,
    timeout: float = ...,
    *,
    interval: float = ...,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T],
    accept: Callable[[T], bool],
    what: str,
    timeout: float = ...,
    *,
    interval: float = ...,
) -> T: ...


async def eventually(
    probe: Callable[[], object],
    accept: Callable[[object], bool],
    what: str,
    timeout: float = 10.0,
    *,
    interval: float = 0.05,
) -> object:
    """Poll ``probe`` (plain or async) every ``interval`` s until ``accept`` likes its value, and
    return that value; after ``timeout`` s fail with ``what`` and the last value seen.

    For a plain condition pass ``bool`` as ``accept``: ``eventually(lambda: hub.connected, bool, ...)``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        seen = await value if inspect.isawaitable(value) else value
        if accept(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s; last seen {seen!r}")
        await asyncio.sleep(interval)
