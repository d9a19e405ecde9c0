"""GraphQL limits that are on from the start: depth, aliases, tokens, directives, masking.

Masking is where the errors of an operation get their final form, on every transport: what a
resolver raised by mistake becomes "Unexpected error.", and a lost database
(``db.faults.ServiceUnavailable``) becomes the one ``SERVICE_UNAVAILABLE`` error of
``unavailable_error``, which the server also sends for a fault before any operation ran.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from graphql import DirectiveNode, FieldNode, GraphQLError, Node, SelectionSetNode, StringValueNode, ValidationRule
from graphql.validation import ASTValidationRule
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

from db.faults import CODE, MESSAGE, RETRY_AFTER_SECONDS, ServiceUnavailable

logger = logging.getLogger(__name__)

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2_000
MAX_DIRECTIVES = 20
MAX_FIELD_COPIES = 5  # the same field in one selection (a client adding __typename makes two)
NUL_MESSAGE = "Text may not contain the NUL character (U+0000)."


class MaxDirectivesRule(ValidationRule):
    """Refuses documents with more than ``MAX_DIRECTIVES`` directives (a cheap DoS otherwise).

    Validation stops there: every further rule would only add errors about the same flood.
    """

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._count = 0

    def enter_directive(self, node: DirectiveNode, *_args: object) -> None:
        self._count += 1
        if self._count > MAX_DIRECTIVES:
            raise ValidationAbortedError(f"at most {MAX_DIRECTIVES} directives are allowed", node)


class RepeatedDirectivesRule(ValidationRule):
    """One error for a directive repeated in one place, and validation stops.

    The standard rules give an error per repetition (and per unknown directive), so a short
    document like ``__typename @a @a @a …`` made the server build one error per copy.
    """

    def enter(self, node: Node, *_args: object) -> None:
        directives: tuple[DirectiveNode, ...] | None = getattr(node, "directives", None)
        if not directives:
            return
        repeated = [name for name, uses in Counter(d.name.value for d in directives).items() if uses > 1]
        if repeated:
            message = f'The directive "@{repeated[0]}" is repeated; use each directive once in a place.'
            raise ValidationAbortedError(message, [d for d in directives if d.name.value == repeated[0]])


class RepeatedFieldsRule(ValidationRule):
    """One error for a field asked for over and over in one selection, and validation stops.

    Answering ``{ __typename __typename …}`` costs the server a comparison of every copy with
    every other (to check they can merge) for an answer holding the field once.
    """

    def enter_selection_set(self, node: SelectionSetNode, *_args: object) -> None:
        keys = Counter((field.alias or field.name).value for field in node.selections if isinstance(field, FieldNode))
        key, copies = keys.most_common(1)[0] if keys else ("", 0)
        if copies > MAX_FIELD_COPIES:
            message = f'The field "{key}" is asked for {copies} times in one place; ask for it once.'
            raise ValidationAbortedError(message, node)


class NoNulInTextRule(ValidationRule):
    """No text holds U+0000: no database stores it, so it is refused as bad input at the door."""

    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        if "\x00" in node.value:
            self.report_error(GraphQLError(NUL_MESSAGE, node))


def holds_nul(value: object) -> bool:
    """Whether a variable's value holds U+0000 anywhere (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


class NoNulInVariables(SchemaExtension):
    """The variables' side of ``NoNulInTextRule``.

    Listed after ``ValidationCache``, whose hook has then put the document's errors in place;
    adding one here still stops the operation before it runs (subscriptions too).
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.variables and holds_nul(context.variables):
            context.pre_execution_errors = [*(context.pre_execution_errors or []), GraphQLError(NUL_MESSAGE)]
        yield


UNEXPECTED_MESSAGE = "Unexpected error."


def is_unavailable(error: GraphQLError) -> bool:
    """Whether ``error`` is the database's ``ServiceUnavailable``, wherever it was raised."""
    return isinstance(error.original_error, ServiceUnavailable)


def is_unexpected(error: GraphQLError) -> bool:
    """Mask only what a resolver raised by mistake; validation and input errors stay readable,
    and a lost database is answered as itself (``unavailable_error``)."""
    original = error.original_error
    return (
        error.path is not None and original is not None and not isinstance(original, GraphQLError | ServiceUnavailable)
    )


def unavailable_error(at: GraphQLError | None = None) -> GraphQLError:
    """The API's answer to ``ServiceUnavailable``: try again after ``retryAfterSeconds``.

    ``at``: the error as an operation raised it, whose place (path, locations) is kept.
    """
    extensions = {"code": CODE, "retryAfterSeconds": RETRY_AFTER_SECONDS}
    if at is None:
        return GraphQLError(MESSAGE, extensions=extensions)
    return GraphQLError(
        MESSAGE,
        nodes=at.nodes,
        source=at.source,
        positions=at.positions,
        path=at.path,
        original_error=at.original_error,
        extensions=extensions,
    )


class AnswerErrors(MaskErrors):
    """Masks what a resolver raised by mistake, and answers a lost database as
    ``unavailable_error``, never as "Unexpected error."."""

    def __init__(self) -> None:
        super().__init__(
            should_mask_error=lambda error: is_unavailable(error) or is_unexpected(error),
            error_message=UNEXPECTED_MESSAGE,
        )

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return unavailable_error(error) if is_unavailable(error) else super().anonymise_error(error)


# Built once, so the validation cache can recognise the same rule set on every request
# (QueryDepthLimiter and MaxAliasesLimiter would build new rule classes per request).
LIMIT_RULES: tuple[type[ASTValidationRule], ...] = (
    RepeatedDirectivesRule,
    MaxDirectivesRule,
    RepeatedFieldsRule,
    NoNulInTextRule,
    depth_validator(MAX_DEPTH, None, None),
    aliases_validator(MAX_ALIASES),
)
CACHE_SIZE = 512


class LimitsFirst(SchemaExtension):
    """Puts the limit rules before the standard ones, so a rule that stops validation stops it
    before the standard rules have reported the same flood on the same node."""

    def on_operation(self) -> Iterator[None]:
        self.execution_context.validation_rules = LIMIT_RULES + tuple(self.execution_context.validation_rules)
        yield


def extensions(*, production: bool) -> list[Callable[[], SchemaExtension]]:
    """Factories, so each operation gets fresh extension instances.

    Parsing and validating the same document again costs more than running most queries, so
    both are cached (bounded); the token limit applies at parse time, the rest at validation.
    """
    chosen: list[Callable[[], SchemaExtension]] = [
        partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        partial(ParserCache, maxsize=CACHE_SIZE),
        LimitsFirst,
        partial(ValidationCache, maxsize=CACHE_SIZE),
        NoNulInVariables,
        AnswerErrors,
    ]
    if production:
        chosen.append(DisableIntrospection)
    return chosen
