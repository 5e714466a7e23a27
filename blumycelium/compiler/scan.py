"""What statements bind, read and escape, read from Python's ``ast``.

The rewrite (``rewrite.py``) works on Python's own syntax tree, which the
interpreter parses in a few milliseconds and compiles without generating text
again; the preview reads the libcst tree of the same text (``cstscan.py``
asks it the same questions). Both must answer alike, or a preview would describe a
flow other than the one that runs: ``tests/test_scan_agreement.py`` asks both
about every ``if`` and ``for`` of a corpus of flows.

The questions: which names a block binds (for the ``nonlocal`` declarations
of branch and loop-body functions), which of them a loop carries from one
iteration to the next, and what leaves a block (``return``, ``break``...),
which keeps an ``if`` a Python ``if`` and a ``for`` from fanning out.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_STORING = frozenset({"append", "extend"})


def children(node: ast.AST):
    """The child nodes of ``node`` (``ast.iter_child_nodes``, without the
    context and operator markers, which no question looks at)."""
    for field in child_fields(type(node)):
        value = getattr(node, field, None)
        if isinstance(value, ast.AST):
            yield value
        elif type(value) is list:
            for item in value:
                if isinstance(item, ast.AST):
                    yield item


_FIELDS: dict[type, tuple[str, ...]] = {}
_NOT_CHILDREN = frozenset({"ctx", "op", "ops"})


def child_fields(kind: type) -> tuple[str, ...]:
    """The fields of a node class that may hold nodes (no context or operator
    markers)."""
    fields = _FIELDS.get(kind)
    if fields is None:
        fields = tuple(f for f in kind._fields if f not in _NOT_CHILDREN)
        _FIELDS[kind] = fields
    return fields


# -- what leaves a block -----------------------------------------------------------


def escape_in(statements, loops: int = 0) -> str | None:
    """The first statement kind that leaves the block (inside ``loops``
    loops of its own), or None."""
    for statement in statements:
        found = _escape(statement, loops)
        if found is not None:
            return found
    return None


def _escape(node: ast.AST, loops: int) -> str | None:
    if isinstance(node, _SCOPES):
        return None
    kind = _escape_kind(node, loops)
    if kind is not None:
        return kind
    if isinstance(node, _LOOPS):
        # break and continue in the body leave this loop; in its else block,
        # they leave the loop around it
        return escape_in(node.body, loops + 1) or escape_in(node.orelse, loops)
    for child in children(node):
        found = _escape(child, loops)
        if found is not None:
            return found
    return None


def _escape_kind(node: ast.AST, loops: int) -> str | None:
    if isinstance(node, ast.Return):
        return "return"
    if isinstance(node, ast.Global):
        return "global"
    if isinstance(node, ast.Nonlocal):
        return "nonlocal"
    if isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await)):
        return "yield"
    if isinstance(node, (ast.Break, ast.Continue)) and loops == 0:
        return "break" if isinstance(node, ast.Break) else "continue"
    return None


def elif_of(node: ast.If, lines: list[bytes]) -> ast.If | None:
    """The ``elif`` continuing this ``if``, if it has one (an ``else:``
    holding only an ``if`` reads the same in the tree; the text tells)."""
    if len(node.orelse) != 1 or not isinstance(node.orelse[0], ast.If):
        return None
    inner = node.orelse[0]
    line = lines[inner.lineno - 1]
    return inner if line[inner.col_offset :].startswith(b"elif") else None


def chain(node: ast.If, lines: list[bytes]) -> list[ast.If]:
    """An ``if`` and its ``elif``s, in order."""
    links = [node]
    while (node := elif_of(node, lines)) is not None:
        links.append(node)
    return links


def chain_blocks(node: ast.If, lines: list[bytes]) -> list[list]:
    """The blocks of an if/elif/else chain: each test's body, then the
    ``else`` block (empty when there is none)."""
    links = chain(node, lines)
    return [link.body for link in links] + [links[-1].orelse]


def chain_names(node: ast.If, lines: list[bytes]) -> set[str]:
    """Names the blocks of an if/elif/else chain assign, grown lists too."""
    names: set[str] = set()
    for block in chain_blocks(node, lines):
        names |= assigned_names(block)
    return names


def chain_escape(node: ast.If, lines: list[bytes]) -> str | None:
    """What leaves a block of this if/elif/else chain, if anything does."""
    for block in chain_blocks(node, lines):
        found = escape_in(block)
        if found is not None:
            return found
    return None


# -- what a block binds ----------------------------------------------------------


def assigned_names(statements, count_growth: bool = True) -> set[str]:
    """Names the statements bind (not counting nested functions' and classes'
    bodies), with lists grown by ``name.append(...)``/``name[k] = v`` unless
    ``count_growth`` is False."""
    names: set[str] = set()
    for statement in statements:
        _bound(statement, names, count_growth)
    return names


def bound_names(statements) -> set[str]:
    """Names the statements bind, not counting lists they only grow."""
    return assigned_names(statements, count_growth=False)


def _bound(node: ast.AST, names: set, growth: bool) -> None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(node.name)
        return
    if isinstance(node, (ast.Lambda, *_COMPREHENSIONS)):
        return
    if isinstance(node, ast.Name):
        if not isinstance(node.ctx, ast.Load):
            names.add(node.id)
    elif isinstance(node, ast.Subscript):
        if growth and isinstance(node.ctx, ast.Store | ast.Del):
            if isinstance(node.value, ast.Name):
                names.add(node.value.id)
    elif isinstance(node, ast.alias):
        _import_name(node, names)
    elif isinstance(node, ast.Call):
        grown = _grown_receiver(node)
        if growth and grown is not None:
            names.add(grown)
    elif isinstance(node, ast.ExceptHandler) and node.name:
        names.add(node.name)
    elif isinstance(node, ast.AnnAssign) and node.value is None:
        return  # `x: int` declares, binds nothing
    elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
        names.add(node.name)
    elif isinstance(node, ast.MatchMapping) and node.rest:
        names.add(node.rest)
    for child in children(node):
        _bound(child, names, growth)


def _import_name(alias: ast.alias, names: set) -> None:
    if alias.asname is not None:
        names.add(alias.asname)
    elif alias.name != "*":
        names.add(alias.name.split(".")[0])


def _grown_receiver(call: ast.Call) -> str | None:
    func = call.func
    if (
        isinstance(func, ast.Attribute)
        and func.attr in _STORING
        and isinstance(func.value, ast.Name)
    ):
        return func.value.id
    return None


def local_names(function: ast.FunctionDef) -> set[str]:
    """The names a function binds itself: its parameters and what its body
    assigns, less what it declares global or nonlocal."""
    args = function.args
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    for extra in (args.vararg, args.kwarg):
        if extra is not None:
            names.add(extra.arg)
    names |= bound_names(function.body)
    return names - declared_names(function.body)


def declared_names(statements, kinds=(ast.Global, ast.Nonlocal)) -> set[str]:
    """Names declared ``global`` or ``nonlocal`` (outside nested scopes), or
    only by the declarations of ``kinds``."""
    names: set[str] = set()
    pending = list(statements)
    while pending:
        node = pending.pop()
        if isinstance(node, kinds):
            names.update(node.names)
        elif not isinstance(node, _SCOPES):
            pending.extend(children(node))
    return names


def grown_names(statements) -> set[str]:
    """Lists the statements grow with ``name.append(x)``/``name.extend(x)``,
    or ``name += [x]``."""
    names: set[str] = set()
    pending = list(statements)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.Call):
            grown = _grown_receiver(node)
            if grown is not None:
                names.add(grown)
        elif (
            isinstance(node, ast.AugAssign)
            and isinstance(node.op, ast.Add)
            and isinstance(node.target, ast.Name)
        ):
            names.add(node.target.id)
        pending.extend(children(node))
    return names


def read_names(node: ast.AST) -> set[str]:
    """Names ``node`` reads (not as plain assignment targets, attributes,
    keywords, parameters or as the receiver of ``append``/``extend``). Other
    targets count as read, as the preview counts them (``cstscan.py``)."""
    names: set[str] = set()
    _reads(node, names)
    return names


def _reads(node: ast.AST, names: set) -> None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, *_NOT_READ)):
        return
    if isinstance(node, ast.Name):
        names.add(node.id)
        return
    if isinstance(node, ast.Assign):
        for target in node.targets:
            if not isinstance(target, (ast.Name, ast.Tuple, ast.List)):
                _reads(target, names)
        _reads(node.value, names)
        return
    if isinstance(node, ast.Call) and _grown_receiver(node) is not None:
        for child in (*node.args, *node.keywords):
            _reads(child, names)
        return
    named = _named_in(node)
    if named:
        names.update(named)
    for child in children(node):
        _reads(child, names)


_NOT_READ = (ast.Import, ast.ImportFrom, ast.arguments)


def _named_in(node: ast.AST) -> list[str]:
    """Names a node holds as text, not as Name nodes."""
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return node.names
    if isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
        return [node.name] if node.name else []
    if isinstance(node, ast.MatchMapping):
        return [node.rest] if node.rest else []
    return []


_COMPOUND = (
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.Try,
    ast.With,
    ast.AsyncWith,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Match,
    *([ast.TryStar] if hasattr(ast, "TryStar") else []),  # Python 3.11+
)


@dataclass(frozen=True)
class Questions:
    """What a syntax tree answers about its statements, for the reasoning
    about loops that the rewrite and the preview (``cstscan.py``) share."""

    assigned: Callable  # names statements bind, grown lists included
    bound: Callable  # names statements bind, grown lists not included
    grown: Callable  # lists statements grow
    read: Callable  # names a statement reads
    simple: Callable  # whether a statement is a simple one (no block)
    target_names: Callable  # names a loop target binds, or None


def loop_names_asked(body: list, target, ask: Questions) -> tuple:
    """What a ``for`` body assigns (with the loop's target), the lists it
    grows, and the names it carries from one iteration to the next."""
    targets = set(ask.target_names(target) or ())
    assigned = ask.assigned(body) | targets
    grown = ask.grown(body) & assigned
    # the loop binds its targets afresh before each iteration: never carried;
    # a name only changed in place (out[k] = v) is refused as such, at submit
    changed_in_place = assigned - ask.bound(body) - grown
    carried = _carried(body, assigned, grown, ask) - targets - changed_in_place
    return assigned, grown, carried


def _carried(statements, assigned: set, grown: set, ask: Questions) -> set[str]:
    """Names a loop body reads before assigning them (the previous iteration's
    value), and names it assigns only inside compound statements."""
    carried: set[str] = set()
    seen: set[str] = set()
    for statement in statements:
        carried |= (ask.read(statement) & assigned) - seen - grown
        bound = ask.assigned([statement]) - grown
        if ask.simple(statement):
            seen |= bound
        else:
            carried |= bound - seen
    return carried


def loop_names(node: ast.For) -> tuple[set[str], set[str], set[str]]:
    """``loop_names_asked`` of a ``for`` of Python's tree."""
    return loop_names_asked(node.body, node.target, QUESTIONS)


def fan_out_obstacle(node: ast.For) -> str | None:
    """Why this ``for`` could not fan out over a task result (a key of
    ``branches.FAN_OUT_REFUSALS``), or None."""
    escape = escape_in(node.body)
    if escape is not None:
        return escape
    return "target" if loop_target_names(node.target) is None else None


def loop_target_names(target: ast.AST) -> list[str] | None:
    """The names a ``for`` target binds, when it is names only (one of them
    may be starred: ``first, *rest``)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names = []
        for element in target.elts:
            if isinstance(element, ast.Starred):
                element = element.value
            if not isinstance(element, ast.Name):
                return None
            names.append(element.id)
        return names
    return None


def starred_index(target: ast.AST) -> int:
    """The position of the starred name of a ``for`` target; -1 when none."""
    for index, element in enumerate(getattr(target, "elts", ())):
        if isinstance(element, ast.Starred):
            return index
    return -1


def if_names(node: ast.If, lines: list[bytes]) -> set[str]:
    """Names an ``if`` chain binds (not counting lists it grows)."""
    names: set[str] = set()
    for block in chain_blocks(node, lines):
        names |= bound_names(block)
    return names


def for_names(node: ast.For) -> set[str]:
    """Names a ``for`` binds: its targets and its body's."""
    return bound_names(node.body) | set(loop_target_names(node.target) or ())


QUESTIONS = Questions(
    assigned_names,
    bound_names,
    grown_names,
    read_names,
    lambda statement: not isinstance(statement, _COMPOUND),
    loop_target_names,
)
