"""Flows: orchestration functions compiled into graphs and submitted as runs.

``@myc.flow`` compiles the function at once (parse, check, rewrite; see
``blumycelium.compiler``), so an invalid flow fails at import, like a syntax
error. Calling the flow binds its arguments, runs the compiled function to
build the graph (every check happens here, before anything is written), and
submits the graph to the mycelium as one run.

``flow.eager(...)`` runs the original function now, its task calls plain
method calls and the flows it calls eager too: the meaning of the flow, which
a submitted run must match. (``flow.__wrapped__`` is the original function.)
"""

from __future__ import annotations

import functools
import inspect
import json
import os

from .compiler import compile_flow
from .eager import EAGER, snapshot
from .errors import CompileError, RunKeyConflictError
from .mycelium import collector_relaxed, flow_arguments, is_preview, stored_arguments


class Flow:
    """A compiled flow bound to the mycelium it submits to."""

    __blumycelium_flow__ = True

    def __init__(self, function, mycelium, name: str | None = None):
        functools.update_wrapper(self, function)
        self.function = function
        self.mycelium = mycelium
        self.name = name or function.__name__
        self.compiled = None
        self.error: CompileError | None = None
        try:
            with collector_relaxed():  # a compile makes thousands of nodes
                self.compiled = compile_flow(function)
        except CompileError as error:
            if not is_preview():
                raise
            self.error = error

    def __repr__(self) -> str:
        return "<flow %s of %r>" % (self.name, self.mycelium)

    def eager(self, *args, **kwargs):
        """Run the flow as plain Python, now, in this process: task calls are
        method calls, and the flows it calls run eagerly too. This is what a
        flow means; a submitted run must compute the same."""
        token = EAGER.set(True)
        try:
            value = self.function(*args, **kwargs)
        finally:
            EAGER.reset(token)
        # what the run would hold: refused where the run's result would be
        return snapshot(value, "return value of flow %s" % self.name)

    def __call__(self, *args, **kwargs):
        """Build the graph for these arguments and submit it as a run.

        ``run_key="..."`` (unless the flow has a parameter of that name) makes
        the submission idempotent: a second call with the same key returns
        the run the first one created.
        """
        if EAGER.get():
            return self.function(*args, **kwargs)
        run_key = None
        if "run_key" in kwargs and not self._takes_run_key:
            run_key = kwargs.pop("run_key")
            if run_key is not None and (not isinstance(run_key, str) or not run_key):
                raise TypeError(
                    "flow %s(): run_key must be a non-empty string,"
                    " found %r" % (self.name, run_key)
                )
        arguments = stored_arguments(flow_arguments(self.function, args, kwargs))
        with collector_relaxed():
            graph = self.graph(*args, **kwargs)
            run = self.mycelium.submit(self, graph, arguments, run_key)
            del graph  # freed now, before the collector would walk it
        if run_key is not None:
            self._check_same_submission(run, arguments, run_key)
        return run

    def _check_same_submission(self, run, arguments: dict, run_key: str) -> None:
        """A run key returns its run only to the same flow with the same
        arguments: anything else is a mistake to report, not a run to share."""
        record = run.record()
        stored_file = self._file_of(record)
        if (
            record.flow == self.name
            and (stored_file is None or _same_file(stored_file, self.compiled))
            and _same(record.arguments, arguments)
        ):
            return
        raise RunKeyConflictError(
            "run_key %r already names run %s, of flow %s (%s) with arguments %s;"
            " this call is flow %s (%s) with arguments %s. Nothing was submitted:"
            " use another key for another submission"
            % (
                run_key,
                record.id,
                record.flow,
                stored_file or "file unknown",
                _shown_arguments(record.arguments),
                self.name,
                self.compiled.source.file,
                _shown_arguments(arguments),
            )
        )

    def _file_of(self, record) -> str | None:
        """The file of the flow that made a run (None when not recorded): two
        flows of one name in two modules are two flows."""
        stored = self.mycelium.store.get_flow_revision(record.flow_revision)
        return None if stored is None else stored["file"]

    @property
    def _takes_run_key(self) -> bool:
        return "run_key" in inspect.signature(self.function).parameters

    def graph(self, *args, **kwargs):
        """The graph these arguments produce, checked but not submitted."""
        if self.compiled is None:
            raise self.error
        flow_arguments(self.function, args, kwargs)
        return self.compiled.build(args, kwargs)

    def __blumycelium_inline__(self, args: tuple, kwargs: dict):
        """What a flow calling this one needs to build it into its own graph:
        the compiled flow and the arguments, checked against the signature."""
        if self.compiled is None:
            raise self.error
        flow_arguments(self.function, args, kwargs)
        return self.compiled, args, kwargs

    def __get__(self, instance, owner=None):
        """A flow defined in a class is called on an instance like a method."""
        if instance is None:
            return self
        return BoundFlow(self, instance)

    @property
    def rewritten_source(self) -> str:
        """The graph-building function the compiler generated, for debugging."""
        return self.compiled.rewritten_source if self.compiled else ""


class BoundFlow:
    """A flow method bound to an instance: calls pass the instance first."""

    __blumycelium_flow__ = True

    def __init__(self, flow: Flow, instance):
        self.flow = flow
        self.instance = instance

    def __repr__(self) -> str:
        return "<bound flow %s of %r>" % (self.flow.name, self.instance)

    def __call__(self, *args, **kwargs):
        return self.flow(self.instance, *args, **kwargs)

    def graph(self, *args, **kwargs):
        return self.flow.graph(self.instance, *args, **kwargs)

    def __blumycelium_inline__(self, args: tuple, kwargs: dict):
        return self.flow.__blumycelium_inline__((self.instance, *args), kwargs)

    def eager(self, *args, **kwargs):
        return self.flow.eager(self.instance, *args, **kwargs)


def _shown_arguments(arguments: dict) -> str:
    """Stored arguments, short, for a message."""
    text = ", ".join(
        "%s=%s" % (name, stored.get("repr") or repr(stored.get("value")))
        for name, stored in arguments.items()
    )
    return "(%s)" % (text if len(text) <= 200 else text[:196] + "...")


def _same(stored: dict, arguments: dict) -> bool:
    """Stored arguments equal as stored: 1, 1.0 and True differ here."""
    return json.dumps(stored, sort_keys=True) == json.dumps(arguments, sort_keys=True)


def _same_file(stored: str, compiled) -> bool:
    """Whether a stored flow file is this flow's, by whatever path each was
    reached (./m.py and m.py, a symlinked directory)."""
    return os.path.realpath(stored) == os.path.realpath(compiled.source.file)
