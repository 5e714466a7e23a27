"""The variable-flow graph a flow builds when it is called.

The rewritten flow runs at submit time. Its static code runs as plain Python;
every task call adds a :class:`JobNode` to the :class:`GraphBuilder` in
scope and yields a :class:`TaskResult`. Values that depend on task results
are *deferred* (see ``deferred.py``). Deferred values can sit in static
containers (``results.append(r["x"])``): the container stays a plain list and
is stored as a parameter holding references.

Inside a loop over a task result, jobs go to the loop's template (a
:class:`LoopFrame`) instead of the run. When a job is added its arguments are
encoded at once (see ``values.py``), which snapshots static containers as
they are at the call, checks that every value can be stored, and collects the
jobs the arguments depend on.
"""

from __future__ import annotations

import contextlib
import linecache
import sys
from dataclasses import dataclass, field

from ..errors import NotStorableError
from ..values import Encoder, encode, stored_as_is
from .deferred import (
    _CURRENT,
    Deferred,
    FlowError,
    LoopFrame,
    TaskResult,
    Unassigned,
    check_same_call,
    current_builder,
    span_from_stack,
)
from .diagnostics import SourceSpan, site

SYSTEM_ELF = "__blumycelium__"
_NONE: frozenset = frozenset()


class JobNode:
    """One task call of a flow: a job of the run."""

    __slots__ = (
        "index",
        "elf",
        "spec",
        "arguments",
        "deferred_arguments",
        "dependencies",
        "site_id",
        "call",
        "guard",
        "frame",
        "via",
    )

    def __init__(self, index, elf, spec, site_id, builder=None, frame=None):
        # the flow call it belongs to (not the builder, which holds the job:
        # a graph without cycles is freed as soon as its run is written)
        self.call = builder.call if builder is not None else None
        self.via: tuple = (
            tuple(builder.inlining) if builder and builder.inlining else ()
        )
        self.guard = None
        self.frame = frame  # the loop over a task result it belongs to, if any
        self.index = index
        self.elf = elf
        self.spec = spec
        self.site_id = site_id
        self.arguments: dict = {}
        # grown by rebinding (|=): most jobs keep the shared empty set
        self.deferred_arguments: frozenset = _NONE
        self.dependencies: frozenset = _NONE

    @property
    def site(self) -> SourceSpan:
        return site(self.site_id)

    def site_record(self) -> dict:
        """Where the job was made, as stored: the task call, and when it is in
        a flow called by the flow, the calls of those flows, outermost first."""
        record = self.site.as_record()
        if self.via:
            record["via"] = [site(site_id).as_record() for site_id in self.via]
            # the run stores the caller's source only: keep this line's text
            record["text"] = linecache.getline(self.site.file, self.site.line).strip()
        return record

    @property
    def task(self) -> str:
        return self.spec.name

    @property
    def elf_uid(self) -> str:
        return SYSTEM_ELF if self.elf is None else self.elf.uid

    @property
    def key(self):
        """How references and dependencies name this job: its index in the
        run, or (loop id, index in the loop's template) inside a fan-out."""
        return self.index if self.frame is None else (self.frame.id, self.index)

    def describe(self) -> str:
        return "%s (line %d)" % (self.spec.call_name, self.site.line)


@dataclass
class FlowGraph:
    """What a flow call produced: its jobs and its return value, encoded."""

    flow: str
    jobs: list
    result: object = None
    result_dependencies: set = field(default_factory=set)

    elf_sites: dict = field(default_factory=dict)  # id(elf): (elf, first site)

    def elves(self) -> dict:
        """The elves the run's jobs go to (its loops' templates included)."""
        return {key: elf for key, (elf, _) in self.elf_sites.items()}


class FlowCall:
    """One call of a flow, as its jobs know it."""

    __slots__ = ("flow_name",)

    def __init__(self, flow_name: str):
        self.flow_name = flow_name


class GraphBuilder:
    """Collects the jobs of one flow call, in submission order."""

    def __init__(self, flow_name: str):
        self.flow_name = flow_name
        self.call = FlowCall(flow_name)
        self.jobs: list[JobNode] = []
        self.after_stack: list[set] = []
        self.try_frames: list = []  # (frame, lines) of a `try` (control.enter_try)
        self.return_site: int | None = None
        self.errors: list[FlowError] = []
        self.probing = 0
        self.call_sites: list[int] = []
        self.guards: list = []  # the conditions of the branches being built
        self.frames: list[LoopFrame] = []  # the loops over results being built
        self.elf_sites: dict = {}
        self.loop_count = 0
        # the `if` and `for` statements being built on task results, as
        # (site id, "branch" or "loop"), innermost last (see mutation.py)
        self.dynamic_scopes: list[tuple[int, str]] = []
        self.inlining: list[int] = []  # call sites of the flows being inlined
        self.inlined: list[tuple] = []  # (key, name) of the flows being built

    @contextlib.contextmanager
    def guarded(self, condition):
        """Jobs created in this block run only when ``condition`` is true."""
        self.guards.append(condition)
        try:
            yield
        finally:
            self.guards.pop()

    def __enter__(self):
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc_info):
        _CURRENT.reset(self._token)

    def in_try(self) -> bool:
        """Whether the code running now is inside the body of a ``try`` of
        the flow: a frame that entered one is on the stack, at a line of its
        body (a generator suspended there is not on the stack; code of an
        ``except`` or after the ``try`` is on other lines)."""
        frame = sys._getframe(1)
        while frame is not None:
            for entered, first, last in self.try_frames:
                if entered is frame and first <= frame.f_lineno <= last:
                    return True
            frame = frame.f_back
        return False

    def add_job(self, elf, spec, args: tuple, kwargs: dict, site_id: int):
        if self.try_frames and self.in_try():
            raise _task_in_try(spec, site(site_id))
        try:
            bound = spec.bind(args, kwargs)
        except TypeError as error:
            raise FlowError.at(site(site_id), str(error)) from None
        job = self._new_job(elf, spec, site_id)
        for name, value in bound.items():
            if stored_as_is(value):  # the common case: no encoder needed
                job.arguments[name] = value
                if name in spec.checks:
                    self._check_argument(job, name, value)
            else:
                self._add_argument(job, name, value)
        self._place(job)
        if id(elf) not in self.elf_sites:
            self.elf_sites[id(elf)] = (elf, site(site_id))
        return TaskResult(job)

    def _new_job(self, elf, spec, site_id: int) -> JobNode:
        frame = self.frames[-1] if self.frames else None
        jobs = self.jobs if frame is None else frame.jobs
        return JobNode(len(jobs), elf, spec, site_id, self, frame)

    def _place(self, job: JobNode) -> None:
        """Add the job to the run, or to the loop template being built, with
        the dependencies of the ``after`` blocks and guard around it."""
        if self.after_stack or self.guards:
            for waited in self.after_stack:
                job.dependencies |= waited
            if self.guards:
                encoder = Encoder()
                job.guard = encoder.encode(self.guards[-1])
                job.dependencies |= encoder.refs
        (self.jobs if job.frame is None else job.frame.jobs).append(job)

    def add_system_job(
        self, task: str, site_id: int, arguments: dict, dependencies: set
    ) -> JobNode:
        """A job any worker runs: the expansion or the gathering of a loop."""
        job = self._new_job(None, SYSTEM_SPECS[task], site_id)
        job.arguments = dict(arguments)
        job.deferred_arguments = set(arguments)
        job.dependencies = set(dependencies)
        self._place(job)
        return job

    @contextlib.contextmanager
    def dynamic_scope(self, site_id: int, kind: str):
        """The body of an ``if`` (``branch``) or ``for`` (``loop``) built on a
        task result."""
        self.dynamic_scopes.append((site_id, kind))
        try:
            yield
        finally:
            self.dynamic_scopes.pop()

    @contextlib.contextmanager
    def looping(self, frame: LoopFrame):
        """Jobs created in this block go to the loop's template."""
        self.frames.append(frame)
        try:
            yield frame
        finally:
            self.frames.pop()

    def new_frame(self, site_id: int) -> LoopFrame:
        self.loop_count += 1
        return LoopFrame("L%d" % self.loop_count, site_id)

    def _add_argument(self, job: JobNode, name: str, value) -> None:
        encoder = Encoder()
        try:
            job.arguments[name] = encoder.encode(value)
        except NotStorableError as error:
            error.root = name
            raise FlowError.at(
                job.site,
                "argument %s of %s: %s"
                % (error.path, job.spec.call_name, error.reason),
            ) from None
        if encoder.placeholders:
            job.deferred_arguments |= {name}
            job.dependencies |= encoder.refs
        else:
            self._check_argument(job, name, value)

    @staticmethod
    def _check_argument(job: JobNode, name: str, value) -> None:
        try:
            job.spec.check_argument(name, value)
        except TypeError as error:
            raise FlowError.at(job.site, str(error)) from None

    def finish(self, value, span: SourceSpan) -> FlowGraph:
        if self.return_site is not None:
            self.call_sites.append(self.return_site)  # errors point at return
        encoder = Encoder()
        try:
            result = encode(value, "return value", encoder)
        except NotStorableError as error:
            raise FlowError.at(
                span,
                "the flow's %s" % error,
                "a flow returns what its run will hold: a value made of task"
                " results and JSON-like values",
            ) from None
        return FlowGraph(
            self.flow_name, self.jobs, result, encoder.refs, self.elf_sites
        )


def _task_in_try(spec, span: SourceSpan) -> FlowError:
    return FlowError.at(
        span,
        "%s is called inside try/except; the job runs later on a worker, so"
        " except cannot catch its failure" % spec.call_name,
        "move the task call out of the try block; a failed job marks the run"
        " failed and keeps its traceback in the mycelium",
    )


def within(site_id: int, function, args, kwargs):
    """Call ordinary code, remembering where the flow called it, so that an
    error its use of a deferred value raises points at this call."""
    builder = _CURRENT.get(None)
    if builder is None:
        return function(*args, **kwargs)
    builder.call_sites.append(site_id)
    try:
        return function(*args, **kwargs)
    finally:
        builder.call_sites.pop()


def attempt(function, *args, **kwargs):
    """Call ``function`` while the builder probes: a NeedsConcreteValue it
    raises is the caller's cue to build an expression node, not an error."""
    builder = _CURRENT.get(None)
    if builder is None:
        return function(*args, **kwargs)
    builder.probing += 1
    try:
        return function(*args, **kwargs)
    finally:
        builder.probing -= 1


class AfterScope:
    """``with after(a, b):`` makes every job created inside wait for a and b."""

    def __init__(self, waited: tuple):
        self.jobs = set()
        if current_builder() is None:
            return  # the eager flow: ordering is the program's own order
        for value in _flattened(waited):
            if isinstance(value, Unassigned):
                value.refuse()
            if not isinstance(value, Deferred):
                holds = type(value) is dict and any(
                    isinstance(v, Deferred) for v in value.values()
                )
                raise FlowError.at(
                    span_from_stack(),
                    "after() takes task results (or lists of them), found"
                    " %s %r, %s"
                    % (
                        type(value).__name__,
                        value,
                        "a dict holding some"
                        if holds
                        else "which is known now: there is nothing to wait for",
                    ),
                    "pass the results themselves, e.g. after(*d.values())"
                    if holds
                    else "name the result of the task call to wait for",
                )
            for job in value.jobs():
                check_same_call(job)
                self.jobs.add(job.index)

    def __enter__(self):
        builder = current_builder()
        if builder is not None:
            builder.after_stack.append(self.jobs)
        return self

    def __exit__(self, *exc_info):
        builder = current_builder()
        if builder is not None:
            builder.after_stack.pop()


def _flattened(values):
    for value in values:
        if type(value) in (list, tuple):
            yield from _flattened(value)
        else:
            yield value


def after(*results) -> AfterScope:
    """Make every job created in the ``with`` block wait for ``results``.

    Use it when a job must run after others whose values it does not take,
    e.g. computing statistics after the data has been saved::

        saved = store.task_save(animal["species"], animal["weight"])
        with after(saved):
            stats = calc.task_calculate_means()
    """
    return AfterScope(results)


after.__blumycelium_accepts_deferred__ = True


class SystemSpec:
    """The contract of a job blumycelium itself runs (no elf class)."""

    def __init__(self, name: str, keys: tuple):
        self.name = name
        self.call_name = "blumycelium %s" % name
        self.qualname = self.call_name
        self.revision = ""
        self.result_keys = keys
        from ..policy import NO_RETRY

        self.retry = NO_RETRY

    def check_result_key(self, key, where: str = "") -> None:
        if key not in self.result_keys:
            raise TypeError("%s%s has no result key %r" % (where, self.call_name, key))


SYSTEM_SPECS = {
    "expand": SystemSpec("expand", ("count",)),
    "gather": SystemSpec("gather", ("count", "last", "appended")),
}
