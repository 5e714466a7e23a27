"""Source locations and diagnostics, rendered the way compilers render them.

Every construct the compiler rewrites gets a :class:`SourceSpan` in the
flow's own file (line and column as in the editor), registered in a
process-wide table so that the rewritten code carries a small integer instead
of an object. A :class:`Diagnostic` is a record (severity, span, message,
hint); :class:`~blumycelium.errors.CompileError` carries a list of them and
renders them as::

    demos/bad.py:12:8: error: `if` needs the value of ret["ok"] at submit time
       12 |     if ret["ok"]:
          |        ^^^^^^^^^
      = hint: decide inside a task ...
"""

from __future__ import annotations

import itertools
import linecache
import threading
import unicodedata
from dataclasses import dataclass

from ..errors import CompileError


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """Where a construct is: 1-based lines, 0-based columns, in ``file``."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    flow: str = ""

    def describe(self) -> str:
        return "%s:%d:%d" % (self.file, self.line, self.column + 1)

    def source_line(self) -> str:
        return linecache.getline(self.file, self.line).rstrip("\n")

    def snippet(self) -> str:
        """The source text of the span (its first line when it spans several)."""
        text = self.source_line()
        end = self.end_column if self.end_line == self.line else len(text)
        return text[self.column : end].strip() or text.strip()

    def as_record(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column + 1,
            "flow": self.flow,
        }


UNKNOWN_SPAN = SourceSpan("<unknown>", 0, 0, 0, 0)

# The sites of every compiled flow, by id. Each flow takes a block of ids of
# its own, so that its compiled code can hold them as numbers.
_SITES: dict[int, SourceSpan] = {}
_SITES_LOCK = threading.Lock()
SITE_BLOCK = 1 << 24  # at most this many sites in one flow
_BLOCKS = itertools.count(1)


def new_site_block() -> int:
    """The first site id of a block no flow of this process has taken."""
    return next(_BLOCKS) * SITE_BLOCK


def register_sites(first: int, spans: tuple) -> None:
    """Give ``spans`` the ids from ``first`` on."""
    if len(spans) > SITE_BLOCK:
        raise ValueError("a flow has more than %d call sites" % SITE_BLOCK)
    with _SITES_LOCK:
        for number, span in enumerate(spans):
            _SITES[first + number] = span


def site(site_id: int) -> SourceSpan:
    return _SITES[site_id]


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the compiler, with where it is and what to do."""

    span: SourceSpan
    message: str
    hint: str = ""
    severity: str = "error"

    def render(self) -> str:
        lines = ["%s: %s: %s" % (self.span.describe(), self.severity, self.message)]
        text = self.span.source_line()
        if text:
            number = str(self.span.line)
            gutter = " " * len(number)
            width = self._caret_width(text)
            start = _display_width(text[: self.span.column])
            carets = _display_width(text[self.span.column : self.span.column + width])
            lines.append("  %s | %s" % (number, text.expandtabs(4)))
            lines.append("  %s | %s%s" % (gutter, " " * start, "^" * max(1, carets)))
        if self.hint:
            lines.append("  = hint: %s" % self.hint)
        return "\n".join(lines)

    def _caret_width(self, text: str) -> int:
        if self.span.end_line == self.span.line:
            width = self.span.end_column - self.span.column
        else:
            width = len(text.rstrip()) - self.span.column
        return max(1, width)


def _display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: tabs to 4, wide characters 2."""
    width = 0
    for char in text:
        if char == "\t":
            width += 4 - width % 4
        else:
            width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return width


def compile_error(span: SourceSpan, message: str, hint: str = "") -> CompileError:
    """A CompileError holding one diagnostic."""
    return CompileError([Diagnostic(span, message, hint)])
