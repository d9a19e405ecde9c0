"""Running independent work side by side without leaving any of it behind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def run_all(work: Iterable[Awaitable[T]]) -> list[T]:
    """Run side by side and wait for every one, then raise the first failure.

    ``asyncio.gather`` alone returns at the first failure and leaves the others running with
    nobody waiting for them, still holding database sessions while the server shuts down.
    """
    results = await asyncio.gather(*work, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]  # no exception left: every result is a T
