"""Reading a flow's source and parsing it with positions in its file.

A flow is compiled from the text of its ``def`` as it stands in its file
(``inspect.getsourcelines``). :class:`FlowSource` keeps the file, the first
line and the indentation; the rewrite parses the text where it stands in the
file (:func:`parse_flow_tree`), the preview parses it dedented with libcst
(``cstsource.py``) and maps every position back to the line and column the
user sees in the editor.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import os
import re
import textwrap
from dataclasses import dataclass

from .diagnostics import SourceSpan, compile_error


@dataclass
class FlowSource:
    """The text of one flow function and where it sits in its file."""

    name: str
    file: str
    first_line: int
    indent: int
    text: str
    raw: str = ""  # the text as it stands in the file, not dedented

    @functools.cached_property
    def revision(self) -> str:
        """Which flow this is, as written: its text and its file (two modules
        holding the same text hold two flows)."""
        digest = hashlib.sha256(self.text.encode("utf-8", "surrogatepass"))
        digest.update(
            b"\0" + os.path.realpath(self.file).encode("utf-8", "surrogateescape")
        )
        return digest.hexdigest()[:20]

    @property
    def line(self) -> int:
        """The flow's first line in its file (``first_line`` is the line
        before it when the text is parsed inside a wrapper ``if``)."""
        return self.first_line + 1 if self.text.startswith(WRAPPER) else self.first_line

    def def_span(self) -> SourceSpan:
        """Where the flow begins in its file: one character."""
        column = _first_indent(self.raw) if self.raw else self.indent
        return SourceSpan(
            self.file, self.line, column, self.line, column + 1, self.name
        )

    def file_line(self, text_line: int) -> int:
        return self.first_line + text_line - 1


@dataclass
class FlowTree:
    """A flow parsed by Python's own parser, for the rewrite: its module,
    and its lines as bytes (``ast`` counts columns in UTF-8 bytes). The text
    parsed is the flow as it stands in its file, after blank lines, so that
    every position in the tree is a position in the file."""

    source: FlowSource
    module: ast.Module
    lines: list[bytes]

    @property
    def function(self) -> ast.AST | None:
        body = self.module.body
        first = body[0] if body else None
        if isinstance(first, ast.If):  # the wrapper of an indented flow
            first = first.body[0] if first.body else None
        return first

    def span(self, node: ast.AST, last: ast.AST | None = None) -> SourceSpan:
        """Where ``node`` (up to the end of ``last``) is in the file."""
        last = last or node
        return SourceSpan(
            self.source.file,
            node.lineno,
            self._column(node.lineno, node.col_offset),
            last.end_lineno,
            self._column(last.end_lineno, last.end_col_offset),
            self.source.name,
        )

    def name_span(self, node: ast.AST) -> SourceSpan:
        """Where the name of a ``def`` or ``class`` is (``ast`` keeps only
        where the statement starts): the word after its keyword."""
        keyword = "class" if isinstance(node, ast.ClassDef) else "def"
        text = self.lines[node.lineno - 1].decode("utf-8", "replace")
        start = self._column(node.lineno, node.col_offset)
        found = _NAME_AFTER[keyword].search(text, start)
        if found is None:
            return self.span(node)
        first, last = found.span(1)
        line = node.lineno
        return SourceSpan(self.source.file, line, first, line, last, self.source.name)

    def decorator_span(self, node: ast.AST) -> SourceSpan:
        """Where a decorator is, its ``@`` included."""
        text = self.lines[node.lineno - 1]
        start = text.rfind(b"@", 0, node.col_offset + 1)
        start = node.col_offset if start < 0 else start
        span = self.span(node)
        first = self._column(node.lineno, start)
        return SourceSpan(
            span.file, span.line, first, span.end_line, span.end_column, span.flow
        )

    def source_span(self) -> SourceSpan:
        line = self.source.first_line
        end = self._column(line, len(self.lines[line - 1]))
        return SourceSpan(self.source.file, line, 0, line, end, self.source.name)

    def _column(self, line: int, offset: int) -> int:
        text = self.lines[line - 1]
        if text.isascii():
            return offset
        return len(text[:offset].decode("utf-8", "replace"))


_NAME_AFTER = {
    keyword: re.compile(r"\b%s\s+(\w+)" % keyword) for keyword in ("def", "class")
}


def parse_flow_tree(source: FlowSource) -> FlowTree:
    """Parse the flow text with Python's parser; a syntax error becomes a
    CompileError (a flow whose module imported has none, except a flow
    whose text cannot stand alone)."""
    text = _as_in_file(source)
    try:
        module = ast.parse(text, source.file)
    except SyntaxError as error:
        line = error.lineno or source.first_line
        column = max(0, (error.offset or 1) - 1)
        span = SourceSpan(source.file, line, column, line, column + 1, source.name)
        raise compile_error(span, "syntax error: %s" % error.msg)
    lines = text.encode("utf-8", "surrogatepass").split(b"\n")
    return FlowTree(source, module, lines)


def _as_in_file(source: FlowSource) -> str:
    """The flow's text at its lines and columns in the file: after blank
    lines, and inside an ``if`` when it is indented there."""
    first = source.line
    raw = source.raw or source.text
    if raw[:1].isspace():
        return "\n" * (first - 2) + WRAPPER + raw
    return "\n" * (first - 1) + raw


WRAPPER = "if True:\n"


def read_flow_source(function) -> FlowSource:
    """Read the source of ``function``; refuse flows that have no file."""
    name = getattr(function, "__qualname__", repr(function))
    if not inspect.isfunction(function):
        raise compile_error(
            _place_of(function, name),
            "a flow must be a function defined with def, found %s"
            % type(function).__name__,
            "put the flow decorator on the def itself, with no other decorator",
        )
    try:
        file = inspect.getsourcefile(function) or inspect.getfile(function)
        lines, first_line = inspect.getsourcelines(function)
    except (OSError, TypeError) as error:
        raise compile_error(
            _place_of(function, name),
            "the source of flow %r cannot be read (%s)" % (name, error),
            "define flows in a .py file: a flow is compiled from its"
            " source, which the interactive prompt and exec() do not"
            " keep",
        ) from None
    raw = "".join(lines)
    text = textwrap.dedent(raw)
    if text[:1].isspace():
        # A multi-line string less indented than the def: dedent removed
        # nothing, and the text cannot be dedented without changing it. Parse
        # it inside an `if` instead, keeping every column.
        return FlowSource(
            function.__name__, file, first_line - 1, 0, WRAPPER + raw, raw
        )
    indent = _first_indent(raw) - _first_indent(text)
    return FlowSource(function.__name__, file, first_line, indent, text, raw)


def _first_indent(text: str) -> int:
    for line in text.splitlines():
        if line.strip():
            return len(line) - len(line.lstrip())
    return 0


def _place_of(function, name: str) -> SourceSpan:
    """Where ``function`` (or the function it wraps) is defined, as far as
    its code tells."""
    try:
        inner = inspect.unwrap(function)
    except ValueError:  # a cycle of __wrapped__
        inner = function
    code = getattr(inner, "__code__", None)
    if code is None:
        return SourceSpan("<unknown>", 0, 0, 0, 0, name)
    line = code.co_firstlineno
    return SourceSpan(code.co_filename, line, 0, line, 1, name)
