"""Connecting, choosing and removing calendars for the signed-in owner (CAL-1 to CAL-8)."""

from __future__ import annotations

from db.models import Calendar
from providers.caldav import CalDAVForm
from providers.exchange import ExchangeForm
from resolvers.auth import require_user
from resolvers.context import RequestContext
from resolvers.ids import parse_id
from scheduling.connections import CalendarRemoved, ConnectResult, Disconnected, StartResult
from scheduling.errors import NotFound, PrimaryCalendarNotRemovable
from scheduling.values import CalendarProvider

_NOT_FOUND = NotFound(message="calendar not found")


async def start(context: RequestContext, provider: CalendarProvider) -> StartResult:
    user = require_user(context)
    return await context.services.connections.start_oauth(user, provider)


async def connect_exchange(context: RequestContext, form: ExchangeForm) -> ConnectResult:
    user = require_user(context)
    return await context.services.connections.connect_exchange(user, form)


async def connect_caldav(context: RequestContext, form: CalDAVForm) -> ConnectResult:
    user = require_user(context)
    return await context.services.connections.connect_caldav(user, form)


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
