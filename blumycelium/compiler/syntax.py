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

import ast

from ..errors import CompileError
from .diagnostics import Diagnostic
from .scan import children
from .source import FlowTree


def check_syntax(parsed: FlowTree) -> None:
    """Raise CompileError listing every unsupported construct of the flow."""
    findings: list[Diagnostic] = []
    function = _the_function(parsed, findings)
    if function is not None:
        _check_header(parsed, function, findings)
        checker = _BodyChecker(parsed, findings)
        for statement in function.body:
            checker.walk(statement)
    if findings:
        raise CompileError(findings)


def _the_function(parsed: FlowTree, findings: list):
    function = parsed.function
    if len(parsed.module.body) == 1 and isinstance(
        function, (ast.FunctionDef, ast.AsyncFunctionDef)
    ):
        return function
    node = parsed.module.body[0] if parsed.module.body else None
    span = parsed.span(node) if node is not None else parsed.source_span()
    findings.append(
        Diagnostic(
            span,
            "a flow must be a function defined with def",
            "write `@myc.flow` above a `def`; a lambda cannot be a flow",
        )
    )
    return None


def _check_header(parsed: FlowTree, function, findings) -> None:
    if isinstance(function, ast.AsyncFunctionDef):
        findings.append(
            Diagnostic(
                parsed.name_span(function),
                "flow %r is async; flows are plain functions" % function.name,
                "remove async: the flow runs once at submit time and its task"
                " calls become jobs that elves run asynchronously anyway",
            )
        )
    if len(function.decorator_list) > 1:
        findings.append(
            Diagnostic(
                parsed.decorator_span(function.decorator_list[1]),
                "flow %r has %d decorators; the flow decorator must be its only"
                " one" % (function.name, len(function.decorator_list)),
                "other decorators would wrap the eager function and be lost on"
                " the compiled flow; apply them inside the tasks instead",
            )
        )


class _BodyChecker:
    """Walks the flow body; nested functions may be generators, the flow may not."""

    def __init__(self, parsed: FlowTree, findings: list):
        self.parsed = parsed
        self.findings = findings

    def walk(self, node: ast.AST, depth: int = 0) -> None:
        check = _CHECKS.get(type(node))
        if check is not None:
            check(self, node, depth)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            depth += 1
        for child in children(node):
            self.walk(child, depth)

    def _refuse(self, span, message: str, hint: str = "") -> None:
        self.findings.append(Diagnostic(span, message, hint))

    def async_function(self, node, depth: int) -> None:
        self._refuse(
            self.parsed.name_span(node),
            "async functions cannot be defined in a flow",
            "define them at module level",
        )

    def yield_(self, node, depth: int) -> None:
        if depth == 0:
            self._refuse(
                self.parsed.span(node),
                "a flow cannot yield: it returns one value, the run's result",
                "collect the values in a list and return it",
            )

    def await_(self, node, depth: int) -> None:
        self._refuse(
            self.parsed.span(node),
            "await is not allowed in a flow",
            "call the task directly: every task call becomes a job",
        )

    def async_for(self, node, depth: int) -> None:
        self._refuse(self.parsed.span(node), "async for is not allowed in a flow")

    def async_with(self, node, depth: int) -> None:
        self._refuse(self.parsed.span(node), "async with is not allowed in a flow")

    def class_def(self, node, depth: int) -> None:
        self._refuse(
            self.parsed.name_span(node),
            "classes cannot be defined inside a flow",
            "define the class at module level",
        )

    def call(self, node, depth: int) -> None:
        if (
            isinstance(node.func, ast.Name)
            and node.func.id == "super"
            and not node.args
            and not node.keywords
        ):
            self._refuse(
                self.parsed.span(node),
                "super() without arguments cannot be used in a flow",
                "call the method through the class instead: Base.method(self, ...)",
            )

    def named_expression(self, node, depth: int) -> None:
        self._refuse(
            self.parsed.span(node),
            "assignment expressions (:=) are not supported in a flow",
            "assign the value on its own line first",
        )


_CHECKS = {
    ast.AsyncFunctionDef: _BodyChecker.async_function,
    ast.Yield: _BodyChecker.yield_,
    ast.YieldFrom: _BodyChecker.yield_,
    ast.Await: _BodyChecker.await_,
    ast.AsyncFor: _BodyChecker.async_for,
    ast.AsyncWith: _BodyChecker.async_with,
    ast.ClassDef: _BodyChecker.class_def,
    ast.Call: _BodyChecker.call,
    ast.NamedExpr: _BodyChecker.named_expression,
}
