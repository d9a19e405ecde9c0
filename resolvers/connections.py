"""The signed-in owner's calendar connections: connect, change settings, choose, remove, disconnect.

Changing a connection's settings, choosing a calendar and removing one are each one transaction
with nothing done outside the database before its commit (the providers are told after it): one
whose connection was lost before that runs once more (``resolvers/retry.py``). Connecting and
disconnecting call the provider before they commit, so they are not run again.
"""

from __future__ import annotations

from common.values import CalendarProvider
from db.models import Calendar
from resolvers.auth import require_user
from resolvers.context import RequestContext
from resolvers.ids import parse_id
from resolvers.retry import retried_if_lost
from scheduling.calendars.connect import CalendarRemoved, ConfirmResult, ConnectResult, Disconnected
from scheduling.calendars.directory import ConnectionSettings, ConnectionView
from scheduling.calendars.oauth_flow import StartResult
from scheduling.calendars.rules import CalDAVAccountForm, ExchangeAccountForm
from scheduling.errors import NotFound, PrimaryCalendarNotRemovable

_NOT_FOUND = NotFound(message="calendar not found")


async def start(context: RequestContext, provider: CalendarProvider) -> StartResult:
    user = require_user(context)
    return await context.services.connections.start_oauth(user, provider)


async def confirm(context: RequestContext, code: str) -> ConfirmResult:
    """Only the owner who started the OAuth flow can turn its pending grant into a connection."""
    user = require_user(context)
    return await context.services.connections.confirm_oauth(user, code)


async def connect_exchange(context: RequestContext, form: ExchangeAccountForm) -> ConnectResult:
    user = require_user(context)
    return await context.services.connections.connect_exchange(user, form)


async def connect_caldav(context: RequestContext, form: CalDAVAccountForm) -> ConnectResult:
    user = require_user(context)
    return await context.services.connections.connect_caldav(user, form)


@retried_if_lost
async def update_connection(
    context: RequestContext, connection_id: str, settings: ConnectionSettings
) -> ConnectionView | NotFound:
    user = require_user(context)
    parsed = parse_id(connection_id)
    if parsed is None:
        return NotFound(message="calendar connection not found")
    return await context.services.calendars.update_connection(user.id, parsed, settings)


@retried_if_lost
async def set_integrated(context: RequestContext, calendar_id: str, integrated: bool) -> Calendar | NotFound:
    user = require_user(context)
    parsed = parse_id(calendar_id)
    if parsed is None:
        return _NOT_FOUND
    return await context.services.connections.set_integrated(user.id, parsed, integrated)


@retried_if_lost
async def remove(context: RequestContext, calendar_id: str) -> CalendarRemoved | PrimaryCalendarNotRemovable | NotFound:
    user = require_user(context)
    parsed = parse_id(calendar_id)
    if parsed is None:
        return _NOT_FOUND
    return await context.services.connections.remove_calendar(user.id, parsed)


async def disconnect(context: RequestContext, connection_id: str) -> Disconnected | NotFound:
    user = require_user(context)
    parsed = parse_id(connection_id)
    if parsed is None:
        return NotFound(message="calendar connection not found")
    return await context.services.connections.disconnect(user.id, parsed)
