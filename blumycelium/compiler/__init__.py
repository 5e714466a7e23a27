"""The flow compiler: from a function's source to the graph of a run.

The passes run in this order, one module each:

1. ``source``      read the function's text and parse it, at its lines and
                   columns in the user's file;
2. ``syntax``      refuse unsupported syntax first, so that the later passes
                   can assume a well-formed flow and every error is reported
                   before any work is done;
3. ``rewrite``     route every operation that may touch a task result through
                   the dispatcher of ``runtime`` (AutoGraph's approach);
4. ``materialize`` compile the rewritten tree under the user's file name,
                   with the original closure and defaults.

Passes 1-4 work on Python's own syntax tree (``ast``), which the interpreter
parses and compiles natively: a 200-line flow compiles in a few tens of
milliseconds. Passes 1-3 run once per source revision in a process
(:func:`compile_flow` keeps their result).
Each call of a flow then runs the compiled function under a
:class:`~.graph.GraphBuilder`: static code runs as plain Python, task calls
become jobs, and the result is a :class:`~.graph.FlowGraph` ready to be
written to a store. The preview (``analysis``, ``structure``, ``render``) reads the
same text with libcst, whose tree keeps every token, without running
anything; ``scan`` and ``branches`` answer the questions both ask alike.

The compiler imports nothing from ``blumycelium.store``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
import threading
from dataclasses import dataclass

from .diagnostics import SourceSpan, compile_error, site
from .graph import FlowGraph, GraphBuilder, after
from .leaks import leaked_name
from .materialize import factory_code, future_flags, materialize
from .rewrite import RewrittenFlow, rewrite_flow
from .source import FlowSource, parse_flow_tree, read_flow_source
from .syntax import check_syntax

__all__ = ["CompiledFlow", "FlowGraph", "after", "compile_flow"]

logger = logging.getLogger(__name__)

# The compiled code of each flow, by where it is defined, its text, and the
# names it closes over and __future__ features it has (the module around it
# decides those): a flow decorated again, by another mycelium, in a test,
# is not compiled again. The syntax trees are not kept.
_COMPILED: dict[tuple, object] = {}
_COMPILING = threading.RLock()


@dataclass
class CompiledFlow:
    """A flow ready to be called: its source and its graph-building function."""

    name: str
    source: FlowSource
    graph_function: object
    original: object = None

    def call(self, args: tuple, kwargs: dict):
        """Run the graph-building function with the original's defaults as
        they are now (they may be reassigned after the flow is defined)."""
        function = self.graph_function
        if self.original is not None:
            function.__defaults__ = self.original.__defaults__
            function.__kwdefaults__ = self.original.__kwdefaults__
        return function(*args, **kwargs)

    @property
    def revision(self) -> str:
        return self.source.revision

    @property
    def key(self) -> tuple:
        """Which flow this is: where it is defined."""
        return (self.source.file, self.source.first_line)

    @property
    def rewritten_source(self) -> str:
        """The rewritten function, for debugging (rewritten again: the call
        site numbers differ from the compiled function's)."""
        return _rewritten(self.source).code

    def build(self, args: tuple, kwargs: dict) -> FlowGraph:
        """Run the flow at submit time and return the graph it built."""
        builder = GraphBuilder(self.name)
        builder.inlined.append((self.key, self.name))
        with builder:
            try:
                value = self.call(args, kwargs)
            except BaseException as error:
                if builder.errors and error is not builder.errors[0]:
                    raise builder.errors[0] from error
                raise
            if builder.errors:
                raise builder.errors[0]
            graph = builder.finish(value, self._return_span(builder))
            self.refuse_leaks(args, kwargs)
            return graph

    @functools.cached_property
    def _signature(self) -> inspect.Signature:
        return inspect.signature(self.original)

    def refuse_leaks(self, args: tuple = (), kwargs: dict | None = None) -> None:
        if self.original is None:
            return
        try:
            bound = self._signature.bind_partial(*args, **(kwargs or {}))
            arguments = bound.arguments
        except (TypeError, ValueError):
            arguments = {}
        name = leaked_name(self.original, arguments)
        if name is None:
            return
        raise compile_error(
            self.source.def_span(),
            "flow %s left a task result in %s, which outlives the flow"
            " (a global, a variable of an enclosing function, a default"
            " or an argument); a task result has a value only inside"
            " its run" % (self.name, name),
            "return the result from the flow, or pass it to a task;"
            " collect results in a list local to the flow",
        )

    def _return_span(self, builder: GraphBuilder) -> SourceSpan:
        if builder.return_site is not None:
            return site(builder.return_site)
        return self.source.def_span()


def compile_flow(function) -> CompiledFlow:
    """Compile ``function`` into a flow; raise CompileError when it is invalid."""
    source = read_flow_source(function)
    code = function.__code__
    key = (source.file, source.first_line, source.revision)
    key += (code.co_freevars, future_flags(function))
    with _room_to_nest(source):
        compiled = _COMPILED.get(key)
        if compiled is None:
            compiled = _COMPILED[key] = _compiled(source, function)
        graph_function = materialize(compiled, function)
    return CompiledFlow(function.__name__, source, graph_function, function)


# Python frames a compile may take: each level of an expression or of nested
# blocks takes a few, and Python's own compiler takes about a thousand levels.
_RECURSION_LIMIT = 4000


@contextlib.contextmanager
def _room_to_nest(source: FlowSource):
    """One compile at a time, with room to recurse as deep as the flow nests;
    deeper than that is a CompileError at the flow's line."""
    with _COMPILING:
        saved = sys.getrecursionlimit()
        sys.setrecursionlimit(max(saved, _RECURSION_LIMIT))
        try:
            yield
        except RecursionError:
            message = "flow %r nests too deeply to be compiled" % source.name
            hint = "split the expression or the if/elif chain into several steps"
            raise compile_error(source.def_span(), message, hint) from None
        finally:
            sys.setrecursionlimit(saved)


def _compiled(source: FlowSource, function):
    """The factory code of ``function``: parsed, checked, rewritten, compiled."""
    rewritten = _rewritten(source)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "flow %s rewritten for graph building:\n%s", source.name, rewritten.code
        )
    return factory_code(rewritten, function, source.file)


def _rewritten(source: FlowSource) -> RewrittenFlow:
    """The rewrite of ``source``: parsed, checked and rewritten."""
    parsed = parse_flow_tree(source)
    check_syntax(parsed)
    return rewrite_flow(parsed)
