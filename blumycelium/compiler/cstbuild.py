"""Small builders of libcst nodes for the rewritten flow (see ``rewrite.py``)."""

from __future__ import annotations

import libcst as cst
from libcst._nodes.internal import CodegenState  # TODO: public once libcst exports it

OPS = "__blumycelium__"


def op(name: str, *args) -> cst.Call:
    return cst.Call(
        func=cst.Attribute(value=cst.Name(OPS), attr=cst.Name(name)),
        args=[arg if isinstance(arg, cst.Arg) else cst.Arg(atom(arg)) for arg in args],
    )


def atom(expression: cst.BaseExpression) -> cst.BaseExpression:
    """Parenthesize what cannot stand bare as an argument or element: a tuple
    written without parentheses, a generator expression that was a call's only
    argument."""
    if isinstance(expression, (cst.Tuple, cst.GeneratorExp)) and not expression.lpar:
        return expression.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return expression


def literal(value) -> cst.BaseExpression:
    if value is None or isinstance(value, bool):
        return cst.Name(repr(value))
    if isinstance(value, int):
        if value < 0:
            return cst.UnaryOperation(cst.Minus(), cst.Integer(str(-value)))
        return cst.Integer(str(value))
    return cst.SimpleString(repr(value))


def literal_tuple(values) -> cst.Tuple:
    return (
        cst.Tuple([cst.Element(literal(v)) for v in values])
        if values
        else cst.Tuple([], lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    )


def thunk(expression: cst.BaseExpression) -> cst.Lambda:
    return cst.Lambda(params=cst.Parameters(), body=atom(expression))


def keep_parens(original: cst.BaseExpression, replacement: cst.BaseExpression):
    return replacement.with_changes(lpar=original.lpar, rpar=original.rpar)


def code_with_lines(module: cst.Module, nodes) -> tuple[str, dict[int, int]]:
    """The module's code and the line each of ``nodes`` starts on, from one
    code generation (libcst's PositionProvider would generate it again and
    record every node)."""
    state = _LineRecorder(
        default_indent=module.default_indent, default_newline=module.default_newline
    )
    state.wanted = {id(node) for node in nodes}
    module._codegen(state)
    return "".join(state.tokens), state.lines


class _LineRecorder(CodegenState):
    """Counts newlines in the tokens written so far when a wanted node starts."""

    def __init__(self, **options):
        super().__init__(**options)
        self.wanted: set[int] = set()
        self.lines: dict[int, int] = {}
        self.counted = 0
        self.line = 1

    def before_codegen(self, node: cst.CSTNode) -> None:
        if id(node) not in self.wanted:
            return
        for token in self.tokens[self.counted :]:
            self.line += token.count("\n")
        self.counted = len(self.tokens)
        # a compound statement writes its comments and blank lines first
        self.lines[id(node)] = self.line + len(getattr(node, "leading_lines", ()))
