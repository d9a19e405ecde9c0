"""How the API says "the database is briefly unavailable": 503 on HTTP, a close code on sockets.

Inside an operation, the schema answers ``db.faults.ServiceUnavailable`` as an ordinary GraphQL
error with the code ``SERVICE_UNAVAILABLE`` (``schema.limits.unavailable_error``; a WebSocket
operation gets just that). Over HTTP an answer that carries it is sent with status 503 and
``Retry-After``, so clients and proxies that look only at the status retry it too. A fault before
any operation runs (the bearer token could not be looked up) gets the same answer: the same
GraphQL error in a 503 over HTTP; over WebSocket the connection closes with 1013 ("try again
later"), and the legacy protocol first sends the error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage as TransportInit
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ConnectionInitMessage as LegacyInit

from db.faults import CODE, MESSAGE, RETRY_AFTER_SECONDS, ServiceUnavailable
from schema.limits import unavailable_error

STATUS = 503
TRY_AGAIN_LATER = 1013  # the WebSocket close code for a passing overload or outage (RFC 6455 registry)
HEADERS = {"retry-after": str(RETRY_AFTER_SECONDS)}


def says_unavailable(answer: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> bool:
    """Whether an HTTP answer (or any answer of a batch) carries ``SERVICE_UNAVAILABLE``."""
    answers = [answer] if isinstance(answer, Mapping) else answer
    return any(
        isinstance(error, Mapping) and (error.get("extensions") or {}).get("code") == CODE
        for each in answers
        for error in each.get("errors") or ()
    )


def mark_unavailable(response: Response) -> Response:
    """The answer as 503 with Retry-After: clients and proxies that read only the status retry too."""
    response.status_code = STATUS
    response.headers.update(HEADERS)
    return response


def unavailable_answer() -> dict[str, Any]:
    """The GraphQL answer for a fault before any operation ran."""
    return {"data": None, "errors": [unavailable_error().formatted]}


class TransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """graphql-transport-ws: an unreachable database at ``connection_init`` closes with 1013."""

    async def handle_connection_init(self, message: TransportInit) -> None:
        try:
            await super().handle_connection_init(message)
        except ServiceUnavailable:
            await self.websocket.close(code=TRY_AGAIN_LATER, reason=MESSAGE)


class LegacyWSHandler(BaseGraphQLWSHandler[Any, Any]):
    """graphql-ws: the typed error as ``connection_error``, then the close with 1013."""

    async def handle_connection_init(self, message: LegacyInit) -> None:
        try:
            await super().handle_connection_init(message)
        except ServiceUnavailable:
            await self.send_message({"type": "connection_error", "payload": dict(unavailable_error().formatted)})
            await self.websocket.close(code=TRY_AGAIN_LATER, reason=MESSAGE)
