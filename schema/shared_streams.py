"""One execution of an identical anonymous subscription, shared by every widget watching it.

A thousand widgets on one page ask the very same ``slotsChanged`` question. Executing the
GraphQL selection once per subscriber costs ~1 ms of CPU each per change (about 5 µs per
resolved field), so the results of one execution are handed to every subscriber of the same
(document, variables, operation) in this process instead. Only anonymous subscriptions of
fields listed in ``SHAREABLE_FIELDS`` are shared: their answer cannot depend on who asks.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable
from functools import lru_cache
from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse

logger = logging.getLogger(__name__)

SHAREABLE_FIELDS = frozenset({"slotsChanged"})
_END = object()


@lru_cache(maxsize=512)
def _shareable_document(query: str, operation_name: str | None) -> bool:
    """Whether the chosen operation is a subscription of shareable fields only."""
    try:
        document = parse(query, max_tokens=2_000)
    except GraphQLError:
        return False
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    chosen = [op for op in operations if operation_name is None or (op.name and op.name.value == operation_name)]
    if len(chosen) != 1 or chosen[0].operation is not OperationType.SUBSCRIPTION:
        return False
    selections = chosen[0].selection_set.selections
    return all(isinstance(node, FieldNode) and node.name.value in SHAREABLE_FIELDS for node in selections)


def share_key(query: str | None, variables: dict[str, Any] | None, operation_name: str | None) -> Hashable | None:
    """The key identical subscriptions share, or None when this one must run on its own."""
    if not query or not _shareable_document(query, operation_name):
        return None
    try:
        return (query, json.dumps(variables or {}, sort_keys=True), operation_name)
    except (TypeError, ValueError):
        return None


class _SharedStream:
    """Runs one source and copies each result to every attached subscriber."""

    def __init__(self, owner: SharedStreams, key: Hashable, start: Callable[[], Awaitable[AsyncIterator[Any]]]) -> None:
        self._owner = owner
        self._key = key
        self._queues: set[asyncio.Queue[Any]] = set()
        self._latest: Any = None
        self._done = False
        self._task = asyncio.create_task(self._run(start), name="kokous-shared-subscription")

    def attach(self) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        if self._latest is not None:
            queue.put_nowait(self._latest)  # a late joiner gets the current state at once
        if self._done:
            queue.put_nowait(_END)
        self._queues.add(queue)
        return queue

    def detach(self, queue: asyncio.Queue[Any]) -> None:
        self._queues.discard(queue)
        if not self._queues:
            self._owner.forget(self._key, self)
            self._task.cancel()

    async def _run(self, start: Callable[[], Awaitable[AsyncIterator[Any]]]) -> None:
        try:
            source = await start()
            try:
                async for result in source:
                    self._latest = result
                    for queue in self._queues:
                        queue.put_nowait(result)
            finally:
                close = getattr(source, "aclose", None)
                if close is not None:
                    await close()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("a shared subscription failed")
        finally:
            self._done = True
            self._owner.forget(self._key, self)
            for queue in self._queues:
                queue.put_nowait(_END)


class SharedStreams:
    """The shared executions of this process, by key."""

    def __init__(self) -> None:
        self._streams: dict[Hashable, _SharedStream] = {}

    def join(self, key: Hashable, start: Callable[[], Awaitable[AsyncIterator[Any]]]) -> AsyncGenerator[Any, None]:
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _SharedStream(self, key, start)
        return _follow(stream)

    def forget(self, key: Hashable, stream: _SharedStream) -> None:
        if self._streams.get(key) is stream:
            del self._streams[key]

    def __len__(self) -> int:
        return len(self._streams)


async def _follow(stream: _SharedStream) -> AsyncGenerator[Any, None]:
    queue = stream.attach()
    try:
        while (item := await queue.get()) is not _END:
            yield item
    finally:
        stream.detach(queue)
