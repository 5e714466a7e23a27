"""Human output of the command line: tables and sections, 100 columns wide.

On a terminal, and when rich is installed (``pip install
"blumycelium[cli]"``), tables are drawn with rich; otherwise (a pipe, a file,
or no rich) the same content is written as plain aligned text, cells cut to
fit. Scripts use ``--json`` instead of either.
"""

from __future__ import annotations

import json
import sys

WIDTH = 100


def _rich():
    try:
        import rich  # noqa: F401
    except ImportError:
        return None
    from rich.console import Console as RichConsole

    return RichConsole


class Console:
    """Writes tables, key-value sections and JSON to one stream."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        factory = _rich() if _is_terminal(self.stream) else None
        self.rich = factory(file=self.stream, width=WIDTH) if factory else None

    def json(self, data) -> None:
        """``data`` as JSON: a dict with keys other than strings as its
        [key, value] pairs (see _jsonable), anything else unknown as str,
        non-ASCII escaped (a lone surrogate stays valid JSON)."""
        self.stream.write(json.dumps(_jsonable(data), indent=2, default=str) + "\n")

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")

    def heading(self, text: str) -> None:
        if self.rich:
            self.rich.print("[bold]%s[/bold]" % _escape(text))
        else:
            self.line(text)

    def table(self, columns: list[str], rows: list[list], title: str = "") -> None:
        rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
        if self.rich:
            self._rich_table(columns, rows, title)
        else:
            self._plain_table(columns, rows, title)

    def _rich_table(self, columns, rows, title) -> None:
        from rich.table import Table

        table = Table(title=title or None, title_justify="left", expand=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*[_escape(cell) for cell in row])
        self.rich.print(table)

    def _plain_table(self, columns, rows, title) -> None:
        if title:
            self.line(title)
        widths = _fit(
            [len(c) for c in columns],
            [max([len(r[i]) for r in rows] or [0]) for i in range(len(columns))],
        )
        for row in [columns, *rows]:
            cells = [_cut(cell, width).ljust(width) for cell, width in zip(row, widths)]
            self.line("  ".join(cells).rstrip())
        if not rows:
            self.line("(none)")

    def fields(self, pairs: list[tuple[str, object]]) -> None:
        """A block of ``name: value`` lines."""
        width = max((len(name) for name, _ in pairs), default=0)
        for name, value in pairs:
            text = "" if value is None else str(value)
            first, *rest = text.splitlines() or [""]
            self.line("%s  %s" % ((name + ":").ljust(width + 1), first))
            for extra in rest:
                self.line(" " * (width + 3) + extra)

    def block(self, title: str, text: str) -> None:
        """A titled, indented block of preformatted text (tracebacks, source)."""
        self.heading(title)
        for row in (text or "").rstrip("\n").splitlines():
            self.line("    " + row)


def _fit(headers: list[int], contents: list[int]) -> list[int]:
    """Column widths that fit WIDTH, taking from the widest columns first."""
    widths = [max(h, c) for h, c in zip(headers, contents)]
    budget = WIDTH - 2 * (len(widths) - 1)
    while sum(widths) > budget:
        widest = widths.index(max(widths))
        if widths[widest] <= max(8, headers[widest]):
            break
        widths[widest] -= 1
    return widths


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def _is_terminal(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


def _jsonable(value):
    """``value`` as JSON can hold it: a dict with other keys than strings
    (which JSON would turn into strings, two keys 1 and "1" into one) is the
    list of its [key, value] pairs."""
    if type(value) is dict:
        if all(type(key) is str for key in value):
            return {key: _jsonable(item) for key, item in value.items()}
        return [[_jsonable(key), _jsonable(item)] for key, item in value.items()]
    if type(value) in (list, tuple):
        return [_jsonable(item) for item in value]
    return value
