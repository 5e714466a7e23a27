"""The questions of ``scan.py`` asked of libcst's tree, for the preview.

The preview (``analysis.py``) reads a flow with libcst; the rewrite reads
the same text with Python's ``ast`` (``scan.py``). Each must answer alike
about every ``if`` and ``for``: ``tests/test_scan_agreement.py`` checks it.
"""

from __future__ import annotations

import unicodedata

import libcst as cst

from .scan import Questions, loop_names_asked
from .walk import Walker

_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
_LOOPS = (cst.For, cst.While)
_STORING = frozenset({"append", "extend"})


def identifier(name: cst.Name) -> str:
    """The name as Python reads it: NFKC-normalized (``ﬁ`` is ``fi``), as
    Python's own tree has it."""
    value = name.value
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


def escape_in(statements) -> str | None:
    """The first statement kind that leaves the branch, or None."""
    finder = _EscapeFinder()
    for statement in statements:
        finder.walk(statement)
    return finder.found


class _EscapeFinder(Walker):
    def __init__(self):
        self.found: str | None = None
        self.loops = 0

    def on_visit(self, node) -> bool:
        if self.found is not None or isinstance(node, _SCOPES):
            return False
        if isinstance(node, _LOOPS):
            # break and continue in the body leave this loop; in its else
            # block, they leave the loop around it
            self.loops += 1
            self.walk(node.body)
            self.loops -= 1
            if node.orelse is not None:
                self.walk(node.orelse)
            return False
        kind = _escape_kind(node, self.loops)
        if kind is not None:
            self.found = kind
            return False
        return True


def _escape_kind(node, loops: int) -> str | None:
    if isinstance(node, cst.Return):
        return "return"
    if isinstance(node, (cst.Global, cst.Nonlocal)):
        return "global" if isinstance(node, cst.Global) else "nonlocal"
    if isinstance(node, (cst.Yield, cst.Await)):
        return "yield"
    if isinstance(node, (cst.Break, cst.Continue)) and loops == 0:
        return "break" if isinstance(node, cst.Break) else "continue"
    return None


def chain_escape(node: cst.If) -> str | None:
    """What leaves a branch of this if/elif/else chain, if anything does."""
    escape = escape_in(node.body.body)
    if escape is None and isinstance(node.orelse, cst.Else):
        escape = escape_in(node.orelse.body.body)
    elif escape is None and isinstance(node.orelse, cst.If):
        escape = chain_escape(node.orelse)
    return escape


def assigned_names(statements) -> set[str]:
    """Names the statements bind (not counting nested functions and classes'
    bodies), including lists grown with ``name.append(...)``."""
    collector = _AssignedNames()
    for statement in statements:
        collector.walk(statement)
    return collector.names


def bound_names(statements) -> set[str]:
    """Names the statements bind, not counting lists they only grow."""
    collector = _AssignedNames(count_growth=False)
    for statement in statements:
        collector.walk(statement)
    return collector.names


class _AssignedNames(Walker):
    def __init__(self, count_growth: bool = True):
        self.names: set[str] = set()
        self.count_growth = count_growth

    def _targets(self, target) -> None:
        if isinstance(target, cst.Name):
            self.names.add(identifier(target))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._targets(element.value)
        elif isinstance(target, cst.StarredElement):
            self._targets(target.value)
        elif (
            self.count_growth
            and isinstance(target, cst.Subscript)
            and isinstance(target.value, cst.Name)
        ):
            self.names.add(identifier(target.value))

    def visit_AssignTarget(self, node) -> None:
        self._targets(node.target)

    def visit_AnnAssign(self, node) -> None:
        if node.value is not None:
            self._targets(node.target)

    def visit_AugAssign(self, node) -> None:
        self._targets(node.target)

    def visit_For(self, node) -> None:
        self._targets(node.target)

    def visit_AsName(self, node) -> None:
        self._targets(node.name)

    def visit_Del(self, node) -> None:
        self._targets(node.target)

    def visit_MatchAs(self, node) -> None:
        if node.name is not None:
            self.names.add(identifier(node.name))

    def visit_MatchStar(self, node) -> None:
        if node.name is not None:
            self.names.add(identifier(node.name))

    def visit_MatchMapping(self, node) -> None:
        if node.rest is not None:
            self.names.add(identifier(node.rest))

    def visit_ImportAlias(self, node) -> None:
        if node.asname is None:
            self.names.add(cst.Module([]).code_for_node(node.name).split(".")[0])

    def visit_FunctionDef(self, node) -> bool:
        self.names.add(identifier(node.name))
        return False

    def visit_ClassDef(self, node) -> bool:
        self.names.add(identifier(node.name))
        return False

    def visit_Lambda(self, node) -> bool:
        return False

    def visit_CompFor(self, node) -> bool:
        return False

    def visit_Call(self, node) -> None:
        func = node.func
        if (
            self.count_growth
            and isinstance(func, cst.Attribute)
            and func.attr.value in _STORING
            and isinstance(func.value, cst.Name)
        ):
            self.names.add(identifier(func.value))


def grown_names(statements) -> set[str]:
    """Lists the statements grow with ``name.append(x)`` / ``name.extend(x)``."""
    collector = _Grown()
    for statement in statements:
        collector.walk(statement)
    return collector.names


class _Grown(Walker):
    def __init__(self):
        self.names: set[str] = set()

    def visit_FunctionDef(self, node) -> bool:
        return False

    def visit_Call(self, node) -> None:
        func = node.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in _STORING
            and isinstance(func.value, cst.Name)
        ):
            self.names.add(identifier(func.value))

    def visit_AugAssign(self, node) -> None:
        if isinstance(node.operator, cst.AddAssign) and isinstance(
            node.target, cst.Name
        ):
            self.names.add(identifier(node.target))  # out += [x] grows out too


def read_names(node) -> set[str]:
    """Names ``node`` reads (not as targets, attributes, keywords or as the
    receiver of ``append``/``extend``)."""
    reader = _Reads()
    reader.walk(node)
    return reader.names


class _Reads(Walker):
    def __init__(self):
        self.names: set[str] = set()

    def visit_Name(self, node) -> None:
        self.names.add(identifier(node))

    def visit_Attribute(self, node) -> bool:
        self.walk(node.value)
        return False

    def visit_Arg(self, node) -> bool:
        self.walk(node.value)
        return False

    def visit_AssignTarget(self, node) -> bool:
        if not isinstance(node.target, (cst.Name, cst.Tuple, cst.List)):
            self.walk(node.target)
        return False

    def visit_Call(self, node) -> bool:
        func = node.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value in _STORING
            and isinstance(func.value, cst.Name)
        ):
            for arg in node.args:
                self.walk(arg)
            return False
        return True

    def visit_FunctionDef(self, node) -> bool:
        return False

    def visit_Param(self, node) -> bool:
        return False

    def visit_Import(self, node) -> bool:
        return False

    def visit_ImportFrom(self, node) -> bool:
        return False


def loop_names(node: cst.For) -> tuple[set[str], set[str], set[str]]:
    """``scan.loop_names_asked`` of a ``for`` of libcst's tree, each of the
    statements of a line (``a = 1; b = a``) on its own, as Python runs them."""
    body = []
    for statement in node.body.body:
        if isinstance(statement, cst.SimpleStatementLine):
            body += statement.body
        else:
            body.append(statement)
    return loop_names_asked(body, node.target, QUESTIONS)


def for_names(node: cst.For) -> set[str]:
    """Names a ``for`` binds: its targets and its body's."""
    return bound_names(node.body.body) | set(loop_target_names(node.target) or ())


def fan_out_obstacle(node: cst.For) -> str | None:
    """Why this ``for`` could not fan out over a task result (a key of
    :data:`FAN_OUT_REFUSALS`), or None."""
    escape = escape_in(node.body.body)
    if escape is not None:
        return escape
    return "target" if loop_target_names(node.target) is None else None


def loop_target_names(target) -> list[str] | None:
    """The names a ``for`` target binds, when it is names only (one of them
    may be starred: ``first, *rest``)."""
    if isinstance(target, cst.Name):
        return [identifier(target)]
    if isinstance(target, (cst.Tuple, cst.List)):
        names = []
        for element in target.elements:
            if not isinstance(element.value, cst.Name):
                return None
            names.append(identifier(element.value))
        return names
    return None


QUESTIONS = Questions(
    assigned_names,
    bound_names,
    grown_names,
    read_names,
    lambda statement: isinstance(statement, cst.BaseSmallStatement),
    loop_target_names,
)
