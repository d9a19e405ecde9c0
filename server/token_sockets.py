"""The WebSockets each bearer token opened in this process, closed when the token is revoked.

Revoking publishes ``ApiTokenRevoked`` on the hub; every process follows that channel and
closes the token's sockets with 4403, as graphql-transport-ws does for a refused token.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref

from starlette.websockets import WebSocket, WebSocketState

from pubsub import PubSubUnavailable
from scheduling.events import API_TOKENS_KEY, ApiTokenRevoked, Event, EventBus

logger = logging.getLogger(__name__)

REVOKED_CLOSE_CODE = 4403
_RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0)


class TokenSockets:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        # Weak: a socket that ended by itself is forgotten without bookkeeping.
        self._sockets: dict[uuid.UUID, weakref.WeakSet[WebSocket]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        bus.on_local_publish(self._on_local)

    def register(self, token_id: uuid.UUID, socket: WebSocket) -> None:
        self._sockets.setdefault(token_id, weakref.WeakSet()).add(socket)

    def open_count(self, token_id: uuid.UUID) -> int:
        return len(self._sockets.get(token_id, ()))

    async def close_token(self, token_id: uuid.UUID) -> None:
        sockets = self._sockets.pop(token_id, None)
        for socket in list(sockets or ()):
            if socket.application_state == WebSocketState.DISCONNECTED:
                continue
            try:
                await socket.close(code=REVOKED_CLOSE_CODE, reason="the bearer token was revoked")
            except (RuntimeError, OSError) as exc:  # already closing or gone
                logger.debug("revoked token's socket was already closed: %s", exc)

    def _on_local(self, event: Event) -> None:
        """This process's own revocations close at once, even if the hub drops the message."""
        if isinstance(event, ApiTokenRevoked) and event.token_id in self._sockets:
            task = asyncio.get_running_loop().create_task(self.close_token(event.token_id))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def run(self) -> None:
        """Follow revocations from every process until cancelled."""
        failures = 0
        while True:
            try:
                async with self._bus.subscribe(API_TOKENS_KEY) as events:
                    failures = 0
                    async for event in events:
                        if isinstance(event, ApiTokenRevoked):
                            await self.close_token(event.token_id)
            except PubSubUnavailable as exc:
                logger.info("token sockets: revocation feed unavailable (%s); retrying", exc)
            await asyncio.sleep(_RETRY_DELAYS[min(failures, len(_RETRY_DELAYS) - 1)])
            failures += 1
