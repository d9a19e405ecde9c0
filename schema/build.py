"""Builds the Schema object with the limits and settings for the running mode."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from resolvers.context import RequestContext
from schema.booking_types import BookingRequest, BookingType
from schema.errors import ERROR_TYPES
from schema.limits import extensions, is_unexpected
from schema.mutation import Mutation
from schema.plain_lists import PlainListExecution
from schema.query import Query
from schema.scalars import SCALARS
from schema.shared_streams import SharedStreams, share_key
from schema.subscription import Subscription


class KokousSchema(strawberry.Schema):
    """Strawberry's schema, sharing identical anonymous subscriptions and logging only bugs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shared_streams = SharedStreams()

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> Any:
        key = _anonymous_share_key(query, variable_values, operation_name, context_value)
        run = partial(
            super().stream,
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
            allowed_operation_types=allowed_operation_types,
        )
        return await run() if key is None else self.shared_streams.join(key, run)

    async def subscribe(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> Any:
        return await self.stream(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
            allowed_operation_types=(OperationType.SUBSCRIPTION,),
        )

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log what went wrong by mistake, with its traceback; expected errors are the client's.

        An answer with errors is never cached.
        """
        context = execution_context.context if execution_context is not None else None
        if isinstance(context, RequestContext) and context.answer_scope is not None:
            context.answer_scope.spoil()
        unexpected = [error for error in errors if is_unexpected(error)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def _anonymous_share_key(
    query: str | None, variables: dict[str, Any] | None, operation_name: str | None, context: Any
) -> Hashable | None:
    if not isinstance(context, RequestContext) or context.user is not None or context.auth_error:
        return None
    return share_key(query, variables, operation_name)


def build_schema(*, production: bool) -> strawberry.Schema:
    return KokousSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[*ERROR_TYPES, BookingType, BookingRequest],
        extensions=extensions(production=production),
        execution_context_class=PlainListExecution,
        config=StrawberryConfig(disable_field_suggestions=production, scalar_map=SCALARS),
    )
