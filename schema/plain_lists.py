"""Lists of plain-data objects (slots) completed in one pass, without a resolver call per field.

graphql-core completes a list item by item and field by field: a resolver call, a resolve info
and a completion per field, about 5 µs each, so a month of slots costs milliseconds for values
that are only attributes. For the types in ``PLAIN_TYPES`` a list whose items are selected with
leaf fields only (no arguments, ``__typename`` allowed) is turned straight into dicts. The
selection comes from graphql-core's own field collection, so aliases, fragments and
``@include``/``@skip`` mean what they mean on the normal path, and leaves are coerced by the
same ``complete_leaf_value``. Anything else (a null where none may be, a value the scalar refuses,
an item of another class, field middleware, ``@defer``/``@stream``) takes the normal path for
the whole list, which then reports the errors and nulls exactly as it always has.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, NamedTuple

from graphql import (
    GraphQLLeafType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from schema.slot_types import Slot

# Types whose fields are plain attributes; each field is checked again before it is read directly.
PLAIN_TYPES: frozenset[type] = frozenset({Slot})
_BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF


class _Column(NamedTuple):
    """One response key of every item: ``attribute`` None means ``__typename``."""

    key: str
    attribute: str | None
    leaf: GraphQLLeafType | None
    non_null: bool


class PlainListExecution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution, with lists of ``PLAIN_TYPES`` items completed in one pass."""

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: AsyncIterable[Any] | Iterable[Any],
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        rows = self._plain_rows(return_type, field_details_list, path, result)
        if rows is not None:
            return rows
        return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)

    def _plain_rows(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        path: Path,
        result: object,
    ) -> list[dict[str, Any]] | None:
        """The completed list, or None when the normal path must complete it."""
        item_type = get_nullable_type(return_type.of_type)
        if not isinstance(result, list) or not isinstance(item_type, GraphQLObjectType):
            return None
        definition = item_type.extensions.get(_BACKREF)
        if not isinstance(definition, StrawberryObjectDefinition) or definition.origin not in PLAIN_TYPES:
            return None
        manager = self.middleware_manager
        if (manager is not None and manager.middlewares) or self.get_stream_usage(field_details_list, path):
            return None
        columns = self._columns(item_type, field_details_list)
        if columns is None:
            return None
        origin = definition.origin
        rows: list[dict[str, Any]] = []
        for item in result:
            if type(item) is not origin:
                return None
            row: dict[str, Any] = {}
            for key, attribute, leaf, non_null in columns:
                if attribute is None or leaf is None:  # __typename
                    row[key] = item_type.name
                    continue
                value = getattr(item, attribute)
                if value is None:
                    if non_null:
                        return None
                    row[key] = None
                    continue
                try:
                    row[key] = self.complete_leaf_value(leaf, value)
                except Exception:  # the normal path reports it, located, as it always has
                    return None
            rows.append(row)
        return rows

    def _columns(self, item_type: GraphQLObjectType, field_details_list: FieldDetailsList) -> list[_Column] | None:
        """The response keys of each item when every one is a plain leaf field, else None."""
        grouped_field_set, new_defer_usages, _forbidden = self.collect_subfields(item_type, field_details_list)
        if new_defer_usages:
            return None
        columns: list[_Column] = []
        for key, details in grouped_field_set.items():
            node = details[0].node
            if any(detail.defer_usage is not None for detail in details) or node.arguments:
                return None
            name = node.name.value
            if name == "__typename":
                columns.append(_Column(key, None, None, non_null=True))
                continue
            field = item_type.fields.get(name)
            leaf = None if field is None else get_nullable_type(field.type)
            attribute = None if field is None else _plain_attribute(field.extensions.get(_BACKREF))
            if field is None or attribute is None or not is_leaf_type(leaf):
                return None
            columns.append(_Column(key, attribute, leaf, non_null=is_non_null_type(field.type)))
        return columns


def _plain_attribute(field: object) -> str | None:
    """The attribute a strawberry field reads when it is only ``getattr`` (no resolver, no
    permission or other field extension), else None."""
    if isinstance(field, StrawberryField) and field.is_basic_field and field.default_resolver is getattr:
        return field.python_name
    return None
