"""Pass 1: refuse the syntax a flow cannot use, before any other work.

A flow is an ordinary function run at submit time to build a graph, so most
of Python is allowed. What is refused here cannot mean the same thing when
task calls become jobs that run later, elsewhere:

- a flow that is a generator or a coroutine (``yield``, ``await``,
  ``async def``): a flow returns one value, the run's result;
- other decorators on the flow: they would wrap the eager function and be
  lost on the compiled one;
- class definitions inside a flow: define them at module level;
- assignment expressions (``:=``): operands of ``and``/``or`` and of
  conditional expressions are compiled into deferred thunks, where a walrus
  would bind in the wrong scope;
- ``super()`` without arguments: it reads the calling frame, which the
  dispatcher replaces.

Every finding is collected; one CompileError reports them all.
"""

from __future__ import annotations

import libcst as cst

from ..errors import CompileError
from .diagnostics import Diagnostic
from .source import ParsedFlow
from .walk import Walker


def check_syntax(parsed: ParsedFlow) -> None:
    """Raise CompileError listing every unsupported construct of the flow."""
    findings: list[Diagnostic] = []
    function = _the_function(parsed, findings)
    if function is not None:
        _check_header(parsed, function, findings)
        _BodyChecker(parsed, findings).walk(function.body)
    if findings:
        raise CompileError(findings)


def _the_function(parsed: ParsedFlow, findings: list) -> cst.FunctionDef | None:
    body = parsed.module.body
    function = parsed.function
    if len(body) == 1 and isinstance(function, cst.FunctionDef):
        return function
    node = body[0] if body else parsed.module
    findings.append(
        Diagnostic(
            parsed.span(node),
            "a flow must be a function defined with def",
            "write `@myc.flow` above a `def`; a lambda cannot be a flow",
        )
    )
    return None


def _check_header(parsed: ParsedFlow, function: cst.FunctionDef, findings) -> None:
    if function.asynchronous is not None:
        findings.append(
            Diagnostic(
                parsed.span(function.name),
                "flow %r is async; flows are plain functions" % function.name.value,
                "remove async: the flow runs once at submit time and its task"
                " calls become jobs that elves run asynchronously anyway",
            )
        )
    if len(function.decorators) > 1:
        findings.append(
            Diagnostic(
                parsed.span(function.decorators[1]),
                "flow %r has %d decorators; the flow decorator must be its only"
                " one" % (function.name.value, len(function.decorators)),
                "other decorators would wrap the eager function and be lost on"
                " the compiled flow; apply them inside the tasks instead",
            )
        )


class _BodyChecker(Walker):
    """Walks the flow body; nested functions may be generators, the flow may not."""

    def __init__(self, parsed: ParsedFlow, findings: list):
        self.parsed = parsed
        self.findings = findings
        self.function_depth = 0

    def _refuse(self, node: cst.CSTNode, message: str, hint: str = "") -> None:
        self.findings.append(Diagnostic(self.parsed.span(node), message, hint))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.asynchronous is not None:
            self._refuse(
                node.name,
                "async functions cannot be defined in a flow",
                "define them at module level",
            )
        self.function_depth += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.function_depth -= 1

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self.function_depth += 1

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self.function_depth -= 1

    def visit_Yield(self, node: cst.Yield) -> None:
        if self.function_depth == 0:
            self._refuse(
                node,
                "a flow cannot yield: it returns one value, the run's result",
                "collect the values in a list and return it",
            )

    def visit_Await(self, node: cst.Await) -> None:
        self._refuse(
            node,
            "await is not allowed in a flow",
            "call the task directly: every task call becomes a job",
        )

    def visit_For(self, node: cst.For) -> None:
        if node.asynchronous is not None:
            self._refuse(node, "async for is not allowed in a flow")

    def visit_With(self, node: cst.With) -> None:
        if node.asynchronous is not None:
            self._refuse(node, "async with is not allowed in a flow")

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._refuse(
            node.name,
            "classes cannot be defined inside a flow",
            "define the class at module level",
        )

    def visit_Call(self, node: cst.Call) -> None:
        if (
            isinstance(node.func, cst.Name)
            and node.func.value == "super"
            and not node.args
        ):
            self._refuse(
                node,
                "super() without arguments cannot be used in a flow",
                "call the method through the class instead: Base.method(self, ...)",
            )

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._refuse(
            node,
            "assignment expressions (:=) are not supported in a flow",
            "assign the value on its own line first",
        )
