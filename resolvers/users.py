"""The signed-in owner and their settings.

Changing the settings and creating or revoking a token are each one transaction with nothing
done outside the database before its commit: one whose connection was lost before that runs
once more (``resolvers/retry.py``).
"""

from __future__ import annotations

from graphql import GraphQLError

from common.values import BookingStatus
from db.models import ApiToken, Booking, User
from resolvers.auth import require_user
from resolvers.context import RequestContext
from resolvers.ids import parse_id
from resolvers.retry import retried_if_lost
from scheduling.calendars.directory import ConnectionView
from scheduling.errors import InvalidInput, NotFound
from scheduling.users import CreatedToken, SettingsChange


def me(context: RequestContext) -> User:
    return require_user(context)


@retried_if_lost
async def update_settings(context: RequestContext, change: SettingsChange) -> User:
    """``updateUserSettings`` returns ``User!`` by contract, so bad input is a typed GraphQL error."""
    user = require_user(context)
    result = await context.services.users.update_settings(user.id, change)
    if isinstance(result, InvalidInput):
        raise GraphQLError(result.message, extensions={"code": "INVALID_INPUT", "field": result.field})
    if isinstance(result, NotFound):
        raise GraphQLError(result.message, extensions={"code": "NOT_FOUND"})
    context.user = result
    return result


async def connections(context: RequestContext, owner: User) -> list[ConnectionView]:
    return await context.services.calendars.list_connections(owner.id)


async def bookings(context: RequestContext, owner: User, status: BookingStatus | None) -> list[Booking]:
    return await context.services.bookings.list_bookings(owner.id, status)


async def api_tokens(context: RequestContext, owner: User) -> list[ApiToken]:
    return await context.services.users.list_tokens(owner.id)


@retried_if_lost
async def create_api_token(context: RequestContext, name: str, expires_in_days: int | None) -> CreatedToken:
    """``createApiToken`` returns ``CreatedApiToken!`` by contract, so bad input is a typed GraphQL error."""
    user = require_user(context)
    result = await context.services.users.create_token(user.id, name=name, expires_in_days=expires_in_days)
    if isinstance(result, InvalidInput):
        raise GraphQLError(result.message, extensions={"code": "INVALID_INPUT", "field": result.field})
    return result


@retried_if_lost
async def revoke_api_token(context: RequestContext, token_id: str) -> ApiToken | NotFound:
    user = require_user(context)
    parsed = parse_id(token_id)
    if parsed is None:
        return NotFound(message="API token not found")
    return await context.services.users.revoke_token(user.id, parsed)
