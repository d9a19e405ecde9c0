"""Who is calling: bearer tokens on HTTP and in the WebSocket ``connection_init`` payload."""

from __future__ import annotations

from graphql import GraphQLError

from db.models import User
from resolvers.context import RequestContext
from scheduling import api_tokens


class NotAuthenticated(GraphQLError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason, extensions={"code": "UNAUTHENTICATED"})


async def authenticate(context: RequestContext, authorization: object) -> None:
    """Set ``context.user`` from an Authorization value; remember why when it is refused."""
    if authorization is None or authorization == "":
        return
    token = api_tokens.bearer_token(authorization) if isinstance(authorization, str) else None
    if token is None:
        context.auth_error = "the Authorization value must be 'Bearer <token>'"
        return
    caller = await context.services.users.identify(token)
    if caller is None:
        context.auth_error = "the bearer token is invalid or revoked"
        return
    context.user = caller.user
    context.token_id = caller.token_id


def require_user(context: RequestContext) -> User:
    if context.user is None:
        raise NotAuthenticated(
            f"Not authenticated: {context.auth_error}"
            if context.auth_error
            else "Not authenticated: send a bearer token"
        )
    return context.user
