"""Calendar connections of the signed-in owner."""

from __future__ import annotations

from resolvers.auth import require_user
from resolvers.context import RequestContext
from resolvers.ids import parse_id
from scheduling.calendars import ConnectionSettings, ConnectionView
from scheduling.errors import NotFound


async def update_connection(
    context: RequestContext, connection_id: str, settings: ConnectionSettings
) -> ConnectionView | NotFound:
    user = require_user(context)
    parsed = parse_id(connection_id)
    if parsed is None:
        return NotFound(message="calendar connection not found")
    return await context.services.calendars.update_connection(user.id, parsed, settings)
