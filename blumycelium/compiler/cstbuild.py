"""Small builders of libcst nodes for the rewritten flow (see ``rewrite.py``)."""

from __future__ import annotations

import ast

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


def strip_parameters(params: cst.Parameters) -> cst.Parameters:
    """A def's parameters without annotations and defaults: the rewritten
    function is given the original's defaults (see materialize)."""

    def strip(param):
        if not isinstance(param, cst.Param):
            return param
        return param.with_changes(
            annotation=None, default=None, equal=cst.MaybeSentinel.DEFAULT
        )

    return params.with_changes(
        params=[strip(p) for p in params.params],
        posonly_params=[strip(p) for p in params.posonly_params],
        kwonly_params=[strip(p) for p in params.kwonly_params],
        star_arg=strip(params.star_arg),
        star_kwarg=strip(params.star_kwarg) if params.star_kwarg else None,
    )


# -- f-strings -----------------------------------------------------------------


def unescape_fstring_text(text: str, owner: cst.FormattedString) -> str:
    """The value of literal f-string text, with its escapes and doubled braces.

    A sentinel closes the text, so text ending in the quote character of a
    triple-quoted f-string still reads as one literal.
    """
    prefix = owner.prefix.lower().replace("f", "")
    quote = owner.quote
    literal = text.replace("{{", "{").replace("}}", "}")
    return ast.literal_eval(prefix + quote + literal + "|" + quote)[:-1]


def self_documenting_text(part: cst.FormattedStringExpression) -> str:
    """The text Python shows for ``{expr=}``: the field as written, up to ``=``."""
    field = part.with_changes(conversion=None, format_spec=None)
    return cst.Module([]).code_for_node(field)[1:-1]


def concatenated_parts(node) -> list:
    """The strings of an implicit concatenation, left to right."""
    if isinstance(node, cst.ConcatenatedString):
        return concatenated_parts(node.left) + concatenated_parts(node.right)
    return [node]
