"""The signed-in owner's calendar connections: connect, change settings, choose, remove, disconnect."""

from __future__ import annotations

from common.values import CalendarProvider
from db.models import Calendar
from resolvers.auth import require_user
from resolvers.context import RequestContext
from resolvers.ids import parse_id
from scheduling.calendars.connect import CalendarRemoved, ConfirmResult, ConnectResult, Disconnected, StartResult
from scheduling.calendars.directory import ConnectionSettings, ConnectionView
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


async def update_connection(
    context: RequestContext, connection_id: str, settings: ConnectionSettings
) -> ConnectionView | NotFound:
    user = require_user(context)
    parsed = parse_id(connection_id)
    if parsed is None:
        return NotFound(message="calendar connection not found")
    return await context.services.calendars.update_connection(user.id, parsed, settings)


async def set_integrated(context: RequestContext, calendar_id: str, integrated: bool) -> Calendar | NotFound:
    user = require_user(context)
    parsed = parse_id(calendar_id)
    if parsed is None:
        return _NOT_FOUND
    return await context.services.connections.set_integrated(user.id, parsed, integrated)


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
