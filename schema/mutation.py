"""The Mutation root. Expected failures come back as union members, never exceptions."""

from __future__ import annotations

from typing import Annotated

import strawberry
from graphql import GraphQLError

from db.models import ApiToken
from resolvers import connections as connection_resolvers
from resolvers import pages as page_resolvers
from resolvers import users as user_resolvers
from scheduling.calendars.directory import ConnectionView
from scheduling.pages.service import Deleted, PageResult, PageView
from schema.booking_mutations import BookingMutation
from schema.connection_mutations import ConnectionMutation
from schema.crm_mutations import CrmMutation
from schema.errors import InvalidInputError, NotFoundError, SlugTakenError, error_from_domain
from schema.inputs import CalendarConnectionSettingsInput, SchedulingPageInput, UserSettingsInput
from schema.types import (
    ApiTokenType,
    CalendarConnectionType,
    CreatedApiTokenType,
    Ctx,
    DeletedType,
    DeleteResult,
    SchedulingPageType,
    UserType,
)

SchedulingPageResult = Annotated[
    SchedulingPageType | InvalidInputError | SlugTakenError | NotFoundError,
    strawberry.union("SchedulingPageResult"),
]
CalendarConnectionResult = Annotated[
    CalendarConnectionType | NotFoundError, strawberry.union("CalendarConnectionResult")
]
RevokeApiTokenResult = Annotated[ApiTokenType | NotFoundError, strawberry.union("RevokeApiTokenResult")]


def _page_result(result: PageResult) -> SchedulingPageResult:
    return SchedulingPageType.from_domain(result) if isinstance(result, PageView) else error_from_domain(result)


@strawberry.type
class Mutation(BookingMutation, ConnectionMutation, CrmMutation):
    @strawberry.mutation
    async def update_user_settings(self, info: Ctx, input: UserSettingsInput) -> UserType:
        change = input.to_change()
        if change is None:
            raise GraphQLError(
                "default page not found", extensions={"code": "INVALID_INPUT", "field": "defaultSchedulingPageId"}
            )
        row = await user_resolvers.update_settings(info.context, change)
        return UserType.from_domain(row, info.context.services.links.default_base())

    @strawberry.mutation
    async def create_scheduling_page(self, info: Ctx, input: SchedulingPageInput) -> SchedulingPageResult:
        return _page_result(await page_resolvers.create(info.context, input.to_draft()))

    @strawberry.mutation
    async def update_scheduling_page(
        self, info: Ctx, id: strawberry.ID, input: SchedulingPageInput
    ) -> SchedulingPageResult:
        return _page_result(await page_resolvers.update(info.context, id, input.to_draft()))

    @strawberry.mutation
    async def delete_scheduling_page(self, info: Ctx, id: strawberry.ID) -> DeleteResult:
        result = await page_resolvers.delete(info.context, id)
        if isinstance(result, Deleted):
            return DeletedType(id=strawberry.ID(str(result.id)))
        return error_from_domain(result)

    @strawberry.mutation(description="Disable (or enable) every page of the owner without deleting any.")
    async def set_all_scheduling_pages_enabled(self, info: Ctx, enabled: bool) -> list[SchedulingPageType]:
        return [
            SchedulingPageType.from_domain(view) for view in await page_resolvers.set_all_enabled(info.context, enabled)
        ]

    @strawberry.mutation(description="Change a connection's calendar sync and scheduling pages settings.")
    async def update_calendar_connection(
        self, info: Ctx, id: strawberry.ID, input: CalendarConnectionSettingsInput
    ) -> CalendarConnectionResult:
        result = await connection_resolvers.update_connection(info.context, id, input.to_settings())
        if isinstance(result, ConnectionView):
            return CalendarConnectionType.from_domain(result)
        return error_from_domain(result)

    @strawberry.mutation(description="A new bearer token; its secret is in the answer and never shown again.")
    async def create_api_token(self, info: Ctx, name: str, expires_in_days: int | None = None) -> CreatedApiTokenType:
        created = await user_resolvers.create_api_token(info.context, name, expires_in_days)
        return CreatedApiTokenType(api_token=ApiTokenType.from_row(created.token), secret=created.secret)

    @strawberry.mutation(description="Revoke one of your tokens: it is refused at once and its sockets close.")
    async def revoke_api_token(self, info: Ctx, id: strawberry.ID) -> RevokeApiTokenResult:
        result = await user_resolvers.revoke_api_token(info.context, id)
        if isinstance(result, ApiToken):
            return ApiTokenType.from_row(result)
        return error_from_domain(result)
