"""Refuses request bodies, and WebSocket messages, over a size limit before they reach GraphQL."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.app(scope, self._guarded(receive, send), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    def _guarded(self, receive: Receive, send: Send) -> Receive:
        """A socket whose message is too big is closed (1009) before the message is parsed."""

        async def guarded() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive" and self._too_big(message):
                await send({"type": "websocket.close", "code": 1009, "reason": "message too big"})
                return {"type": "websocket.disconnect", "code": 1009}
            return message

        return guarded

    def _too_big(self, message: Message) -> bool:
        text = message.get("text") or ""
        if len(text) > self.max_bytes:  # every character is at least one byte
            return True
        size = len(message.get("bytes") or b"") + (len(text.encode()) if 4 * len(text) > self.max_bytes else len(text))
        return size > self.max_bytes

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"errors": [{"message": f"request body over {self.max_bytes} bytes"}]}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
