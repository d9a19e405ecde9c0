"""The push side of a double: what a provider posts to a subscriber's address, from a thread of its own.

A provider never makes the request that changed something wait for the notification about it,
so a double queues its notifications and one background thread posts them, in order. This piece
holds the queue, that thread, the count of what is still pending and the record of what was
delivered; each double decides what a delivery is and how it is posted (``send``).

Items queued with the same ``batch_key`` while none of them has been picked up yet go out
together, as one batch (Microsoft Graph posts several change notifications in one request);
``hold`` keeps the thread from picking anything up, so a test can make batching deterministic.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
RecordT = TypeVar("RecordT")


class _Batch(Generic[ItemT]):
    def __init__(self, key: Hashable | None, item: ItemT) -> None:
        self.key = key
        self.items = [item]


class Notifier(Generic[ItemT, RecordT]):
    """A queue of deliveries, the thread that sends them, and what they came to."""

    def __init__(self, send: Callable[[list[ItemT]], None], *, name: str) -> None:
        self._send = send  # posts one batch; it records what happened through ``record``
        self._name = name
        self._outbox: queue.Queue[_Batch[ItemT] | None] = queue.Queue()
        self._open: dict[Hashable, _Batch[ItemT]] = {}  # batches queued but not picked up, by key
        self._condition = threading.Condition()
        self._pending = 0  # items queued and not yet sent (or dropped)
        self._held = False
        self._records: list[RecordT] = []
        self._thread: threading.Thread | None = None
        self.closing = False  # set while the double stops: ``send`` should drop what is left

    def queue(self, item: ItemT, *, batch_key: Hashable | None = None) -> None:
        """Queue an item; with a ``batch_key`` it joins the waiting batch of that key, if any."""
        with self._condition:
            self._pending += 1
            if batch_key is not None and batch_key in self._open:
                self._open[batch_key].items.append(item)
                return
            batch = _Batch(batch_key, item)
            if batch_key is not None:
                self._open[batch_key] = batch
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._outbox.put(batch)

    def record(self, record: RecordT) -> None:
        """What one delivery came to (called by ``send``)."""
        with self._condition:
            self._records.append(record)
            self._condition.notify_all()

    @property
    def records(self) -> list[RecordT]:
        with self._condition:
            return list(self._records)

    def wait_for(self, count: int, matches: Callable[[RecordT], bool], *, timeout: float) -> list[RecordT]:
        """Wait until ``count`` records match; all the matching ones."""

        def matching() -> list[RecordT]:
            return [record for record in self._records if matches(record)]

        with self._condition:
            if not self._condition.wait_for(lambda: len(matching()) >= count, timeout=timeout):
                raise AssertionError(f"{len(matching())} notifications, not {count}, after {timeout} s")
            return matching()

    def settle(self, *, timeout: float) -> None:
        """Wait until every item queued so far has been sent or dropped."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._pending == 0, timeout=timeout):
                raise AssertionError(f"{self._pending} notifications still pending after {timeout} s")

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Nothing is picked up inside the block; what was queued in it goes out after, batched by key."""
        with self._condition:
            self._held = True
        try:
            yield
        finally:
            with self._condition:
                self._held = False
                self._condition.notify_all()

    def close(self, *, timeout: float) -> None:
        """Drop what is still queued and end the thread."""
        with self._condition:
            self.closing = True
            self._condition.notify_all()
        if self._thread is not None:
            self._outbox.put(None)
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while (batch := self._outbox.get()) is not None:
            with self._condition:
                self._condition.wait_for(lambda: not self._held or self.closing)
                if batch.key is not None and self._open.get(batch.key) is batch:
                    del self._open[batch.key]  # picked up: later items start a batch of their own
            try:
                if not self.closing:
                    self._send(batch.items)
            finally:
                with self._condition:
                    self._pending -= len(batch.items)
                    self._condition.notify_all()
