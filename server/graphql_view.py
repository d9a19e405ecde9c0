"""The strawberry view: builds the request context and authenticates WebSocket clients.

WebSockets are accepted from every origin: a socket carries no ambient credentials (owners
send their bearer token in ``connection_init``), so a page on another site gets only what
any anonymous visitor gets, the public ``slotsChanged``; owner subscriptions still need the
token. This is what lets the widget go live on any site with no per-site set-up.

An unreachable database answers 503 with Retry-After and the code ``SERVICE_UNAVAILABLE``
(``server/unavailable.py``), never a 500 or a masked error.
"""

from __future__ import annotations

from typing import cast

import strawberry
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from db.faults import ServiceUnavailable
from resolvers.auth import authenticate
from resolvers.context import RequestContext
from scheduling.services import Services
from schema.build import build_schema
from schema.cacheable import PublicDocuments
from server.cached_answers import ANSWER_SCOPE, AnswerCachingEndpoint
from server.frame_encoding import DataFrameEncoder
from server.settings import Settings
from server.token_sockets import TokenSockets
from server.unavailable import (
    LegacyWSHandler,
    TransportWSHandler,
    mark_unavailable,
    says_unavailable,
    unavailable_answer,
)


class KokousGraphQL(GraphQL[RequestContext, None]):
    frames = DataFrameEncoder()
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A fault before the operation ran (looking up the bearer token) answers like one inside it."""
        if scope["type"] != "http":  # sockets: ``server/unavailable.py``'s handlers
            await super().__call__(scope, receive, send)
            return
        started = False

        async def noting_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await super().__call__(scope, receive, noting_send)
        except ServiceUnavailable:
            if started:
                raise
            answer = Response(self.encode_json(unavailable_answer()), media_type="application/json")
            await mark_unavailable(answer)(scope, receive, send)

    def encode_json(self, data: object) -> str:
        return self.frames.encode(data)

    def parse_json(self, data: str | bytes) -> object:
        """A body (or GET ``variables``) must be a JSON object (a list is a batch, refused later):
        ``null`` or ``42`` is the client's mistake, not a request to look into."""
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, 'Expected a JSON object such as {"query": "{ __typename }"}')
        return parsed

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        return mark_unavailable(response) if says_unavailable(response_data) else response

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> RequestContext:
        services = cast(Services, request.app.state.services)
        context = RequestContext(services=services, request=request, response=response)
        if isinstance(request, Request):
            context.answer_scope = request.scope.get(ANSWER_SCOPE)
            await authenticate(context, request.headers.get("authorization"))
        return context

    async def on_ws_connect(self, context: RequestContext) -> UnsetType | dict[str, object] | None:
        """The token travels in ``connection_init``; a wrong one closes the socket at once."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        await authenticate(context, params.get("authorization") or params.get("Authorization"))
        if context.auth_error:
            raise ConnectionRejectionError({"message": context.auth_error})
        if context.token_id is not None and isinstance(context.request, WebSocket):
            sockets = cast(TokenSockets, context.request.app.state.token_sockets)
            sockets.register(context.token_id, context.request)
        return cast(UnsetType, UNSET)


def graphql_app(settings: Settings) -> KokousGraphQL:
    return KokousGraphQL(
        build_schema(production=settings.production),
        graphql_ide=None if settings.production else "graphiql",
        allow_queries_via_get=True,
        keep_alive=True,
        keep_alive_interval=15,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        allowed_origins=("*",),
    )


def answering_endpoint(graphql: KokousGraphQL) -> AnswerCachingEndpoint:
    """The HTTP endpoint: kept public answers first, strawberry for everything else."""
    schema = cast(strawberry.Schema, graphql.schema)
    return AnswerCachingEndpoint(graphql, PublicDocuments(schema._schema))
