"""Calendar connection mutations of the signed-in owner (CAL-1 to CAL-8)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import connections as connection_resolvers
from scheduling import errors as domain
from scheduling.connections import CalendarRemoved as CalendarRemovedValue
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


@strawberry.type(
    description="The calendar no longer counts for availability and its busy time is gone; it stays in its "
    "connection's calendar list, from where it can be added again."
)
class CalendarRemoved:
    calendar_id: strawberry.ID


@strawberry.type(description="The account was disconnected: its calendars and stored credentials are gone.")
class Disconnected:
    connection_id: strawberry.ID


@strawberry.type(
    description="The primary calendar receives your bookings and goes only with its account: "
    "use disconnectCalendarConnection with `connectionId`."
)
class PrimaryCalendarNotRemovable(errors.Error):
    connection_id: strawberry.ID


CalendarResult = Annotated[Calendar | errors.NotFound, strawberry.union("CalendarResult")]
RemoveCalendarResult = Annotated[
    CalendarRemoved | PrimaryCalendarNotRemovable | errors.NotFound, strawberry.union("RemoveCalendarResult")
]
DisconnectResult = Annotated[Disconnected | errors.NotFound, strawberry.union("DisconnectResult")]


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

    @strawberry.mutation(
        description="Take one calendar out of your calendars: its busy time no longer counts, and an inactive "
        "calendar removed this way no longer stops booking. Its account and other calendars stay."
    )
    async def remove_calendar(self, info: Ctx, calendar_id: strawberry.ID) -> RemoveCalendarResult:
        result = await connection_resolvers.remove(info.context, calendar_id)
        if isinstance(result, CalendarRemovedValue):
            return CalendarRemoved(calendar_id=strawberry.ID(str(result.calendar_id)))
        if isinstance(result, domain.PrimaryCalendarNotRemovable):
            return PrimaryCalendarNotRemovable(
                message=result.message, connection_id=strawberry.ID(str(result.connection_id))
            )
        return errors.NotFound(message=result.message)

    @strawberry.mutation(
        description="Disconnect a whole calendar account: its calendars go and its stored credentials are "
        "deleted at once (and revoked where the provider allows)."
    )
    async def disconnect_calendar_connection(self, info: Ctx, connection_id: strawberry.ID) -> DisconnectResult:
        result = await connection_resolvers.disconnect(info.context, connection_id)
        if isinstance(result, domain.NotFound):
            return errors.NotFound(message=result.message)
        return Disconnected(connection_id=strawberry.ID(str(result.connection_id)))
