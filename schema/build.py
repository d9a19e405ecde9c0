"""Builds the Schema object with the limits and settings for the running mode."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from schema import errors
from schema.limits import extensions
from schema.mutation import Mutation
from schema.query import Query
from schema.scalars import SCALARS
from schema.subscription import Subscription


def build_schema(*, production: bool) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[errors.NotFound, errors.InvalidInput, errors.SlugTaken],
        extensions=extensions(production=production),
        config=StrawberryConfig(disable_field_suggestions=production, scalar_map=SCALARS),
    )
