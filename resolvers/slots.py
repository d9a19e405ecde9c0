"""The one-off slots query of a public page."""

from __future__ import annotations

from graphql import GraphQLError

from resolvers.context import RequestContext
from scheduling.errors import InvalidInput
from scheduling.live.feeds import SlotSnapshot, SlotWindow
from scheduling.pages.service import PageView


async def query_slots(context: RequestContext, view: PageView, window: SlotWindow) -> SlotSnapshot:
    """``slots`` returns ``SlotList!`` by contract, so a bad window is a typed GraphQL error."""
    result = await context.services.live.query_slots(view, window)
    if isinstance(result, InvalidInput):
        raise GraphQLError(result.message, extensions={"code": "INVALID_INPUT", "field": result.field})
    if context.answer_scope is not None:
        context.answer_scope.stable_until(result.stable_until)
    return result
