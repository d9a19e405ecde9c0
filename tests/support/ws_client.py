"""GraphQL subscriptions through the real ``gql`` client over either WebSocket protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from gql import Client, GraphQLRequest, gql
from gql.client import AsyncClientSession
from gql.transport.websockets import WebsocketsTransport

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]

SLOTS_CHANGED = gql(
    """
    subscription Watch($slug: String!, $start: DateTime!, $end: DateTime!, $timezone: String!,
                       $duration: Int, $domain: String) {
      slotsChanged(slug: $slug, start: $start, end: $end, timezone: $timezone,
                   duration: $duration, domain: $domain) {
        slots { start end }
        asOf
        status
      }
    }
    """
)

WINDOW = {"start": "2026-12-01T00:00:00+00:00", "end": "2026-12-08T00:00:00+00:00", "timezone": "Europe/Helsinki"}


@asynccontextmanager
async def ws_session(
    url: str, protocol: str, token: str | None = None, *, origin: str | None = None
) -> AsyncIterator[AsyncClientSession]:
    """``origin``: the Origin header a browser on that site would send with the handshake."""
    payload = {"authorization": f"Bearer {token}"} if token else {}
    transport = WebsocketsTransport(
        url=url,
        subprotocols=[protocol],
        init_payload=payload,
        connect_timeout=10,
        connect_args={"origin": origin} if origin else None,
    )
    async with Client(transport=transport) as session:
        yield session


class Watcher:
    """Reads a subscription in the background so a test can wait for the next message."""

    def __init__(
        self, session: AsyncClientSession, variables: dict[str, Any], document: GraphQLRequest | None = None
    ) -> None:
        self.messages: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        request = document or GraphQLRequest(SLOTS_CHANGED)
        self._task = asyncio.create_task(
            self._read(session, GraphQLRequest(request.document, variable_values=variables))
        )

    async def _read(self, session: AsyncClientSession, request: GraphQLRequest) -> None:
        try:
            async for message in session.subscribe(request):
                await self.messages.put(message)
        except BaseException as exc:  # the test asserts on it
            await self.messages.put(exc)
            return
        await self.messages.put(StopAsyncIteration())

    async def next(self, timeout: float = 5.0) -> dict[str, Any] | BaseException:
        """The next message or error; fails the test if nothing arrives in time."""
        try:
            return await asyncio.wait_for(self.messages.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"no subscription message within {timeout} s") from None

    async def close(self) -> None:
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
