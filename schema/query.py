"""The Query root."""

from __future__ import annotations

import strawberry

from resolvers import bookings as booking_resolvers
from resolvers import domains as domain_resolvers
from resolvers import pages as page_resolvers
from resolvers import users as user_resolvers
from schema.booking_types import BookingType
from schema.types import Ctx, DomainType, PublicSchedulingPage, UserType


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in owner.")
    def me(self, info: Ctx) -> UserType:
        row = user_resolvers.me(info.context)
        return UserType.from_domain(row, info.context.services.links.default_base())

    @strawberry.field(description="A public page; null when unknown, disabled or not on that domain.")
    async def scheduling_page(self, info: Ctx, slug: str, domain: str | None = None) -> PublicSchedulingPage | None:
        view = await page_resolvers.public_page(info.context, slug, domain)
        return None if view is None else PublicSchedulingPage.from_domain(view)

    @strawberry.field(description="Connected domains that may serve pages.")
    async def domains(self, info: Ctx) -> list[DomainType]:
        return [DomainType.from_domain(row) for row in await domain_resolvers.list_domains(info.context)]

    @strawberry.field(description="A booking by the invitee's signed link token; null when invalid or expired.")
    async def booking(self, info: Ctx, token: str) -> BookingType | None:
        view = await booking_resolvers.by_token(info.context, token)
        return None if view is None else BookingType.from_row(view.booking, info.context)
