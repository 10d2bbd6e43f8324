"""Shopify's calculated query cost, computed statically from the query (requested) and from the
response (actual).

The documented rules: scalars and enums cost 0, each object 1, a connection 2 plus its
children multiplied by ``first``/``last``, nested costs multiply, and each mutation field 10.
Edges and page info are part of their connection and cost nothing themselves.
"""
from __future__ import annotations

from typing import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)

MAX_QUERY_COST = 1000
MUTATION_COST = 10
_REQUESTED = object()  # stands for "the data the query could return"


def operation_of(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs (by name, or the only one)."""
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        return next((o for o in ops if o.name and o.name.value == operation_name), None)
    return ops[0] if len(ops) == 1 else None


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    """Named fragments of a document by name."""
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def selected_fields(schema: GraphQLSchema, parent_type, selection_set: SelectionSetNode | None, fragments) -> Iterator[tuple[FieldNode, object]]:
    """Every field node under a selection set (fragments expanded) with its schema definition."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name.startswith("__"):
                continue
            field_def = getattr(parent_type, "fields", {}).get(name)
            if field_def is not None:
                yield selection, field_def
        elif isinstance(selection, InlineFragmentNode):
            target = schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent_type
            yield from selected_fields(schema, target, selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                target = schema.get_type(fragment.type_condition.name.value)
                yield from selected_fields(schema, target, fragment.selection_set, fragments)


def argument_int(field: FieldNode, name: str, variables: dict | None) -> int | None:
    """An integer argument's value, literal or from a variable."""
    for arg in field.arguments or ():
        if arg.name.value != name:
            continue
        if isinstance(arg.value, IntValueNode):
            return int(arg.value.value)
        if isinstance(arg.value, VariableNode):
            value = (variables or {}).get(arg.value.name.value)
            return int(value) if isinstance(value, int) else None
    return None


def argument_list_length(field: FieldNode, name: str, variables: dict | None) -> int | None:
    """How many values a list argument (``nodes(ids:)``) carries."""
    for arg in field.arguments or ():
        if arg.name.value != name:
            continue
        if isinstance(arg.value, ListValueNode):
            return len(arg.value.values)
        if isinstance(arg.value, VariableNode):
            value = (variables or {}).get(arg.value.name.value)
            return len(value) if isinstance(value, list) else None
    return None


def is_connection(named_type) -> bool:
    """Whether a type is a Relay connection (Shopify's cost rules scale those by page size)."""
    return named_type.name.endswith("Connection")


def is_list_type(gtype) -> bool:
    """Whether a field returns a list (of objects, for the cost rules)."""
    while isinstance(gtype, GraphQLNonNull):
        gtype = gtype.of_type
    return isinstance(gtype, GraphQLList)


def _field_cost(schema, field: FieldNode, field_def, fragments, variables, data) -> int:
    named = get_named_type(field_def.type)
    if is_leaf_type(named) or named.name == "PageInfo":
        return 0
    requested = data is _REQUESTED
    if not requested and data is None:
        return 0
    if is_connection(named):
        if requested:
            size = argument_int(field, "first", variables) or argument_int(field, "last", variables) or 1
            return 2 + size * _selection_cost(schema, named, field.selection_set, fragments, variables, _REQUESTED)
        return 2 + _selection_cost(schema, named, field.selection_set, fragments, variables, data)
    own = 0 if named.name.endswith("Edge") else 1
    if is_list_type(field_def.type):
        if requested:
            size = argument_int(field, "first", variables) or argument_list_length(field, "ids", variables) or 1
            return size * (own + _selection_cost(schema, named, field.selection_set, fragments, variables, _REQUESTED))
        return sum(
            own + _selection_cost(schema, named, field.selection_set, fragments, variables, item)
            for item in data or []
            if item is not None
        )
    return own + _selection_cost(schema, named, field.selection_set, fragments, variables, data)


def _selection_cost(schema, parent_type, selection_set, fragments, variables, data) -> int:
    total = 0
    for field, field_def in selected_fields(schema, parent_type, selection_set, fragments):
        if data is _REQUESTED:
            value = _REQUESTED
        else:
            key = field.alias.value if field.alias else field.name.value
            if not isinstance(data, dict) or key not in data:
                continue
            value = data[key]
        total += _field_cost(schema, field, field_def, fragments, variables, value)
    return total


def requested_cost(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None, variables: dict | None) -> int:
    """The cost Shopify charges up front, from the query alone."""
    operation = operation_of(document, operation_name)
    if operation is None:
        return 0
    fragments = fragments_of(document)
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * sum(1 for _ in selected_fields(schema, schema.mutation_type, operation.selection_set, fragments))
    return _selection_cost(schema, schema.query_type, operation.selection_set, fragments, variables, _REQUESTED)


def actual_cost(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None, variables: dict | None, data: dict | None) -> int:
    """The cost of what was actually returned (connections count the records they hold)."""
    operation = operation_of(document, operation_name)
    if operation is None or data is None:
        return 0
    fragments = fragments_of(document)
    if operation.operation == OperationType.MUTATION:
        return requested_cost(schema, document, operation_name, variables)
    return _selection_cost(schema, schema.query_type, operation.selection_set, fragments, variables, data)
