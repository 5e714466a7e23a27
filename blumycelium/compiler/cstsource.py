"""A flow's text parsed with libcst, for the preview (``analysis.py``).

libcst keeps every token of the text; its positions are of the dedented text
of :class:`~.source.FlowSource`, and are mapped back to the file here.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import CodeRange
from libcst.metadata.position_provider import PositionProvidingCodegenState

from .diagnostics import SourceSpan, compile_error
from .source import FlowSource


def span_of(source: FlowSource, code_range: CodeRange) -> SourceSpan:
    """Map a libcst range (in the dedented text) to the file."""
    start, end = code_range.start, code_range.end
    return SourceSpan(
        source.file,
        source.first_line + start.line - 1,
        start.column + source.indent,
        source.first_line + end.line - 1,
        end.column + source.indent,
        source.name,
    )


@dataclass
class ParsedFlow:
    """A parsed flow: the module holding its ``def`` and node positions."""

    source: FlowSource
    module: cst.Module
    positions: dict

    @property
    def function(self) -> cst.FunctionDef:
        return flow_definition(self.module)

    def span(self, node: cst.CSTNode) -> SourceSpan:
        return span_of(self.source, self.positions[node])


def flow_definition(module):
    """The flow's def in a parsed module, inside the wrapper ``if`` if any."""
    first = module.body[0] if module.body else None
    if isinstance(first, cst.If) and isinstance(first.body, cst.IndentedBlock):
        first = first.body.body[0] if first.body.body else None
    return first


def parse_flow(source: FlowSource) -> ParsedFlow:
    """Parse the flow text; a syntax error becomes a CompileError."""
    try:
        module = cst.parse_module(source.text)
    except cst.ParserSyntaxError as error:
        line = source.file_line(error.raw_line)
        span = SourceSpan(
            source.file, line, error.raw_column, line, error.raw_column + 1, source.name
        )
        raise compile_error(span, "syntax error: %s" % error.message)
    return ParsedFlow(source, module, node_positions(module))


class _Positions:
    """Where libcst's position-recording code generation leaves positions."""

    def __init__(self):
        self._computed: dict = {}


def node_positions(module: cst.Module) -> dict:
    """Each node's syntactic range (as libcst's PositionProvider gives it),
    from one code generation, without the metadata machinery's extra walk."""
    sink = _Positions()
    state = PositionProvidingCodegenState(
        default_indent=module.default_indent,
        default_newline=module.default_newline,
        provider=sink,
    )
    module._codegen(state)
    return sink._computed
