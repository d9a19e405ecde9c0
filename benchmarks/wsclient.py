"""A lean ``graphql-transport-ws`` subscriber on the ``websockets`` library.

Cheaper than gql for dozens of subscribers in one event loop: each message is timestamped
(``time.perf_counter``) the moment ``recv`` hands it over, before any parsing, and queued as an
:class:`Arrival` for the benchmark to match against the event it raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"

SLOTS_CHANGED = """
subscription Watch($slug: String!, $start: DateTime!, $end: DateTime!, $timezone: String!) {
  slotsChanged(slug: $slug, start: $start, end: $end, timezone: $timezone) {
    slots { start end }
    asOf
    status
  }
}
"""


@dataclass(frozen=True)
class Arrival:
    """One message of a subscription: ``next`` with the page status, ``error`` with a code, or ``closed``."""

    at: float
    kind: str  # "next" | "error" | "complete" | "closed"
    status: str | None = None
    code: str | None = None


def _error_code(errors: Any) -> str | None:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        extensions = errors[0].get("extensions") or {}
        code = extensions.get("code") if isinstance(extensions, dict) else None
        return str(code) if code is not None else str(errors[0].get("message"))
    return None


async def handshake(url: str, *, payload: dict[str, Any] | None = None, open_within: float = 10.0) -> ClientConnection:
    """A ``graphql-transport-ws`` connection that got its ``connection_ack``."""
    connection = await connect(
        url, subprotocols=[PROTOCOL], compression=None, proxy=None, open_timeout=open_within, ping_interval=None
    )
    try:
        await connection.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        async with asyncio.timeout(open_within):
            while True:
                message = json.loads(await connection.recv())
                if message.get("type") == "connection_ack":
                    break
                if message.get("type") == "ping":
                    await connection.send(json.dumps({"type": "pong"}))
    except BaseException:
        await connection.close()
        raise
    return connection


class Subscriber:
    """One WebSocket with one live subscription at a time."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._reader: asyncio.Task[None] | None = None
        self._counter = 0
        self.current: str | None = None
        self.arrivals: asyncio.Queue[Arrival] = asyncio.Queue()

    @classmethod
    async def open(cls, url: str, *, payload: dict[str, Any] | None = None, open_within: float = 10.0) -> Subscriber:
        subscriber = cls(await handshake(url, payload=payload, open_within=open_within))
        subscriber._reader = asyncio.create_task(subscriber._read(), name="bench-ws-reader")
        return subscriber

    async def subscribe(self, variables: dict[str, Any], query: str = SLOTS_CHANGED) -> None:
        """Start a new subscription (a fresh id); its messages arrive on :attr:`arrivals`."""
        self._counter += 1
        self.current = str(self._counter)
        message = {"id": self.current, "type": "subscribe", "payload": {"query": query, "variables": variables}}
        await self._connection.send(json.dumps(message))

    async def next_arrival(self, within: float) -> Arrival | None:
        try:
            return await asyncio.wait_for(self.arrivals.get(), within)
        except TimeoutError:
            return None

    def drain(self) -> list[Arrival]:
        """Whatever arrived and was not consumed yet."""
        items = []
        while not self.arrivals.empty():
            items.append(self.arrivals.get_nowait())
        return items

    async def _read(self) -> None:
        try:
            async for raw in self._connection:
                at = time.perf_counter()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await self._connection.send(json.dumps({"type": "pong"}))
                    continue
                if message.get("id") != self.current:
                    continue  # the end of an older subscription
                payload = message.get("payload")
                if kind == "next" and isinstance(payload, dict):
                    if payload.get("errors"):
                        self.arrivals.put_nowait(Arrival(at, "error", code=_error_code(payload["errors"])))
                    else:
                        data = payload.get("data") or {}
                        status = (data.get("slotsChanged") or {}).get("status")
                        self.arrivals.put_nowait(Arrival(at, "next", status=status))
                elif kind == "error":
                    self.arrivals.put_nowait(Arrival(at, "error", code=_error_code(payload)))
                elif kind == "complete":
                    self.arrivals.put_nowait(Arrival(at, "complete"))
        except ConnectionClosed:
            pass
        self.arrivals.put_nowait(Arrival(time.perf_counter(), "closed"))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._connection.close()


async def open_subscribers(url: str, count: int, *, parallel: int = 10) -> list[Subscriber]:
    """``count`` connections opened ``parallel`` at a time; on failure the opened ones are closed."""
    gate = asyncio.Semaphore(parallel)
    opened: list[Subscriber] = []

    async def one() -> None:
        async with gate:
            opened.append(await Subscriber.open(url))

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        await close_all(opened)
        raise RuntimeError(f"{len(failures)} of {count} WebSockets did not open: {failures[0]!r}") from failures[0]
    return opened


async def close_all(subscribers: list[Subscriber]) -> None:
    await asyncio.gather(*(subscriber.close() for subscriber in subscribers), return_exceptions=True)


@dataclass(frozen=True)
class Mark:
    """One message of a multiplexed subscription: when (``time.monotonic``), its size and kind."""

    at: float
    size: int
    kind: str  # "next" | "error" | "complete"


class Multiplexed:
    """One WebSocket carrying many subscriptions (ids "1", "2", ...), for a thousand subscribers.

    Messages are timestamped with ``time.monotonic`` (comparable across processes on Linux) and
    classified from their first bytes and a substring search, never parsed: the size tells one
    slot list from another. The server's frames start ``{"id":"<id>","type":"<type>"``.
    """

    def __init__(self, connection: ClientConnection, notify: asyncio.Event | None = None) -> None:
        self._connection = connection
        self._notify = notify  # set after every recorded message
        self.marks: dict[str, list[Mark]] = {}
        self.other: list[str] = []  # frames that did not fit the expected shape
        self.closed = False
        self._reader = asyncio.create_task(self._read(), name="bench-ws-multiplexed")

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        payload: dict[str, Any] | None = None,
        open_within: float = 10.0,
        notify: asyncio.Event | None = None,
    ) -> Multiplexed:
        return cls(await handshake(url, payload=payload, open_within=open_within), notify)

    async def subscribe(self, count: int, variables: dict[str, Any], query: str = SLOTS_CHANGED) -> None:
        for _ in range(count):
            key = str(len(self.marks) + 1)
            self.marks[key] = []
            message = {"id": key, "type": "subscribe", "payload": {"query": query, "variables": variables}}
            await self._connection.send(json.dumps(message))

    async def _read(self) -> None:
        try:
            async for raw in self._connection:
                at = time.monotonic()
                text = raw if isinstance(raw, str) else raw.decode()
                if not text.startswith('{"id":"'):
                    if '"ping"' in text[:40]:
                        await self._connection.send(json.dumps({"type": "pong"}))
                    elif len(self.other) < 20:
                        self.other.append(text[:200])
                    continue
                end = text.find('"', 7)
                marks = self.marks.get(text[7:end])
                kind_at = text.find('"type":"', end) + 8
                kind = text[kind_at : text.find('"', kind_at)]
                if marks is None:
                    continue
                if kind == "next" and '"errors"' in text:
                    kind = "error"
                marks.append(Mark(at, len(text), kind))
                if self._notify is not None:
                    self._notify.set()
        except ConnectionClosed:
            pass
        self.closed = True

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._connection.close()
