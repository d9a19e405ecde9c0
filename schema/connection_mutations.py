"""Calendar connection mutations of the signed-in owner: connect, choose, remove, disconnect."""

from __future__ import annotations

from typing import Annotated

import strawberry

from common.values import CalendarProvider
from db.models import Calendar
from resolvers import connections as connection_resolvers
from scheduling.calendars.connect import CalendarRemoved, Disconnected
from schema.connection_types import (
    CalDAVConnectionInput,
    ConfirmCalendarConnectionResult,
    ConnectCalendarResult,
    ExchangeConnectionInput,
    StartConnectionResult,
    confirm_result,
    connect_result,
    start_result,
)
from schema.errors import NotFoundError, PrimaryCalendarNotRemovableError, error_from_domain
from schema.types import CalendarType, Ctx


@strawberry.type(
    name="CalendarRemoved",
    description="The calendar no longer counts for availability and its busy time is gone; it stays in its "
    "connection's calendar list, from where it can be added again.",
)
class CalendarRemovedType:
    calendar_id: strawberry.ID


@strawberry.type(
    name="Disconnected", description="The account was disconnected: its calendars and stored credentials are gone."
)
class DisconnectedType:
    connection_id: strawberry.ID


CalendarResult = Annotated[CalendarType | NotFoundError, strawberry.union("CalendarResult")]
RemoveCalendarResult = Annotated[
    CalendarRemovedType | PrimaryCalendarNotRemovableError | NotFoundError, strawberry.union("RemoveCalendarResult")
]
DisconnectResult = Annotated[DisconnectedType | NotFoundError, strawberry.union("DisconnectResult")]


@strawberry.type
class ConnectionMutation:
    @strawberry.mutation(description="Start connecting Google or Microsoft 365: the consent URL to send the owner to.")
    async def start_calendar_connection(self, info: Ctx, provider: CalendarProvider) -> StartConnectionResult:
        return start_result(await connection_resolvers.start(info.context, provider))

    @strawberry.mutation(
        description="Finish connecting Google or Microsoft 365: the `confirm` code the OAuth callback put on the "
        "dashboard URL. Only the owner who started the connection can confirm it, once, within 10 minutes."
    )
    async def confirm_calendar_connection(self, info: Ctx, code: str) -> ConfirmCalendarConnectionResult:
        return confirm_result(await connection_resolvers.confirm(info.context, code))

    @strawberry.mutation(description="Connect an on-premises Exchange mailbox; it is tested before it is saved.")
    async def connect_exchange_calendar(self, info: Ctx, input: ExchangeConnectionInput) -> ConnectCalendarResult:
        return connect_result(await connection_resolvers.connect_exchange(info.context, input.to_form()))

    @strawberry.mutation(
        name="connectCalDAVCalendar", description="Connect a CalDAV account (iCloud, Fastmail, Nextcloud, ...)."
    )
    async def connect_caldav_calendar(self, info: Ctx, input: CalDAVConnectionInput) -> ConnectCalendarResult:
        return connect_result(await connection_resolvers.connect_caldav(info.context, input.to_form()))

    @strawberry.mutation(description="Whether the calendar's busy time counts for availability.")
    async def set_calendar_integrated(self, info: Ctx, calendar_id: strawberry.ID, integrated: bool) -> CalendarResult:
        result = await connection_resolvers.set_integrated(info.context, calendar_id, integrated)
        return CalendarType.from_domain(result) if isinstance(result, Calendar) else error_from_domain(result)

    @strawberry.mutation(
        description="Take one calendar out of your calendars: its busy time no longer counts, and an inactive "
        "calendar removed this way no longer stops booking. Its account and other calendars stay."
    )
    async def remove_calendar(self, info: Ctx, calendar_id: strawberry.ID) -> RemoveCalendarResult:
        result = await connection_resolvers.remove(info.context, calendar_id)
        if isinstance(result, CalendarRemoved):
            return CalendarRemovedType(calendar_id=strawberry.ID(str(result.calendar_id)))
        return error_from_domain(result)

    @strawberry.mutation(
        description="Disconnect a whole calendar account: its calendars go and its stored credentials are "
        "deleted at once (and revoked where the provider allows)."
    )
    async def disconnect_calendar_connection(self, info: Ctx, connection_id: strawberry.ID) -> DisconnectResult:
        result = await connection_resolvers.disconnect(info.context, connection_id)
        if isinstance(result, Disconnected):
            return DisconnectedType(connection_id=strawberry.ID(str(result.connection_id)))
        return error_from_domain(result)
