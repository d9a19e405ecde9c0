"""Calendar connection mutations of the signed-in owner (CAL-1 to CAL-8)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import connections as connection_resolvers
from scheduling import errors as domain
from scheduling.connections import Disconnected
from scheduling.values import CalendarProvider
from schema import errors
from schema.connection_types import (
    CalDAVConnectionInput,
    ConnectCalendarResult,
    ExchangeConnectionInput,
    StartConnectionResult,
    connect_result,
    start_result,
)
from schema.types import Calendar, Ctx


@strawberry.type(description="The calendar's connection was removed with its credentials (CAL-8).")
class RemovedCalendar:
    connection_id: strawberry.ID
    calendar_ids: list[strawberry.ID]


CalendarResult = Annotated[Calendar | errors.NotFound, strawberry.union("CalendarResult")]
RemoveCalendarResult = Annotated[RemovedCalendar | errors.NotFound, strawberry.union("RemoveCalendarResult")]


@strawberry.type
class ConnectionMutation:
    @strawberry.mutation(description="Start connecting Google or Microsoft 365: the consent URL (CAL-1, CAL-2).")
    async def start_calendar_connection(self, info: Ctx, provider: CalendarProvider) -> StartConnectionResult:
        return start_result(await connection_resolvers.start(info.context, provider))

    @strawberry.mutation(description="Connect an on-premises Exchange mailbox; tested before it is saved (CAL-3).")
    async def connect_exchange_calendar(self, info: Ctx, input: ExchangeConnectionInput) -> ConnectCalendarResult:
        return connect_result(await connection_resolvers.connect_exchange(info.context, input.to_form()))

    @strawberry.mutation(
        name="connectCalDAVCalendar", description="Connect a CalDAV account (iCloud, Fastmail, Nextcloud, ...)."
    )
    async def connect_caldav_calendar(self, info: Ctx, input: CalDAVConnectionInput) -> ConnectCalendarResult:
        return connect_result(await connection_resolvers.connect_caldav(info.context, input.to_form()))

    @strawberry.mutation(description="Whether the calendar's busy time counts for availability (CAL-6).")
    async def set_calendar_integrated(self, info: Ctx, calendar_id: strawberry.ID, integrated: bool) -> CalendarResult:
        result = await connection_resolvers.set_integrated(info.context, calendar_id, integrated)
        if isinstance(result, domain.NotFound):
            return errors.NotFound(message=result.message)
        return Calendar.from_domain(result)

    @strawberry.mutation(description="Disconnect the calendar's account: credentials are deleted at once (CAL-8).")
    async def remove_calendar(self, info: Ctx, calendar_id: strawberry.ID) -> RemoveCalendarResult:
        result = await connection_resolvers.remove(info.context, calendar_id)
        if isinstance(result, Disconnected):
            return RemovedCalendar(
                connection_id=strawberry.ID(str(result.connection_id)),
                calendar_ids=[strawberry.ID(str(calendar_id)) for calendar_id in result.calendar_ids],
            )
        return errors.NotFound(message=result.message)
