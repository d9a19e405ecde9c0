"""Which GraphQL documents read only public page data, so their answers may be cached.

A document qualifies when its operation is a query and every field it selects is
``Query.schedulingPage`` or a field of a type reachable from that field's type (the page, its
slots and form fields; not a returning visitor's ``prefill``) or ``__typename``. Those values depend on the page owner's data only,
never on the caller, and every change to that data publishes ``AvailabilityChanged``.
"""

from __future__ import annotations

from collections import OrderedDict

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_abstract_type,
    parse,
    visit,
)

_ROOT_FIELD = "schedulingPage"
# Below the page but about one visitor (a returning visitor's own answers): never kept for others.
_PER_VISITOR = frozenset({"prefill"})
_MAX_REMEMBERED = 1_000


def public_page_fields(schema: GraphQLSchema) -> frozenset[tuple[str, str]]:
    """(type, field) pairs of ``Query.schedulingPage`` and everything reachable below it."""
    query = schema.query_type
    assert query is not None
    allowed = {(query.name, _ROOT_FIELD)}
    pending: list[GraphQLNamedType] = [get_named_type(query.fields[_ROOT_FIELD].type)]
    seen: set[str] = set()
    while pending:
        named = pending.pop()
        if named.name in seen:
            continue
        seen.add(named.name)
        if is_abstract_type(named):
            pending.extend(schema.get_possible_types(named))
        if isinstance(named, GraphQLObjectType):
            for name, definition in named.fields.items():
                if name in _PER_VISITOR:
                    continue
                allowed.add((named.name, name))
                pending.append(get_named_type(definition.type))
    return frozenset(allowed)


class _Checker(Visitor):
    def __init__(self, type_info: TypeInfo, allowed: frozenset[tuple[str, str]]) -> None:
        super().__init__()
        self.type_info = type_info
        self.allowed = allowed
        self.public = True

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
        if node.operation is not OperationType.QUERY:
            self.public = False

    def enter_field(self, node: FieldNode, *_: object) -> None:
        name = node.name.value
        if name == "__typename":
            return
        parent = self.type_info.get_parent_type()
        if parent is None or (parent.name, name) not in self.allowed:
            self.public = False


class PublicDocuments:
    """Remembers the verdict per document text (documents repeat; parsing them again would not)."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self._schema = schema
        self._allowed = public_page_fields(schema)
        self._verdicts: OrderedDict[str, bool] = OrderedDict()

    def is_public(self, query: str) -> bool:
        verdict = self._verdicts.get(query)
        if verdict is None:
            verdict = self._judge(query)
            self._verdicts[query] = verdict
            if len(self._verdicts) > _MAX_REMEMBERED:
                self._verdicts.popitem(last=False)
        return verdict

    def _judge(self, query: str) -> bool:
        try:
            document: DocumentNode = parse(query, max_tokens=2_000)
        except GraphQLError:
            return False
        type_info = TypeInfo(self._schema)
        checker = _Checker(type_info, self._allowed)
        visit(document, TypeInfoVisitor(type_info, checker))
        return checker.public
