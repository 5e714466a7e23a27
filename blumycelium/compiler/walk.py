"""A read-only walk over libcst trees, for the passes that only look.

``node.visit(visitor)`` in libcst rebuilds every node it passes (a visitor and
a transformer share one traversal), which made looking at a flow cost as much
as rewriting it. :class:`Walker` keeps libcst's protocol (``on_visit``,
``visit_<Node>`` returning False to skip the children, ``leave_<Node>``,
``on_leave``) and only reads: children are taken from the node's fields,
leaving out whitespace, parentheses and separators, which no pass inspects.
"""

from __future__ import annotations

import dataclasses

import libcst as cst

_NOT_VISITED = frozenset(
    "lpar rpar leading_lines lines_after_decorators comma semicolon header"
    " footer".split()
)
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(kind: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        fields = tuple(
            field.name
            for field in dataclasses.fields(kind)
            if field.name not in _NOT_VISITED and "whitespace" not in field.name
        )
        _CHILD_FIELDS[kind] = fields
    return fields


class Walker:
    """Subclass and define ``visit_<Node>``/``leave_<Node>``; call :meth:`walk`."""

    def walk(self, node: cst.CSTNode) -> None:
        if self.on_visit(node) is False:
            return
        for name in _child_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                self.walk(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, cst.CSTNode):
                        self.walk(item)
        self.on_leave(node)

    def walk_all(self, nodes) -> None:
        for node in nodes:
            self.walk(node)

    def on_visit(self, node: cst.CSTNode) -> bool:
        visit = getattr(self, "visit_" + type(node).__name__, None)
        return visit is None or visit(node) is not False

    def on_leave(self, node: cst.CSTNode) -> None:
        leave = getattr(self, "leave_" + type(node).__name__, None)
        if leave is not None:
            leave(node)
