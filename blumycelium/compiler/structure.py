"""What the preview shows of a flow: task and expression nodes, the edges
that carry values between them, and the regions (loops, conditions, fan-outs)
that enclose them. ``analysis.py`` builds it from the source; ``render.py``
draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from .diagnostics import Diagnostic


@dataclass
class Node:
    id: str
    kind: str  # "task", "expression", "flow" (another flow called) or "return"
    label: str
    line: int
    column: int
    region: str | None
    elf_uid: str | None = None
    elf_class: str | None = None
    task: str | None = None
    guard: str | None = None  # why the job may be skipped, when it may


@dataclass
class Edge:
    source: str
    target: str
    key: str | None = None
    parameter: str | None = None
    kind: str = "data"  # "data" or "after"

    def label(self) -> str:
        parts = []
        if self.key is not None:
            parts.append("[%r]" % self.key)
        if self.parameter:
            parts.append(self.parameter)
        if self.kind == "after":
            parts.append("after")
        return " → ".join(parts)


@dataclass
class Region:
    id: str
    # "loop", "condition", "else" (decided when the flow is called), "guarded",
    # "guarded_else" (decided by a task result), "after", "try", "function",
    # "case"
    kind: str
    label: str
    line: int
    parent: str | None


@dataclass
class FlowStructure:
    name: str
    file: str
    line: int
    parameters: list[str]
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)


@dataclass(frozen=True)
class Flowing:
    """What an expression's value may come from.

    ``compound``: computed from its sources (an expression node once handed
    on); ``container``: a static list or dict whose items may be results.
    """

    sources: frozenset = frozenset()
    compound: bool = False
    container: bool = False

    @property
    def deferred(self) -> bool:
        return bool(self.sources)

    @property
    def is_result(self) -> bool:
        """A value known only at run time (not a container that holds some)."""
        return self.deferred and not self.container

    def union(self, other: Flowing) -> Flowing:
        return Flowing(self.sources | other.sources, True)

    def merge(self, other: Flowing) -> Flowing:
        """Either value (after branches or loop iterations). A container
        merged with a static value (the empty list it started as) stays a
        container."""
        return Flowing(
            self.sources | other.sources,
            self.compound or other.compound,
            (self.container or other.container)
            and (self.container or not self.sources)
            and (other.container or not other.sources),
        )


STATIC = Flowing()


def ordered(sources) -> list:
    """Sources in a stable order (node kind and number, then key)."""
    return sorted(
        sources,
        key=lambda s: (
            s[0][0],
            int(s[0][1:] or 0) if s[0][1:].isdigit() else 0,
            s[1] or "",
        ),
    )


def merge(first: dict, second: dict) -> dict:
    merged = dict(first)
    for name, flowing in second.items():
        merged[name] = merged[name].merge(flowing) if name in merged else flowing
    return merged


def structural(name: str, values: list) -> Flowing:
    """Builtins that rearrange a container without reading the results in it."""
    if name == "len":
        return STATIC
    sources = frozenset()
    for value in values:
        sources |= value.sources
    return Flowing(sources, False, True) if sources else STATIC


def target_names(target) -> list:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [
            name for element in target.elements for name in target_names(element.value)
        ]
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    return []


def constant_key(node: cst.Subscript):
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return None
    value = node.slice[0].slice.value
    if isinstance(value, (cst.SimpleString, cst.ConcatenatedString)):
        key = value.evaluated_value
        return key if isinstance(key, str) else None
    return None


def sub_expressions(node: cst.CSTNode) -> list:
    """The expressions directly inside ``node`` (through Arg, Element and so on)."""
    found = []
    for child in node.children:
        if isinstance(child, cst.BaseExpression):
            found.append(child)
        elif not isinstance(child, (cst.BaseParenthesizableWhitespace, cst.BaseSuite)):
            found.extend(sub_expressions(child))
    return found
