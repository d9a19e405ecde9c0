"""The Mutation root. Expected failures come back as union members, never exceptions."""

from __future__ import annotations

from typing import Annotated

import strawberry
from graphql import GraphQLError

from resolvers import calendars as calendar_resolvers
from resolvers import pages as page_resolvers
from resolvers import users as user_resolvers
from scheduling.calendars import ConnectionView
from scheduling.pages import Deleted as DeletedValue
from scheduling.pages import PageView
from schema import errors
from schema.booking_mutations import BookingMutation
from schema.connection_mutations import ConnectionMutation
from schema.inputs import CalendarConnectionSettingsInput, SchedulingPageInput, UserSettingsInput
from schema.types import CalendarConnection, Ctx, Deleted, SchedulingPage, User

SchedulingPageResult = Annotated[
    SchedulingPage | errors.InvalidInput | errors.SlugTaken | errors.NotFound,
    strawberry.union("SchedulingPageResult"),
]
CalendarConnectionResult = Annotated[CalendarConnection | errors.NotFound, strawberry.union("CalendarConnectionResult")]
DeleteResult = Annotated[Deleted | errors.NotFound, strawberry.union("DeleteResult")]


def _page_result(result: PageView | errors.DomainError) -> SchedulingPageResult:
    if isinstance(result, PageView):
        return SchedulingPage.from_domain(result)
    return errors.from_domain(result)


@strawberry.type
class Mutation(BookingMutation, ConnectionMutation):
    @strawberry.mutation
    async def update_user_settings(self, info: Ctx, input: UserSettingsInput) -> User:
        change = input.to_change()
        if change is None:
            raise GraphQLError(
                "default page not found", extensions={"code": "INVALID_INPUT", "field": "defaultSchedulingPageId"}
            )
        row = await user_resolvers.update_settings(info.context, change)
        return User.from_domain(row, info.context.services.links.default_base())

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
        if isinstance(result, DeletedValue):
            return Deleted(id=strawberry.ID(str(result.id)))
        return errors.NotFound(message=result.message)

    @strawberry.mutation(description="Disable (or enable) every page of the owner without deleting any.")
    async def set_all_scheduling_pages_enabled(self, info: Ctx, enabled: bool) -> list[SchedulingPage]:
        return [
            SchedulingPage.from_domain(view) for view in await page_resolvers.set_all_enabled(info.context, enabled)
        ]

    @strawberry.mutation(description="Change a connection's calendar sync and scheduling pages settings (CAL-7).")
    async def update_calendar_connection(
        self, info: Ctx, id: strawberry.ID, input: CalendarConnectionSettingsInput
    ) -> CalendarConnectionResult:
        result = await calendar_resolvers.update_connection(info.context, id, input.to_settings())
        if isinstance(result, ConnectionView):
            return CalendarConnection.from_domain(result)
        return errors.NotFound(message=result.message)
