"""Pass 2: rewrite the flow into a function that builds its graph.

Every operation that may touch a deferred value is routed through the
dispatcher (``ops.py``: ``runtime.py``, ``calls.py``, ``control.py``,
``fanout.py``), bound in the flow's globals as
``__blumycelium__`` (see :data:`OPS`)::

    ret["value"].upper() + "!"
    # becomes
    __blumycelium__.binop(__blumycelium__.call(__blumycelium__.attribute(
        __blumycelium__.getitem(ret, 'value', 3), 'upper', 4), 5), '!', '+', 6)

Operands keep Python's evaluation order; the right operand of ``and``/``or``
and the branches of a conditional expression become lambdas so that they are
evaluated only when Python would evaluate them. ``if``/``while`` tests, ``for``
iterables, unpacking and ``match`` subjects are wrapped in checks that refuse
deferred values. Assignment targets, imports, annotations and ``match``
patterns are left alone: they are not values. Nested functions and lambdas
are rewritten too and marked, so calling them with deferred values is fine.

The rewrite works on Python's own syntax tree (``source.parse_flow_tree``):
the interpreter parses and compiles it in milliseconds, and every node built
here takes the position of the node it stands for, so the compiled code
carries the user's lines and columns (see ``materialize.py``). The flow's own
``def`` loses its decorators, annotations and defaults (the compiled function
takes them from the original one).
"""

from __future__ import annotations

import ast
import contextlib
import functools
from dataclasses import dataclass

from . import scan
from .astbuild import (
    assign,
    branch_function,
    dead_bindings,
    expression_statement,
    literal,
    name,
    op,
    ops_attribute,
    place,
    state_plumbing,
    strip_parameters,
    thunk,
    tuple_of,
)
from .diagnostics import new_site_block, register_sites
from .loops import convert_comprehension, convert_for
from .mutation import MutationGuards
from .source import FlowTree

_BINARY = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.MatMult: "@",
}
_UNARY = {ast.USub: "-", ast.UAdd: "+", ast.Invert: "~", ast.Not: "not"}
_COMPARE = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_GROWING = {"append": "list_append", "extend": "list_extend"}


@dataclass
class RewrittenFlow:
    """The rewritten ``def`` (a module holding it); its call sites, which its
    code names by number, are registered (``diagnostics.site``)."""

    tree: ast.Module

    @functools.cached_property
    def code(self) -> str:
        """The rewritten function as text, for debugging."""
        return ast.unparse(self.tree)


def rewrite_flow(parsed: FlowTree) -> RewrittenFlow:
    """Run the rewrite over a parsed (and syntax-checked) flow; its sites are
    registered under a block of ids of their own."""
    transformer = FlowTransformer(parsed, new_site_block())
    transformer.visit_list(parsed.module.body)
    register_sites(transformer.first_site, tuple(transformer.spans))
    return RewrittenFlow(parsed.module)


def is_plain_literal(node: ast.AST) -> bool:
    """A number, string or bytes written as such (not True, None or ...)."""
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (str, bytes, int, float, complex))
        and not isinstance(node.value, bool)
    )


class Visitor:
    """A transformer over ``ast`` that visits only the fields holding nodes
    (``ast.NodeTransformer`` looks at every field of every node); a
    ``visit_<Node>`` returns the node's replacement, or a list of statements."""

    _methods: dict = {}

    def visit(self, node: ast.AST):
        method = self._methods.get(type(node))
        if method is None:
            method = getattr(type(self), "visit_" + type(node).__name__, None)
            method = method or type(self).generic_visit
            self._methods[type(node)] = method
        return method(self, node)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for field in scan.child_fields(type(node)):
            value = getattr(node, field, None)
            if isinstance(value, ast.AST):
                setattr(node, field, self.visit(value))
            elif type(value) is list and value:
                self.visit_list(value)
        return node

    def visit_list(self, items: list) -> None:
        result = []
        for item in items:
            if isinstance(item, ast.AST):
                item = self.visit(item)
                if type(item) is list:
                    result.extend(item)
                    continue
            result.append(item)
        items[:] = result


class FlowTransformer(MutationGuards, Visitor):
    """The rewrite; see the module docstring for what it does to each node."""

    _methods: dict = {}

    def __init__(self, parsed: FlowTree, first_site: int):
        self.parsed = parsed
        self.lines = parsed.lines
        self.first_site = first_site
        self.spans: list = []  # the call sites, numbered from first_site
        self.function_depth = 0
        self.frames: list[dict] = []
        self.branch_count = 0
        self.scopes: list[tuple] = []  # see mutation.py
        self.scope_sites: dict[int, ast.Constant] = {}
        self.roots: dict[int, ast.Constant] = {}  # names to guard, see mutation.py

    # -- bookkeeping ---------------------------------------------------------------

    def site(self, node: ast.AST, last: ast.AST | None = None) -> ast.Constant:
        """The id of a new call site at ``node`` (to the end of ``last``)."""
        self.spans.append(self.parsed.span(node, last))
        return literal(self.first_site + len(self.spans) - 1, place(node))

    @contextlib.contextmanager
    def _generated(self, converted: bool):
        """Statements visited inside make a branch or loop-body function."""
        frame = self.frames[-1]
        frame["generated"] += converted
        try:
            yield
        finally:
            frame["generated"] -= converted

    def _is_local(self, identifier: str) -> bool:
        """A name bound by the function being rewritten (so rebinding it there
        is what the source means); globals and closure names are not."""
        return bool(self.frames) and identifier in self.frames[-1]["locals"]

    # -- what is not a value -------------------------------------------------------

    def visit_Import(self, node):
        return node

    def visit_ImportFrom(self, node):
        return node

    def visit_arg(self, node):
        return node  # its annotation is not a value of the flow

    def visit_arguments(self, node):
        self.visit_list(node.defaults)
        self.visit_list(node.kw_defaults)
        return node

    def visit_AnnAssign(self, node):
        """``x: T = v`` is ``x = v``: in a function Python evaluates no
        annotation of an assignment, and a branch or loop-body function
        declares ``x`` nonlocal, which an annotated name cannot be. ``x: T``
        alone stays (it makes ``x`` local), except in such a function;
        ``d[k]: T`` and ``o.a: T`` evaluate what their target is made of."""
        at = place(node)
        if node.value is not None:
            return self.visit(ast.Assign([node.target], node.value, **at))
        target = node.target
        if isinstance(target, ast.Name):
            return ast.Pass(**at) if self.frames[-1]["generated"] else node
        parts = [target.value]
        if isinstance(target, ast.Subscript):
            index = target.slice
            if isinstance(index, ast.Slice):
                parts += [p for p in (index.lower, index.upper, index.step) if p]
            else:
                parts.append(index)
        return self.visit(expression_statement(tuple_of(parts, at), at))

    def visit_match_case(self, node):
        if node.guard is not None:
            node.guard = self.visit(node.guard)
        self.visit_list(node.body)
        return node

    def visit_Global(self, node):
        if self.frames:
            self.frames[-1]["globals"].update(node.names)
        return node

    # -- scopes --------------------------------------------------------------------

    def visit_FunctionDef(self, node):
        top = self.function_depth == 0
        if top:
            node.decorator_list = []
            node.returns = None
            strip_parameters(node.args)
        else:
            self.visit_list(node.decorator_list)
            self.visit(node.args)
        self.function_depth += 1
        self.frames.append(
            {
                "names": set(),
                "globals": set(),
                "locals": scan.local_names(node)
                | scan.declared_names(node.body, ast.Nonlocal),
                "generated": 0,  # depth of blocks made functions (if, for)
            }
        )
        self.visit_list(node.body)
        self.function_depth -= 1
        frame = self.frames.pop()
        at = place(node)
        if frame["names"]:
            node.body.append(dead_bindings(frame["names"], at))
        if not top:
            node.decorator_list.insert(0, ops_attribute("local_function", at))
        return node

    def visit_Lambda(self, node):
        self.visit(node.args)
        self.function_depth += 1
        node.body = self.visit(node.body)
        self.function_depth -= 1
        return op("local_function", place(node), node)

    def visit_Return(self, node):
        if self.function_depth != 1:
            return self.generic_visit(node)
        at = place(node)
        value = literal(None, at) if node.value is None else self.visit(node.value)
        node.value = op("returned", at, value, self.site(node))
        return node

    # -- operators -----------------------------------------------------------------

    def visit_BinOp(self, node):
        self.generic_visit(node)
        symbol = _BINARY[type(node.op)]
        return op("binop", place(node), node.left, node.right, symbol, self.site(node))

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if is_plain_literal(node.operand):
            return node
        symbol = _UNARY[type(node.op)]
        return op("unop", place(node), node.operand, symbol, self.site(node))

    def visit_BoolOp(self, node):
        """``a and b and c`` reads as ``(a and b) and c``, as libcst has it."""
        symbol = "and" if isinstance(node.op, ast.And) else "or"
        first = node.values[0]
        result = self.visit(first)
        for operand in node.values[1:]:
            site = self.site(first, operand)
            result = op(
                "boolop", place(node), result, thunk(self.visit(operand)), symbol, site
            )
        return result

    def visit_Compare(self, node):
        self.generic_visit(node)
        at = place(node)
        site = self.site(node)
        if len(node.ops) == 1:
            symbol = _COMPARE[type(node.ops[0])]
            return op("compare", at, node.left, node.comparators[0], symbol, site)
        pairs = [
            tuple_of([literal(_COMPARE[type(o)], at), thunk(c)], at)
            for o, c in zip(node.ops, node.comparators)
        ]
        return op("compare_chain", at, node.left, site, *pairs)

    def visit_IfExp(self, node):
        self.generic_visit(node)
        return op(
            "ifexp",
            place(node),
            node.test,
            thunk(node.body),
            thunk(node.orelse),
            self.site(node),
        )

    # -- subscripts, attributes, calls ---------------------------------------------

    def visit_Subscript(self, node):
        self.generic_visit(node)
        if not isinstance(node.ctx, ast.Load):
            return node
        key = self.subscript_key(node.slice)
        if key is None:
            return node
        return op("getitem", place(node), node.value, key, self.site(node))

    def subscript_key(self, index: ast.expr) -> ast.expr | None:
        """The key of a (rewritten) subscript, slices made values; None for a
        starred key, which stays a Python subscript."""
        if isinstance(index, ast.Slice):
            return self._slice(index)
        if isinstance(index, ast.Tuple):
            if any(isinstance(e, ast.Starred) for e in index.elts):
                return None
            index.elts = [
                self._slice(e) if isinstance(e, ast.Slice) else e for e in index.elts
            ]
        return index

    def _slice(self, index: ast.Slice) -> ast.Call:
        at = place(index)
        parts = (index.lower, index.upper, index.step)
        return op("make_slice", at, *(p or literal(None, at) for p in parts))

    def visit_Attribute(self, node):
        if not isinstance(node.ctx, ast.Load):
            return self.generic_visit(node)
        site = self.site(node)
        if self.is_mutating_method(node):
            self.guard_chain(node, site)
        self.generic_visit(node)
        return op("attribute", place(node), node.value, node.attr, site)

    def visit_Name(self, node):
        return self.guarded_name(node)

    def visit_Call(self, node):
        at = _call_place(node)
        func = self.visit(node.func)
        consumed = _generator_arguments(node)
        for holder in (*node.args, *node.keywords):
            if isinstance(holder, (ast.Starred, ast.keyword)):
                holder.value = self._argument(holder.value, consumed)
        node.args = [
            a if isinstance(a, ast.Starred) else self._argument(a, consumed)
            for a in node.args
        ]
        site = self.site(node)
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                argument.value = op("iterable", at, argument.value, site)
        for keyword in node.keywords:
            if keyword.arg is None:
                keyword.value = op("mapping", at, keyword.value, site)
        return op("call", at, func, site, *node.args, keywords=node.keywords)

    def _argument(self, value: ast.expr, consumed: set[int]) -> ast.expr:
        """An argument rewritten; a generator expression given straight to
        the call is consumed by it (see fanout.comprehension)."""
        if id(value) in consumed:
            return self.visit_GeneratorExp(value, consumed=True)
        return self.visit(value)

    # -- strings and displays ------------------------------------------------------

    def visit_JoinedStr(self, node):
        site = self.site(node)
        return op("fstring", place(node), site, *self._fstring_parts(node, site))

    def _fstring_parts(self, node: ast.JoinedStr, site) -> list:
        """Literal text as str, each replacement field as (value, conversion,
        spec); Python's parser has already expanded ``{x=}``."""
        at = place(node)
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(literal(part.value, at))
                continue
            conversion = None if part.conversion == -1 else chr(part.conversion)
            spec = literal(None, at)
            if part.format_spec is not None:
                spec_parts = self._fstring_parts(part.format_spec, site)
                spec = op("fstring", at, site, *spec_parts)
            value = self.visit(part.value)
            parts.append(tuple_of([value, literal(conversion, at), spec], at))
        return parts

    def visit_Dict(self, node):
        self.generic_visit(node)
        if all(key is not None and is_plain_literal(key) for key in node.keys):
            return node
        at = place(node)
        items = [
            tuple_of([ops_attribute("SPREAD", at) if key is None else key, value], at)
            for key, value in zip(node.keys, node.values)
        ]
        return op("dict_display", at, self.site(node), *items)

    def visit_Starred(self, node):
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            node.value = op("iterable", place(node), node.value, self.site(node))
        return node

    # -- comprehensions ------------------------------------------------------------

    def visit_ListComp(self, node):
        return self._comprehension(node, pairs=False)

    def visit_SetComp(self, node):
        self._visit_clauses(node.generators)
        node.elt = self.visit(node.elt)
        self._check_clauses(node.generators)
        return node

    def visit_GeneratorExp(self, node, consumed: bool = False):
        generator = "consumed" if consumed else "kept"
        return self._comprehension(node, pairs=False, generator=generator)

    def visit_DictComp(self, node):
        return self._comprehension(node, pairs=True)

    def _comprehension(self, node, pairs: bool, generator: str = ""):
        """Comprehensions in the flow are built by ``comprehension`` calls,
        which fan out over task results (see ``loops.py``); a clause that
        cannot fan out leaves a Python comprehension, its iterables and
        conditions checked."""
        self._visit_clauses(node.generators)
        if pairs:
            node.key = self.visit(node.key)
            node.value = self.visit(node.value)
        else:
            node.elt = self.visit(node.elt)
        if self.frames:
            converted = convert_comprehension(self, node, pairs, generator)
            if converted is not None:
                return converted
        self._check_clauses(node.generators)
        return node

    def _visit_clauses(self, clauses: list) -> None:
        for clause in clauses:
            clause.original = (clause.iter, list(clause.ifs))
            clause.iter = self.visit(clause.iter)
            self.visit_list(clause.ifs)

    def _check_clauses(self, clauses: list) -> None:
        for clause in clauses:
            iterable, conditions = clause.original
            del clause.original
            clause.iter = op(
                "iterate",
                place(iterable),
                clause.iter,
                self.site(iterable),
                "comprehension",
            )
            clause.ifs = [
                op("test", place(test), rewritten, self.site(test), "if")
                for test, rewritten in zip(conditions, clause.ifs)
            ]

    # -- statements ----------------------------------------------------------------

    def visit_If(self, node):
        if not self.frames:
            return self.generic_visit(node)  # the wrapper of source.read_flow_source
        links = scan.chain(node, self.lines)
        escape = scan.chain_escape(node, self.lines)
        names = {id(link): scan.chain_names(link, self.lines) for link in links}
        tests = {id(link): link.test for link in links}
        with self._generated(escape is None):
            self._visit_chain(links)
        if escape is not None:
            for link in links:
                original = tests[id(link)]
                link.test = op(
                    "test",
                    place(original),
                    link.test,
                    self.site(original),
                    "if",
                    escape,
                )
            return node
        return self._convert_if(links, names)

    def _visit_chain(self, links: list) -> None:
        """Rewrite the tests and blocks of an if/elif chain, each inside the
        scope of its ``if`` (see mutation.py)."""
        for link in links:
            names = scan.if_names(link, self.lines)
            self.enter_scope(link, self.site(link.test), names)
            link.test = self.visit(link.test)
            self.visit_list(link.body)
        self.visit_list(links[-1].orelse)
        for link in reversed(links):
            self.leave_scope(link)

    def _convert_if(self, links: list, names: dict) -> list:
        """Branch functions and an ``if_stmt`` call (see branches.py) for the
        first ``if`` of ``links``, its ``elif``s converted into its else."""
        link = links[0]
        self.branch_count += 1
        number = self.branch_count
        frame = self.frames[-1]
        assigned = sorted(
            n for n in names[id(link)] if n in frame["locals"] or n in frame["globals"]
        )
        frame["names"].update(n for n in assigned if n not in frame["globals"])
        at = place(link)
        if len(links) > 1:
            else_body = self._convert_if(links[1:], names)
        else:
            else_body = link.orelse
        globals_ = frame["globals"]
        statements = [
            branch_function("__bm_then_%d" % number, link.body, assigned, globals_, at),
            branch_function("__bm_else_%d" % number, else_body, assigned, globals_, at),
        ]
        definitions, state = state_plumbing(number, assigned, globals_, at)
        statements += definitions
        then_, else_ = (
            name("__bm_then_%d" % number, at),
            name("__bm_else_%d" % number, at),
        )
        site = self.scope_site(link)  # given when the chain was visited
        call = op("if_stmt", at, link.test, then_, else_, *state, site)
        statements.append(expression_statement(call, at))
        return statements

    def visit_While(self, node):
        return self._checked(node, "test", "test", "while")

    def visit_Assert(self, node):
        return self._checked(node, "test", "test", "assert")

    def _checked(self, node, field: str, check: str, what: str):
        """The node, its ``field`` (rewritten) handed to ``check`` first."""
        original = getattr(node, field)
        self.generic_visit(node)
        value = op(
            check, place(original), getattr(node, field), self.site(original), what
        )
        setattr(node, field, value)
        return node

    def visit_For(self, node):
        reason = scan.fan_out_obstacle(node)
        loop = None if reason is not None else scan.loop_names(node)
        original = node.iter
        self.enter_scope(node, self.site(original), scan.for_names(node))
        node.iter = self.visit(node.iter)
        with self._generated(loop is not None):
            self.visit_list(node.body)
        self.visit_list(node.orelse)
        self.leave_scope(node)
        if loop is None or not self.frames:
            node.iter = op(
                "iterate", place(original), node.iter, self.site(original), reason or ""
            )
            return node
        return convert_for(self, node, loop)

    def visit_Match(self, node):
        return self._checked(node, "subject", "concrete", "`match`")

    def visit_Expr(self, node):
        """``name.append(x)`` / ``name.extend(x)`` rebind ``name``, so that a
        branch built on a task result can grow its own copy."""
        receiver = _growing_receiver(node.value)
        if receiver is None or not self._is_local(receiver):
            return self.generic_visit(node)
        call = node.value
        at = place(node)
        item = self.visit(call.args[0])
        operation = _GROWING[call.func.attr]
        return assign(
            receiver, op(operation, at, name(receiver, at), item, self.site(node)), at
        )

    def visit_Assign(self, node):
        converted = self._assign_item(node)
        if converted is not None:
            return converted
        original = node.value
        site = self.site(node)
        for target in node.targets:
            self.guard_target(target, site)
        self.generic_visit(node)
        if any(isinstance(t, (ast.Tuple, ast.List)) for t in node.targets):
            node.value = op(
                "iterable", place(original), node.value, self.site(original)
            )
        return node

    def _assign_item(self, node) -> ast.Assign | None:
        """``d[k] = v`` on a local ``d`` rebinds ``d`` to a copy holding the
        item (see control.with_item); None for any other assignment."""
        target = node.targets[0] if len(node.targets) == 1 else None
        if not (
            isinstance(target, ast.Subscript)
            and isinstance(target.value, ast.Name)
            and self._is_local(target.value.id)
            and not self._several_keys(target.slice)
            and not isinstance(target.slice, ast.Starred)
        ):
            return None
        value = self.visit(node.value)  # Python evaluates the value first
        target.slice = self.visit(target.slice)
        key = self.subscript_key(target.slice)
        at = place(node)
        variable = target.value.id
        root = self.guarded_root(name(variable, at), self.site(node), loops_only=True)
        arguments = {"value": value, "key": key, "site_id": self.site(node)}
        keywords = [ast.keyword(k, v, **at) for k, v in arguments.items()]
        return assign(variable, op("with_item", at, root, keywords=keywords), at)

    def _several_keys(self, index: ast.expr) -> bool:
        """``x[a, b]`` (a tuple not in parentheses) names several keys: a
        tuple in parentheses ends with one after its last element."""
        if not isinstance(index, ast.Tuple) or not index.elts:
            return False
        last = index.elts[-1]
        end = (index.end_lineno, index.end_col_offset)
        if end == (last.end_lineno, last.end_col_offset):
            return True
        line = self.lines[index.end_lineno - 1]
        return line[index.end_col_offset - 1 : index.end_col_offset] != b")"

    def visit_Delete(self, node):
        site = self.site(node)
        for target in node.targets:
            self.guard_target(target, site)
        return self.generic_visit(node)

    def visit_AugAssign(self, node):
        at = place(node)
        symbol = _AUGMENTED[type(node.op)]
        site = self.site(node)
        target = node.target
        self.guard_target(target, site)
        self.generic_visit(node)
        if isinstance(target, ast.Subscript):
            key = self.subscript_key(target.slice)
            if key is not None:
                root = target.value
                value = _later(node.value)
                call = op("inplace_item", at, root, key, value, symbol, site)
                return expression_statement(call, at)
        if isinstance(target, ast.Attribute):
            root = target.value
            value = _later(node.value)
            call = op("inplace_attr", at, root, target.attr, value, symbol, site)
            return expression_statement(call, at)
        if isinstance(target, ast.Name):
            current = name(target.id, at)
            return assign(
                target.id, op("inplace", at, current, node.value, symbol, site), at
            )
        return node

    def visit_Try(self, node):
        """Task calls in a ``try`` body are refused (their failure would
        happen on a worker, later, past its ``except``): the body begins by
        saying which lines it is (see control.enter_try)."""
        first, last = _first_line(node.body[0]), node.body[-1].end_lineno
        self.generic_visit(node)
        at = place(node)
        call = op("enter_try", dict(at, end_lineno=at["lineno"]), first, last)
        node.body.insert(0, expression_statement(call, at))
        return node

    def visit_TryStar(self, node):
        return self.visit_Try(node)


_AUGMENTED = {kind: symbol + "=" for kind, symbol in _BINARY.items()}


def _later(value: ast.expr) -> ast.expr:
    """``lambda: value``, computed when the runtime asks; a value that yields
    (in a nested generator) is computed now, as a lambda cannot yield."""
    if any(
        isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await)) for n in ast.walk(value)
    ):
        return op("now", place(value), value)
    return thunk(value)


def _first_line(statement: ast.stmt) -> int:
    """The first line of a statement, its decorators included."""
    decorators = getattr(statement, "decorator_list", ())
    return min([statement.lineno, *(d.lineno for d in decorators)])


def _call_place(call: ast.Call) -> dict:
    """Where a call is, for tracebacks: a method call whose ``.name`` is on a
    later line than its object is reported at that line, as Python does."""
    at = place(call)
    func = call.func
    if isinstance(func, ast.Attribute) and func.lineno != func.end_lineno:
        column = func.end_col_offset - len(func.attr.encode("utf-8"))
        at.update(lineno=func.end_lineno, col_offset=column)
    return at


def _generator_arguments(call: ast.Call) -> set[int]:
    """Ids of the generator expressions given straight to the call, as
    arguments, starred or by keyword."""
    consumed = set()
    for holder in (*call.args, *call.keywords):
        value = (
            holder.value if isinstance(holder, (ast.Starred, ast.keyword)) else holder
        )
        if isinstance(value, ast.GeneratorExp):
            consumed.add(id(value))
    return consumed


def _growing_receiver(call: ast.expr) -> str | None:
    """``name`` of a statement ``name.append(x)`` or ``name.extend(x)``."""
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.attr in _GROWING
        and len(call.args) == 1
        and not call.keywords
        and not isinstance(call.args[0], ast.Starred)
    ):
        return None
    return call.func.value.id
