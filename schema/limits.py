"""GraphQL limits that are on from the start: depth, aliases, tokens, directives, masking."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from graphql import DirectiveNode, GraphQLError, ValidationRule
from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

logger = logging.getLogger(__name__)

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2_000
MAX_DIRECTIVES = 20


class MaxDirectivesRule(ValidationRule):
    """Refuses documents with more than ``MAX_DIRECTIVES`` directives (a cheap DoS otherwise)."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._count = 0

    def enter_directive(self, node: DirectiveNode, *_args: object) -> None:
        self._count += 1
        if self._count == MAX_DIRECTIVES + 1:
            self.report_error(GraphQLError(f"at most {MAX_DIRECTIVES} directives are allowed", node))


def is_unexpected(error: GraphQLError) -> bool:
    """Mask only what a resolver raised by mistake; validation and input errors stay readable."""
    original = error.original_error
    return error.path is not None and original is not None and not isinstance(original, GraphQLError)


# Built once, so the validation cache can recognise the same rule set on every request
# (QueryDepthLimiter and MaxAliasesLimiter would build new rule classes per request).
LIMIT_RULES: list[type[ASTValidationRule]] = [
    depth_validator(MAX_DEPTH, None, None),
    aliases_validator(MAX_ALIASES),
    MaxDirectivesRule,
]
CACHE_SIZE = 512


def extensions(*, production: bool) -> list[Callable[[], SchemaExtension]]:
    """Factories, so each operation gets fresh extension instances.

    Parsing and validating the same document again costs more than running most queries, so
    both are cached (bounded); the token limit applies at parse time, the rest at validation.
    """
    chosen: list[Callable[[], SchemaExtension]] = [
        partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        partial(ParserCache, maxsize=CACHE_SIZE),
        partial(AddValidationRules, LIMIT_RULES),
        partial(ValidationCache, maxsize=CACHE_SIZE),
        partial(MaskErrors, should_mask_error=is_unexpected, error_message="Unexpected error."),
    ]
    if production:
        chosen.append(DisableIntrospection)
    return chosen
