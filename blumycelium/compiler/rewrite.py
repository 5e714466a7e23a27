"""Pass 2: rewrite the flow into a function that builds its graph.

Every operation that may touch a deferred value is routed through the
dispatcher in ``runtime.py``, bound in the flow's globals as
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

The flow's own ``def`` loses its decorators, annotations and defaults (the
compiled function takes them from the original one). Each statement of the
result is recorded with its line in the user's file, so that the compiled code
can carry the original line numbers (see ``materialize.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from . import branches, loops
from .cstbuild import (
    OPS,
    atom,
    code_with_lines,
    concatenated_parts,
    keep_parens,
    literal,
    op,
    self_documenting_text,
    strip_parameters,
    thunk,
    unescape_fstring_text,
)
from .diagnostics import register_sites, site_block
from .mutation import MutationGuards, for_names, if_names
from .source import ParsedFlow

_BINARY = {
    cst.Add: "+",
    cst.Subtract: "-",
    cst.Multiply: "*",
    cst.Divide: "/",
    cst.FloorDivide: "//",
    cst.Modulo: "%",
    cst.Power: "**",
    cst.LeftShift: "<<",
    cst.RightShift: ">>",
    cst.BitOr: "|",
    cst.BitXor: "^",
    cst.BitAnd: "&",
    cst.MatrixMultiply: "@",
}
_AUGMENTED = {
    cst.AddAssign: "+=",
    cst.SubtractAssign: "-=",
    cst.MultiplyAssign: "*=",
    cst.DivideAssign: "/=",
    cst.FloorDivideAssign: "//=",
    cst.ModuloAssign: "%=",
    cst.PowerAssign: "**=",
    cst.LeftShiftAssign: "<<=",
    cst.RightShiftAssign: ">>=",
    cst.BitOrAssign: "|=",
    cst.BitXorAssign: "^=",
    cst.BitAndAssign: "&=",
    cst.MatrixMultiplyAssign: "@=",
}
_UNARY = {cst.Minus: "-", cst.Plus: "+", cst.BitInvert: "~", cst.Not: "not"}
_COMPARE = {
    cst.Equal: "==",
    cst.NotEqual: "!=",
    cst.LessThan: "<",
    cst.LessThanEqual: "<=",
    cst.GreaterThan: ">",
    cst.GreaterThanEqual: ">=",
    cst.In: "in",
    cst.NotIn: "not in",
    cst.Is: "is",
    cst.IsNot: "is not",
}
_STRING_NODES = (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)
_LITERAL_NODES = (cst.SimpleString, cst.Integer, cst.Float, cst.Imaginary)


@dataclass
class RewrittenFlow:
    """The rewritten ``def`` as code, its statements' lines in the file, and
    the spans of the call sites its code names by number (ids from
    ``first_site`` on, in order)."""

    code: str
    line_map: dict[int, int]
    first_site: int = 0
    spans: tuple = ()


def rewrite_flow(parsed: ParsedFlow, key: str | None = None) -> RewrittenFlow:
    """Run the rewrite over a parsed (and syntax-checked) flow, its sites in
    the block ``key`` names (see ``diagnostics.site_block``), registered."""
    rewritten = _rewritten(parsed, site_block(key))
    if not register_sites(rewritten.first_site, rewritten.spans):
        rewritten = _rewritten(parsed, site_block(None))  # a block never taken
        register_sites(rewritten.first_site, rewritten.spans)
    return rewritten


def _rewritten(parsed: ParsedFlow, first_site: int) -> RewrittenFlow:
    transformer = FlowTransformer(parsed, first_site)
    module = parsed.module.visit(transformer)
    code, lines = code_with_lines(module, (node for node, _ in transformer.statements))
    return RewrittenFlow(
        code, transformer.line_map(lines), first_site, tuple(transformer.spans)
    )


class FlowTransformer(MutationGuards, cst.CSTTransformer):
    """The rewrite; see the module docstring for what it does to each node."""

    def __init__(self, parsed: ParsedFlow, first_site: int):
        super().__init__()
        self.parsed = parsed
        self.first_site = first_site
        self.spans: list = []  # the call sites, numbered from first_site
        self.targets: set[int] = set()
        self.function_depth = 0
        self.pattern_depth = 0
        self.statements: list[tuple[cst.CSTNode, int]] = []
        self.concatenated: set[int] = set()
        self.elifs: set[int] = set()
        self.frames: list[dict] = []
        self.branch_count = 0
        self.branch_lines: dict[int, int] = {}
        self.comp_fors: dict[int, tuple] = {}
        self.scopes: list[tuple] = []  # see mutation.py
        self.scope_sites: dict[int, cst.Integer] = {}
        self.consumed_generators: set[int] = set()  # f(x for x in ...)

    # -- bookkeeping ---------------------------------------------------------------

    def site(self, node: cst.CSTNode) -> cst.Integer:
        self.spans.append(self.parsed.span(node))
        return cst.Integer(str(self.first_site + len(self.spans) - 1))

    def on_leave(self, original_node, updated_node):
        result = super().on_leave(original_node, updated_node)
        if isinstance(result, cst.FlattenSentinel):
            # the if_stmt or for_stmt call stands for the `if` or the `for`
            call = next(n for n in result.nodes if id(n) in self.branch_lines)
            self.statements.append((call.body[0], self.branch_lines[id(call)]))
        elif isinstance(
            original_node, (cst.BaseSmallStatement, cst.BaseCompoundStatement)
        ):
            line = self.parsed.span(_statement_anchor(original_node)).line
            self.statements.append((_statement_anchor(result), line))
        return result

    def line_map(self, generated: dict[int, int]) -> dict[int, int]:
        """Generated line to original line, from each statement's line in the
        generated code (``generated``, by node id)."""
        mapping = {}
        for node, line in self.statements:
            if id(node) in generated:
                mapping.setdefault(generated[id(node)], line)
        return mapping

    def _skip(self) -> bool:
        return self.pattern_depth > 0

    # -- what is not a value -----------------------------------------------------

    def visit_Import(self, node) -> bool:
        return False

    def visit_ImportFrom(self, node) -> bool:
        return False

    def visit_Annotation(self, node) -> bool:
        return False

    def visit_MatchCase_pattern(self, node) -> None:
        self.pattern_depth += 1

    def leave_MatchCase_pattern(self, node) -> None:
        self.pattern_depth -= 1

    def _mark_target(self, target: cst.CSTNode) -> None:
        self.targets.add(id(target))
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._mark_target(element)
                self._mark_target(element.value)
        elif isinstance(target, cst.StarredElement):
            self._mark_target(target.value)

    def visit_AssignTarget(self, node) -> None:
        self._mark_target(node.target)

    def visit_AnnAssign(self, node) -> None:
        self._mark_target(node.target)

    def visit_AugAssign(self, node) -> None:
        self._mark_target(node.target)

    def visit_For(self, node) -> None:
        self._mark_target(node.target)
        if self.frames:
            self.enter_scope(node, self.site(node.iter), for_names(node))

    def visit_CompFor(self, node) -> None:
        self._mark_target(node.target)

    def visit_AsName(self, node) -> None:
        self._mark_target(node.name)

    def visit_Del(self, node) -> None:
        self._mark_target(node.target)

    def _is_target(self, node) -> bool:
        return id(node) in self.targets

    # -- scopes ---------------------------------------------------------------------

    def visit_FunctionDef(self, node) -> None:
        self.function_depth += 1
        self.frames.append(
            {"names": set(), "globals": set(), "locals": branches.local_names(node)}
        )

    def leave_FunctionDef(self, original_node, updated_node):
        self.function_depth -= 1
        frame = self.frames.pop()
        if frame["names"]:
            body = updated_node.body
            updated_node = updated_node.with_changes(
                body=body.with_changes(
                    body=[*body.body, branches.dead_bindings(frame["names"])]
                )
            )
        if self.function_depth == 0:
            return updated_node.with_changes(
                decorators=[],
                returns=None,
                params=strip_parameters(updated_node.params),
            )
        marker = cst.Decorator(cst.Attribute(cst.Name(OPS), cst.Name("local_function")))
        return updated_node.with_changes(decorators=[marker, *updated_node.decorators])

    def visit_Lambda(self, node) -> None:
        self.function_depth += 1

    def leave_Lambda(self, original_node, updated_node):
        self.function_depth -= 1
        return keep_parens(
            updated_node,
            op("local_function", updated_node.with_changes(lpar=[], rpar=[])),
        )

    def leave_Return(self, original_node, updated_node):
        if self.function_depth != 1:
            return updated_node
        value = updated_node.value or cst.Name("None")
        return updated_node.with_changes(
            value=op("returned", value, self.site(original_node))
        )

    # -- operators ------------------------------------------------------------------

    def leave_BinaryOperation(self, original_node, updated_node):
        if self._skip():
            return updated_node
        symbol = _BINARY[type(updated_node.operator)]
        call = op(
            "binop",
            updated_node.left,
            updated_node.right,
            literal(symbol),
            self.site(original_node),
        )
        return keep_parens(updated_node, call)

    def leave_UnaryOperation(self, original_node, updated_node):
        if self._skip() or isinstance(updated_node.expression, _LITERAL_NODES):
            return updated_node
        symbol = _UNARY[type(updated_node.operator)]
        call = op(
            "unop", updated_node.expression, literal(symbol), self.site(original_node)
        )
        return keep_parens(updated_node, call)

    def leave_BooleanOperation(self, original_node, updated_node):
        symbol = "and" if isinstance(updated_node.operator, cst.And) else "or"
        call = op(
            "boolop",
            updated_node.left,
            thunk(updated_node.right),
            literal(symbol),
            self.site(original_node),
        )
        return keep_parens(updated_node, call)

    def leave_Comparison(self, original_node, updated_node):
        targets = updated_node.comparisons
        site = self.site(original_node)
        if len(targets) == 1:
            call = op(
                "compare",
                updated_node.left,
                targets[0].comparator,
                literal(_COMPARE[type(targets[0].operator)]),
                site,
            )
        else:
            pairs = [
                cst.Tuple(
                    [
                        cst.Element(literal(_COMPARE[type(t.operator)])),
                        cst.Element(thunk(t.comparator)),
                    ]
                )
                for t in targets
            ]
            call = op("compare_chain", updated_node.left, site, *pairs)
        return keep_parens(updated_node, call)

    def leave_IfExp(self, original_node, updated_node):
        call = op(
            "ifexp",
            updated_node.test,
            thunk(updated_node.body),
            thunk(updated_node.orelse),
            self.site(original_node),
        )
        return keep_parens(updated_node, call)

    # -- subscripts, attributes, calls -------------------------------------------

    def leave_Subscript(self, original_node, updated_node):
        if self._skip() or self._is_target(original_node):
            return updated_node
        keys = [self._subscript_key(element) for element in updated_node.slice]
        if any(key is None for key in keys):
            return updated_node
        key = (
            keys[0] if len(keys) == 1 else cst.Tuple([cst.Element(key) for key in keys])
        )
        call = op("getitem", updated_node.value, key, self.site(original_node))
        return keep_parens(updated_node, call)

    def _subscript_key(self, element: cst.SubscriptElement):
        index = element.slice
        if isinstance(index, cst.Index):
            return None if index.star else index.value
        parts = [
            part or cst.Name("None") for part in (index.lower, index.upper, index.step)
        ]
        return op("make_slice", *parts)

    def leave_Attribute(self, original_node, updated_node):
        if self._skip() or self._is_target(original_node):
            return updated_node
        site = self.site(original_node)
        value = updated_node.value
        if self.is_mutating_method(original_node):
            value = self.guarded_root(value, site)
        call = op("attribute", value, literal(updated_node.attr.value), site)
        return keep_parens(updated_node, call)

    def visit_Call(self, node) -> None:
        if len(node.args) == 1 and isinstance(node.args[0].value, cst.GeneratorExp):
            self.consumed_generators.add(id(node.args[0].value))

    def leave_Call(self, original_node, updated_node):
        if self._skip():
            return updated_node
        site = self.site(original_node)
        args = [self._call_argument(arg, site) for arg in updated_node.args]
        call = op("call", updated_node.func, site)
        call = call.with_changes(args=[*call.args, *args])
        return keep_parens(updated_node, call)

    def _call_argument(self, arg: cst.Arg, site: cst.Integer) -> cst.Arg:
        if arg.star == "*":
            return arg.with_changes(value=op("iterable", arg.value, site))
        if arg.star == "**":
            return arg.with_changes(value=op("mapping", arg.value, site))
        return arg.with_changes(value=atom(arg.value))

    # -- strings and displays ---------------------------------------------------

    def leave_FormattedString(self, original_node, updated_node):
        if id(original_node) in self.concatenated:
            return updated_node  # converted with its whole concatenation
        site = self.site(original_node)
        parts = self._fstring_parts(
            updated_node.parts, original_node.parts, updated_node, site
        )
        return keep_parens(updated_node, op("fstring", site, *parts))

    def _fstring_parts(self, parts, originals, owner, site) -> list:
        """Literal text as str, each replacement field as (value, conversion, spec)."""
        converted = []
        for part, original in zip(parts, originals):
            if isinstance(part, cst.FormattedStringText):
                converted.append(literal(unescape_fstring_text(part.value, owner)))
                continue
            conversion = part.conversion
            if part.equal is not None:
                converted.append(literal(self_documenting_text(original)))
                if conversion is None and part.format_spec is None:
                    conversion = "r"
            spec = cst.Name("None")
            if part.format_spec is not None:
                spec_parts = self._fstring_parts(
                    part.format_spec, original.format_spec, owner, site
                )
                spec = op("fstring", site, *spec_parts)
            converted.append(
                cst.Tuple(
                    [
                        cst.Element(atom(part.expression)),
                        cst.Element(literal(conversion)),
                        cst.Element(spec),
                    ]
                )
            )
        return converted

    def visit_ConcatenatedString(self, node) -> None:
        self.concatenated.update((id(node.left), id(node.right)))

    def leave_ConcatenatedString(self, original_node, updated_node):
        """Implicit concatenation holding f-strings becomes one f-string call."""
        if id(original_node) in self.concatenated:
            return updated_node
        parts = concatenated_parts(updated_node)
        if not any(isinstance(part, cst.FormattedString) for part in parts):
            return updated_node
        site = self.site(original_node)
        converted = []
        for part, original in zip(parts, concatenated_parts(original_node)):
            if isinstance(part, cst.SimpleString):
                converted.append(literal(part.evaluated_value))
            else:
                converted.extend(
                    self._fstring_parts(part.parts, original.parts, part, site)
                )
        return keep_parens(updated_node, op("fstring", site, *converted))

    def leave_Dict(self, original_node, updated_node):
        if self._skip() or all(
            isinstance(element, cst.DictElement)
            and isinstance(element.key, _LITERAL_NODES + (cst.ConcatenatedString,))
            for element in updated_node.elements
        ):
            return updated_node
        items = []
        for element in updated_node.elements:
            key = (
                cst.Attribute(cst.Name(OPS), cst.Name("SPREAD"))
                if isinstance(element, cst.StarredDictElement)
                else element.key
            )
            items.append(cst.Tuple([cst.Element(key), cst.Element(element.value)]))
        call = op("dict_display", self.site(original_node), *items)
        return keep_parens(updated_node, call)

    def leave_StarredElement(self, original_node, updated_node):
        if self._skip() or self._is_target(original_node):
            return updated_node
        return updated_node.with_changes(
            value=op("iterable", updated_node.value, self.site(original_node))
        )

    # -- statements -----------------------------------------------------------------

    def visit_If(self, node) -> None:
        if isinstance(node.orelse, cst.If):
            self.elifs.add(id(node.orelse))
        if self.frames:
            self.enter_scope(node, self.site(node.test), if_names(node))

    def leave_If(self, original_node, updated_node):
        self.leave_scope(original_node)
        if id(original_node) in self.elifs or not self.frames:
            return updated_node  # converted with its `if`, or the source wrapper
        converted = self._convert_if(original_node, updated_node)
        if isinstance(converted, list):
            return cst.FlattenSentinel(converted)
        return converted

    def _convert_if(self, original, updated):
        """Branch functions and an ``if_stmt`` call (see branches.py), or the
        ``if`` itself with a static-only test when a branch escapes."""
        escape = branches.chain_escape(original)
        if escape is not None:
            return self._static_if(original, updated, escape)
        self.branch_count += 1
        number = self.branch_count
        frame = self.frames[-1]
        names = sorted(
            n
            for n in branches.chain_names(original)
            if n in frame["locals"] or n in frame["globals"]
        )
        frame["names"].update(n for n in names if n not in frame["globals"])
        else_body = []
        if isinstance(updated.orelse, cst.Else):
            else_body = list(updated.orelse.body.body)
        elif isinstance(updated.orelse, cst.If):
            else_body = self._convert_if(original.orelse, updated.orelse)
            if not isinstance(else_body, list):
                else_body = [else_body]
        globals_ = frame["globals"]
        statements = [
            branches.branch_function(
                "__bm_then_%d" % number, list(updated.body.body), names, globals_
            ),
            branches.branch_function(
                "__bm_else_%d" % number, else_body, names, globals_
            ),
        ]
        definitions, state = branches.state_plumbing(number, names, globals_)
        statements += definitions
        call = op(
            "if_stmt",
            updated.test,
            cst.Name("__bm_then_%d" % number),
            cst.Name("__bm_else_%d" % number),
            *state,
            self.scope_site(original) or self.site(original.test),
        )
        statements.append(cst.SimpleStatementLine([cst.Expr(call)]))
        self.branch_lines[id(statements[-1])] = self.parsed.span(original).line
        return statements

    def _static_if(self, original, updated, escape: str):
        test = op(
            "test",
            updated.test,
            self.site(original.test),
            literal("if"),
            literal(escape),
        )
        orelse = updated.orelse
        if isinstance(orelse, cst.If):
            orelse = self._static_if(original.orelse, orelse, escape)
        return updated.with_changes(test=test, orelse=orelse)

    def _is_local(self, name: str) -> bool:
        """A name bound by the function being rewritten (so rebinding it there
        is what the source means); globals and closure names are not."""
        return bool(self.frames) and name in self.frames[-1]["locals"]

    def visit_Global(self, node) -> None:
        if self.frames:
            self.frames[-1]["globals"].update(item.name.value for item in node.names)

    def leave_While(self, original_node, updated_node):
        return updated_node.with_changes(
            test=op(
                "test",
                updated_node.test,
                self.site(original_node.test),
                literal("while"),
            )
        )

    def leave_Assert(self, original_node, updated_node):
        return updated_node.with_changes(
            test=op(
                "test",
                updated_node.test,
                self.site(original_node.test),
                literal("assert"),
            )
        )

    def leave_For(self, original_node, updated_node):
        self.leave_scope(original_node)
        reason = branches.fan_out_obstacle(original_node)
        if reason is not None or not self.frames:
            return updated_node.with_changes(
                iter=op(
                    "iterate",
                    updated_node.iter,
                    self.site(original_node.iter),
                    literal(reason or ""),
                )
            )
        targets = branches.loop_target_names(original_node.target)
        return cst.FlattenSentinel(
            loops.convert_for(self, original_node, updated_node, targets)
        )

    def leave_CompFor(self, original_node, updated_node):
        ifs = [
            condition.with_changes(
                test=op("test", condition.test, self.site(original.test), literal("if"))
            )
            for condition, original in zip(updated_node.ifs, original_node.ifs)
        ]
        result = updated_node.with_changes(
            ifs=ifs,
            iter=op(
                "iterate",
                updated_node.iter,
                self.site(original_node.iter),
                literal("comprehension"),
            ),
        )
        self.comp_fors[id(result)] = (original_node, updated_node)
        return result

    def leave_ListComp(self, original_node, updated_node):
        return self._comprehension(updated_node, pairs=False)

    def leave_GeneratorExp(self, original_node, updated_node):
        consumed = id(original_node) in self.consumed_generators
        generator = "consumed" if consumed else "kept"
        return self._comprehension(updated_node, pairs=False, generator=generator)

    def leave_DictComp(self, original_node, updated_node):
        return self._comprehension(updated_node, pairs=True)

    def _comprehension(self, updated_node, pairs: bool, generator: str = ""):
        """Comprehensions in the flow are built by ``comprehension`` calls,
        which fan out over task results (see ``loops.py``)."""
        if self._skip() or not self.frames:
            return updated_node
        converted = loops.convert_comprehension(self, updated_node, pairs, generator)
        if converted is None:
            return updated_node
        return keep_parens(updated_node, converted)

    def leave_Match(self, original_node, updated_node):
        return updated_node.with_changes(
            subject=op(
                "concrete",
                updated_node.subject,
                self.site(original_node.subject),
                literal("`match`"),
            )
        )

    def leave_Expr(self, original_node, updated_node):
        """``name.append(x)`` / ``name.extend(x)`` rebind ``name``, so that a
        branch built on a task result can grow its own copy."""
        call = original_node.value
        if not (
            isinstance(call, cst.Call)
            and isinstance(call.func, cst.Attribute)
            and isinstance(call.func.value, cst.Name)
            and call.func.attr.value in ("append", "extend")
            and len(call.args) == 1
            and not call.args[0].keyword
            and not call.args[0].star
            and not self._skip()
        ):
            return updated_node
        receiver = call.func.value.value
        if not self._is_local(receiver):
            return updated_node
        item = updated_node.value.args[-1].value
        operation = "list_append" if call.func.attr.value == "append" else "list_extend"
        return cst.Assign(
            targets=[cst.AssignTarget(cst.Name(receiver))],
            value=op(operation, cst.Name(receiver), item, self.site(original_node)),
        )

    def leave_Assign(self, original_node, updated_node):
        target = (
            original_node.targets[0].target if len(original_node.targets) == 1 else None
        )
        if (
            isinstance(target, cst.Subscript)
            and isinstance(target.value, cst.Name)
            and len(target.slice) == 1
            and not self._skip()
        ):
            key = self._subscript_key(updated_node.targets[0].target.slice[0])
            if key is not None and self._is_local(target.value.value):
                name = target.value.value
                return cst.Assign(
                    targets=[cst.AssignTarget(cst.Name(name))],
                    value=op(
                        "with_item",
                        self.guarded_root(
                            cst.Name(name), self.site(original_node), loops_only=True
                        ),
                        key,
                        updated_node.value,
                        self.site(original_node),
                    ),
                )
        site = self.site(original_node)
        updated_node = updated_node.with_changes(
            targets=[
                t.with_changes(target=self.guarded_target(t.target, site))
                for t in updated_node.targets
            ]
        )
        return self._unpacking(original_node, updated_node)

    def leave_Del(self, original_node, updated_node):
        site = self.site(original_node)
        return updated_node.with_changes(
            target=self.guarded_target(updated_node.target, site)
        )

    def _unpacking(self, original_node, updated_node):
        if not any(
            isinstance(target.target, (cst.Tuple, cst.List))
            for target in updated_node.targets
        ):
            return updated_node
        return updated_node.with_changes(
            value=op("iterable", updated_node.value, self.site(original_node.value))
        )

    def leave_AugAssign(self, original_node, updated_node):
        symbol = literal(_AUGMENTED[type(updated_node.operator)])
        site = self.site(original_node)
        target = updated_node.target
        if isinstance(target, cst.Subscript):
            keys = [self._subscript_key(element) for element in target.slice]
            if all(key is not None for key in keys):
                key = (
                    keys[0]
                    if len(keys) == 1
                    else cst.Tuple([cst.Element(key) for key in keys])
                )
                return cst.Expr(
                    op(
                        "inplace_item",
                        self.guarded_root(target.value, site),
                        key,
                        updated_node.value,
                        symbol,
                        site,
                    )
                )
        if isinstance(target, cst.Attribute):
            return cst.Expr(
                op(
                    "inplace_attr",
                    self.guarded_root(target.value, site),
                    literal(target.attr.value),
                    updated_node.value,
                    symbol,
                    site,
                )
            )
        if isinstance(target, cst.Name):
            return cst.Assign(
                targets=[cst.AssignTarget(target)],
                value=op("inplace", target, updated_node.value, symbol, site),
            )
        return updated_node

    def _wrap_try_body(self, original_node, updated_node):
        scope = cst.With(
            items=[cst.WithItem(op("try_scope", self.site(original_node)))],
            body=updated_node.body,
        )
        return updated_node.with_changes(body=cst.IndentedBlock(body=[scope]))

    def leave_Try(self, original_node, updated_node):
        return self._wrap_try_body(original_node, updated_node)

    def leave_TryStar(self, original_node, updated_node):
        return self._wrap_try_body(original_node, updated_node)


def _statement_anchor(node: cst.CSTNode) -> cst.CSTNode:
    """The node whose position is the statement's line as ``ast`` counts it."""
    if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        return node.name
    return node
