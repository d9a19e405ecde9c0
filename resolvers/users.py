"""The signed-in owner and their settings."""

from __future__ import annotations

from graphql import GraphQLError

from common.values import BookingStatus
from db.models import Booking, User
from resolvers.auth import require_user
from resolvers.context import RequestContext
from scheduling.calendars.directory import ConnectionView
from scheduling.errors import InvalidInput, NotFound
from scheduling.users import SettingsChange


def me(context: RequestContext) -> User:
    return require_user(context)


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
