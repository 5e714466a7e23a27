"""Reading a flow's source and parsing it with positions mapped to its file.

A flow is compiled from the text of its ``def`` as it stands in its file
(``inspect.getsourcelines``). The text is dedented when the flow is defined
inside a class or function; :class:`FlowSource` keeps the file, the first line
and the indentation so that every position libcst reports can be turned back
into the line and column the user sees in the editor.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import textwrap
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import CodeRange
from libcst.metadata.position_provider import PositionProvidingCodegenState

from ..errors import CompileError
from .diagnostics import Diagnostic, SourceSpan


@dataclass
class FlowSource:
    """The text of one flow function and where it sits in its file."""

    name: str
    file: str
    first_line: int
    indent: int
    text: str

    @functools.cached_property
    def revision(self) -> str:
        """Which flow this is, as written: its text and its file (two modules
        holding the same text hold two flows)."""
        digest = hashlib.sha256(self.text.encode("utf-8", "surrogatepass"))
        digest.update(
            b"\0" + os.path.realpath(self.file).encode("utf-8", "surrogateescape")
        )
        return digest.hexdigest()[:20]

    def span(self, code_range: CodeRange) -> SourceSpan:
        """Map a libcst range (in the dedented text) to the file."""
        start, end = code_range.start, code_range.end
        return SourceSpan(
            self.file,
            self.first_line + start.line - 1,
            start.column + self.indent,
            self.first_line + end.line - 1,
            end.column + self.indent,
            self.name,
        )

    def file_line(self, text_line: int) -> int:
        return self.first_line + text_line - 1


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
        return self.source.span(self.positions[node])


WRAPPER = "if True:\n"


def flow_definition(module):
    """The flow's def in a parsed module, inside the wrapper ``if`` if any."""
    first = module.body[0] if module.body else None
    if isinstance(first, cst.If) and isinstance(first.body, cst.IndentedBlock):
        first = first.body.body[0] if first.body.body else None
    return first


def read_flow_source(function) -> FlowSource:
    """Read the source of ``function``; refuse flows that have no file."""
    name = getattr(function, "__qualname__", repr(function))
    if not inspect.isfunction(function):
        raise CompileError(
            [
                Diagnostic(
                    SourceSpan(_file_of(function), 0, 0, 0, 0, name),
                    "a flow must be a function defined with def, found %s"
                    % type(function).__name__,
                    "put the flow decorator on the def itself, with no other decorator",
                )
            ]
        )
    try:
        file = inspect.getsourcefile(function) or inspect.getfile(function)
        lines, first_line = inspect.getsourcelines(function)
    except (OSError, TypeError) as error:
        raise CompileError(
            [
                Diagnostic(
                    SourceSpan(_file_of(function), 0, 0, 0, 0, name),
                    "the source of flow %r cannot be read (%s)" % (name, error),
                    "define flows in a .py file: a flow is compiled from its"
                    " source, which the interactive prompt and exec() do not"
                    " keep",
                )
            ]
        ) from None
    raw = "".join(lines)
    text = textwrap.dedent(raw)
    if text[:1].isspace():
        # A multi-line string less indented than the def: dedent removed
        # nothing, and the text cannot be dedented without changing it. Parse
        # it inside an `if` instead, keeping every column.
        return FlowSource(function.__name__, file, first_line - 1, 0, WRAPPER + raw)
    indent = _first_indent(raw) - _first_indent(text)
    return FlowSource(function.__name__, file, first_line, indent, text)


def parse_flow(source: FlowSource) -> ParsedFlow:
    """Parse the flow text; a syntax error becomes a CompileError."""
    try:
        module = cst.parse_module(source.text)
    except cst.ParserSyntaxError as error:
        line = source.file_line(error.raw_line)
        span = SourceSpan(
            source.file, line, error.raw_column, line, error.raw_column + 1, source.name
        )
        raise CompileError([Diagnostic(span, "syntax error: %s" % error.message)])
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


def _first_indent(text: str) -> int:
    for line in text.splitlines():
        if line.strip():
            return len(line) - len(line.lstrip())
    return 0


def _file_of(function) -> str:
    code = getattr(function, "__code__", None)
    return code.co_filename if code else "<unknown>"
