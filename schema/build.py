"""Builds the Schema object with the limits and settings for the running mode."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema import errors
from schema.booking_types import Booking, BookingRequest
from schema.limits import extensions, is_unexpected
from schema.mutation import Mutation
from schema.query import Query
from schema.scalars import SCALARS
from schema.subscription import Subscription


class KokousSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log what went wrong by mistake, with its traceback; expected errors are the client's."""
        unexpected = [error for error in errors if is_unexpected(error)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema(*, production: bool) -> strawberry.Schema:
    return KokousSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[errors.NotFound, errors.InvalidInput, errors.SlugTaken, Booking, BookingRequest],
        extensions=extensions(production=production),
        config=StrawberryConfig(disable_field_suggestions=production, scalar_map=SCALARS),
    )
