"""Values known only once a job has run, as a flow sees them while it builds.

- :class:`TaskResult`: the whole result of a job; ``result["key"]`` is a
  :class:`Ref` once the key has been checked against the task's annotation;
- :class:`Ref`: one key of a job's result (or the whole result);
- :class:`Expr`: an expression node, a Python ``ast`` tree whose names
  ``_<n>`` are its inputs (references, other nodes' inputs, or static values);
- :class:`Element`, :class:`Appended`: the element of a loop over a task
  result and a list it grows, in the loop's template (see ``fanout.py``);
- :class:`FailedBranch`, :class:`Unassigned`: what a branch chosen at run
  time raised, or left unbound, when the flow built it.

Anything that would need a deferred value's concrete value at submit time
(truth, iteration, hashing, length, conversion) raises
:class:`NeedsConcreteValue`, a CompileError located at the flow line that
asked for it. The graph builder in scope (``graph.py``) is found through
:func:`current_builder`.
"""

from __future__ import annotations

import ast
import contextvars
import itertools
import linecache
import sys
from typing import TYPE_CHECKING

from ..errors import CompileError, NotStorableError
from ..values import TAG, Encoder, Placeholder
from .branches import one_branch_refusal
from .diagnostics import UNKNOWN_SPAN, Diagnostic, SourceSpan, site

if TYPE_CHECKING:
    from .graph import JobNode

_CURRENT: contextvars.ContextVar = contextvars.ContextVar("blumycelium_builder")


def current_builder():
    """The graph builder of the flow being built in this context, if any."""
    return _CURRENT.get(None)


_INPUT_NAMES = itertools.count()
_REWRITTEN_CODE: set = set()


def register_rewritten_code(code) -> None:
    """Remember the code objects of a rewritten flow, nested ones included."""
    _REWRITTEN_CODE.add(code)
    for constant in code.co_consts:
        if hasattr(constant, "co_code"):
            register_rewritten_code(constant)


def is_rewritten(code) -> bool:
    """Whether ``code`` belongs to a compiled flow (nested functions too)."""
    return code in _REWRITTEN_CODE


def span_from_stack() -> SourceSpan:
    """Where the flow is: the call into ordinary code in progress, else the
    innermost frame of rewritten code."""
    builder = _CURRENT.get(None)
    if builder is not None and builder.call_sites:
        return site(builder.call_sites[-1])
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in _REWRITTEN_CODE:
            file, line = frame.f_code.co_filename, frame.f_lineno
            text = linecache.getline(file, line).rstrip("\n")
            column = len(text) - len(text.lstrip())
            return SourceSpan(file, line, column, line, len(text), frame.f_code.co_name)
        frame = frame.f_back
    return UNKNOWN_SPAN


class FlowError(CompileError):
    """A CompileError found while a flow builds its graph.

    It records itself on the builder in scope, so that the build fails even
    when the flow's own ``try``/``except`` catches it (CompileError is a
    TypeError). The dispatcher's static attempts, which expect and handle
    NeedsConcreteValue, run while the builder is *probing* and record nothing.
    """

    def __init__(self, diagnostics):
        super().__init__(diagnostics)
        builder = _CURRENT.get(None)
        if builder is not None and not builder.probing:
            builder.errors.append(self)

    @classmethod
    def at(cls, span: SourceSpan, message: str, hint: str = "") -> FlowError:
        """The error of one diagnostic."""
        return cls([Diagnostic(span, message, hint)])


class NeedsConcreteValue(FlowError):  # noqa: N818 - reads as a sentence
    """A deferred value was used where its concrete value is needed now."""

    def __init__(self, span: SourceSpan, message: str, hint: str):
        super().__init__([Diagnostic(span, message, hint)])


_HINT_DECIDE = (
    "decide inside a task: pass the value to a task and use it there; a flow"
    " can only move results from task to task"
)


class Deferred(Placeholder):
    """A value known only once a job has run. Using its value now is an error."""

    __slots__ = ()

    def origin(self) -> str:
        jobs = sorted(self.jobs(), key=lambda job: job.index)
        if not jobs:
            return "a task result"
        names = ", ".join(job.describe() for job in jobs[:3])
        return "the result of " + names

    def jobs(self) -> list:
        raise NotImplementedError

    def refuse(self, need: str, hint: str = _HINT_DECIDE, span=None):
        raise NeedsConcreteValue(
            span or span_from_stack(),
            "%s needs a concrete value at submit time, but this is %s, known"
            " only when that job has run" % (need, self.origin()),
            hint,
        )

    def __bool__(self):
        self.refuse("its truth value (if, while, assert, bool())")

    def __iter__(self):
        self.refuse(
            "iterating over it",
            "pass the whole value to a task and loop inside the task",
        )

    def __len__(self):
        self.refuse("len() outside an expression")

    def __hash__(self):
        self.refuse("using it as a dict key or set member")

    def __index__(self):
        self.refuse("using it as an index or a range bound")

    def __int__(self):
        self.refuse("int() outside an expression")

    def __float__(self):
        self.refuse("float() outside an expression")

    def __str__(self):
        self.refuse(
            "converting it to str in ordinary code",
            "use an f-string or str(...) in the flow itself; both become"
            " expression nodes",
        )

    def __format__(self, spec):
        self.refuse(
            "formatting it in ordinary code", "use an f-string in the flow itself"
        )

    def __contains__(self, item):
        self.refuse("`in` outside an expression")

    def __setitem__(self, key, value):
        self.read_only("assigning an item of")

    def __delitem__(self, key):
        self.read_only("deleting an item of")

    def read_only(self, action: str):
        raise NeedsConcreteValue(
            span_from_stack(),
            "%s %s: task results are read-only snapshots" % (action, self.origin()),
            "build a new value instead, e.g. {**r['d'], 'k': v} or r['items'] + [x]",
        )

    def __call__(self, *args, **kwargs):
        self.refuse("calling it", "a result is data; it cannot be called")


_OPERATOR_WORDS = {
    "__eq__": "comparing it (==)",
    "__ne__": "comparing it (!=)",
    "__lt__": "comparing it (<)",
    "__le__": "comparing it (<=)",
    "__gt__": "comparing it (>)",
    "__ge__": "comparing it (>=)",
    "__neg__": "negating it",
    "__pos__": "unary +",
    "__abs__": "abs()",
    "__invert__": "~",
    "__round__": "round()",
}


def _refuse_operator(name: str):
    words = _OPERATOR_WORDS.get(name) or "the operator %s" % name.strip("_").replace(
        "r", "", 1 if name.startswith("__r") else 0
    )

    def refuse(self, *args):
        self.refuse(
            "%s in ordinary code" % words,
            "write the expression in the flow itself, where it becomes"
            " an expression node, or compute it inside a task",
        )

    refuse.__name__ = name
    return refuse


for _name in (
    "__eq__ __ne__ __lt__ __le__ __gt__ __ge__ __add__ __radd__ __sub__"
    " __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __floordiv__"
    " __rfloordiv__ __mod__ __rmod__ __pow__ __rpow__ __neg__ __pos__ __abs__"
    " __invert__ __and__ __rand__ __or__ __ror__ __xor__ __rxor__ __lshift__"
    " __rshift__ __round__"
).split():
    setattr(Deferred, _name, _refuse_operator(_name))


def check_same_call(job: JobNode) -> None:
    """Refuse a result of another flow call (kept in a global, a default, a
    closure): its job is not part of the run being built."""
    builder = _CURRENT.get(None)
    if builder is not None and job.call is not builder.call:
        raise FlowError.at(
            span_from_stack(),
            "this value is a result of %s in an earlier call of flow %s;"
            " results belong to the run that made them"
            % (job.describe(), job.call.flow_name if job.call else "?"),
            "do not keep task results in globals, default arguments or closures"
            " between flow calls; pass what a run needs as flow arguments",
        )


def encode_ref(job: JobNode, key, encoder: Encoder) -> dict:
    """A stored reference to ``job`` (a loop-local one carries its loop)."""
    check_same_call(job)
    builder = _CURRENT.get(None)
    if (
        job.frame is not None
        and builder is not None
        and job.frame not in builder.frames
    ):
        raise FlowError.at(
            span_from_stack(),
            "this value comes from %s, inside the loop over a task result"
            " at line %d, and is used outside that loop"
            % (job.describe(), site(job.frame.site_id).line),
            "collect what the loop computes in a list local to the flow"
            " (results.append(...)) or with a list comprehension, and use the"
            " list after the loop",
        )
    encoder.refs.add(job.key)
    marker = {TAG: "ref", "job": job.index, "key": key}
    if job.frame is not None:
        marker["loop"] = job.frame.id
    return marker


class LoopFrame:
    """A loop over a task result being built: its body's jobs are a template,
    copied once per element when the iterable is known (``fanout.py``)."""

    def __init__(self, frame_id: str, site_id: int):
        self.id = frame_id
        self.site_id = site_id
        self.jobs: list[JobNode] = []
        self.failure: dict | None = None  # what building the body raised
        self.unstorable: dict[str, str] = {}  # names bound to what cannot be
        # stored, with why (see fanout._template)


class Element(Deferred):
    """The element of a loop over a task result, in the loop's template."""

    __slots__ = ("frame", "iterable")

    def __init__(self, frame: LoopFrame, iterable: Deferred):
        self.frame = frame
        self.iterable = iterable

    def jobs(self) -> list:
        return self.iterable.jobs()

    def origin(self) -> str:
        return "an element of %s" % self.iterable.origin()

    def encode_placeholder(self, encoder: Encoder) -> dict:
        builder = current_builder()
        if builder is not None and self.frame not in builder.frames:
            self._refuse_outside()
        return {TAG: "element", "loop": self.frame.id}

    def _refuse_outside(self):
        """An element reached code after its loop through an object changed
        in place in the loop's body (``m = lists[0]; m.append(w)``, a helper
        function): the body is built once, so the object holds one element."""
        raise FlowError.at(
            site(self.frame.site_id),
            "an element of this loop over %s is used after the loop,"
            " put there by a change in place the loop's body made to"
            " an object of the flow (through another name, a helper"
            " or an item of a container); the body is built once, as"
            " a template, so that object would hold one element, not"
            " each one" % self.iterable.origin(),
            "collect per-element values with name.append(x) on a list"
            " the flow names, or with a comprehension",
        )

    def __repr__(self):
        return "<element of the loop at line %d>" % site(self.frame.site_id).line


class Appended(Deferred):
    """A list a loop over a task result grows: the list before the loop, and
    the items one iteration appends (each with the guard it was appended
    under)."""

    __slots__ = ("base", "items", "frame")

    def __init__(self, base: list, frame):
        self.base = base
        self.items: list = []  # (guard, item, spread) triples
        self.frame = frame

    def add(self, guard, item, spread: bool = False) -> None:
        """One ``append`` (``extend`` with a task result when ``spread``)."""
        self.items.append((guard, item, spread))

    def jobs(self) -> list:
        return []

    def refuse(self, need: str = "", hint: str = "", span=None):
        raise FlowError.at(
            site(self.frame.site_id),
            "a list grown in a loop over a task result is used inside that"
            " loop; each element is handled on its own, so the list is"
            " whole only after the loop",
            "use the list after the loop, or compute what you need per element",
        )

    def encode_placeholder(self, encoder: Encoder) -> dict:
        self.refuse()


class TaskResult(Deferred):
    """The whole result of one job, as a flow sees it."""

    __slots__ = ("job",)

    def __init__(self, job: JobNode):
        self.job = job

    def jobs(self) -> list:
        return [self.job]

    def key(self, key, span: SourceSpan) -> Ref:
        if type(key) is not str:
            raise NeedsConcreteValue(
                span,
                "result keys must be strings written in the flow, found %s"
                % type(key).__name__,
                'write the key as a literal, e.g. result["value"]',
            )
        try:
            self.job.spec.check_result_key(key)
        except TypeError as error:
            raise FlowError.at(span, str(error)) from None
        return Ref(self.job, key)

    def __getitem__(self, key):
        return self.key(key, span_from_stack())

    def encode_placeholder(self, encoder: Encoder) -> dict:
        return encode_ref(self.job, None, encoder)

    def __repr__(self):
        return "<result of %s>" % self.job.describe()


class Ref(Deferred):
    """One key of one job's result."""

    __slots__ = ("job", "result_key")

    def __init__(self, job: JobNode, key: str):
        self.job = job
        self.result_key = key

    def jobs(self) -> list:
        return [self.job]

    def __getitem__(self, key):
        self.refuse(
            "subscripting it in ordinary code",
            "subscript it in the flow itself, where it becomes an expression node",
        )

    def encode_placeholder(self, encoder: Encoder) -> dict:
        return encode_ref(self.job, self.result_key, encoder)

    def __repr__(self):
        return "<%s[%r]>" % (self.job.describe(), self.result_key)


class FailedBranch(Deferred):
    """What a branch chosen at run time raised when the flow built it.

    Stored as a ``failed`` tag; the worker raises it only if the condition
    selects that branch, as eager Python would.
    """

    __slots__ = ("error", "site_id")

    def __init__(self, error: Exception, site_id: int):
        self.error = error
        self.site_id = site_id

    def jobs(self) -> list:
        return []

    def encode_placeholder(self, encoder: Encoder) -> dict:
        span = site(self.site_id)
        message = str(self.error)
        return {
            TAG: "failed",
            "type": type(self.error).__name__,
            "message": message[:2000],
            "site": [span.line, span.column + 1],
        }

    def __repr__(self):
        return "<failed branch: %s: %s>" % (type(self.error).__name__, self.error)


class NoValue(Deferred):
    """A name that has no value where it is used, refused there with why
    (:meth:`explanation`: message and hint)."""

    __slots__ = ("name", "detail", "site_id")

    def __init__(self, name: str, detail: str, site_id: int):
        self.name = name
        self.detail = detail
        self.site_id = site_id

    def jobs(self) -> list:
        return []

    def explanation(self) -> tuple[str, str]:
        raise NotImplementedError

    def refuse(self, need: str = "", hint: str = "", span=None):
        raise FlowError.at(span or span_from_stack(), *self.explanation())

    def encode_placeholder(self, encoder: Encoder) -> dict:
        self.refuse()


class LoopOnly(NoValue):
    """A name a loop over a task result binds to what cannot be stored (a
    function, a module, an open file; ``detail`` says which): usable in the
    loop's body, not after it, where its value would be the last element's,
    read from the run."""

    __slots__ = ()

    def explanation(self) -> tuple[str, str]:
        return (
            "%r is bound in the loop over a task result at line %d to something"
            " that cannot be stored (%s); after the loop its value would be the"
            " last element's, which the run must store"
            % (self.name, site(self.site_id).line, self.detail),
            "bind %r before the loop, or use it only inside the loop" % self.name,
        )

    def __repr__(self):
        return "<%s, usable in its loop only>" % self.name


class Unassigned(NoValue):
    """A name assigned in one branch of an ``if`` on a task result only
    (``detail`` names the other branch): after the ``if`` it has no value
    when the other branch is taken."""

    __slots__ = ()

    def explanation(self) -> tuple[str, str]:
        return one_branch_refusal(self.name, site(self.site_id).line, self.detail)

    def __repr__(self):
        return "<%s, assigned in one branch only>" % self.name


class Expr(Deferred):
    """An expression node: an ``ast`` tree over named inputs."""

    __slots__ = ("node", "inputs", "site_id", "_code")

    def __init__(self, node: ast.expr, inputs: dict, site_id: int):
        self.node = node
        self.inputs = inputs
        self.site_id = site_id
        self._code = None

    def jobs(self) -> list:
        found = {}
        for value in self.inputs.values():
            if isinstance(value, Deferred):
                for job in value.jobs():
                    found[job.index] = job
        return list(found.values())

    def code(self) -> tuple[str, list]:
        """The canonical code (inputs renamed _0, _1... by first use)."""
        if self._code is None:
            try:
                self._code = _canonical_code(self.node, self.inputs)
            except RecursionError:
                raise FlowError.at(
                    site(self.site_id),
                    "this expression on task results nests too deeply"
                    " to be stored as an expression node",
                    "compute it in several statements, or in a task",
                ) from None
        return self._code

    def encode_placeholder(self, encoder: Encoder) -> dict:
        code, order = self.code()
        inputs = {}
        for position, name in enumerate(order):
            try:
                inputs["_%d" % position] = encoder.encode(self.inputs[name])
            except NotStorableError as error:
                error.reason = "in expression `%s`: %s" % (code, error.reason)
                raise
        span = site(self.site_id)
        return {
            TAG: "expr",
            "code": code,
            "inputs": inputs,
            "site": [span.line, span.column + 1],
        }

    def __repr__(self):
        return "<expression `%s`>" % self.code()[0]


def _canonical_code(node: ast.expr, inputs: dict) -> tuple[str, list]:
    """The code of ``node`` with its inputs renamed ``_0``, ``_1``... by first
    use."""
    order: list[str] = []
    for name in _names_in_order(node, inputs):
        if name not in order:
            order.append(name)
    canonical = {name: "_%d" % position for position, name in enumerate(order)}
    return ast.unparse(_renamed(node, canonical)), order


def _renamed(node, canonical: dict):
    """A fresh copy of ``node`` with input names replaced. Shared subtrees are
    copied once per occurrence, so nothing is renamed twice."""
    if isinstance(node, ast.Name) and node.id in canonical:
        return ast.Name(canonical[node.id], ast.Load())
    if not isinstance(node, ast.AST):
        return node
    fields = {}
    for name, value in ast.iter_fields(node):
        if isinstance(value, list):
            fields[name] = [_renamed(item, canonical) for item in value]
        else:
            fields[name] = _renamed(value, canonical)
    return type(node)(**fields)


def _names_in_order(node: ast.AST, inputs: dict):
    """Input names in source order (depth-first, left to right)."""
    if isinstance(node, ast.Name) and node.id in inputs:
        yield node.id
    for child in ast.iter_child_nodes(node):
        yield from _names_in_order(child, inputs)


class HelperRef(Placeholder):
    """An expression helper an expression node calls (``expressions.py``):
    stored by module, name and revision, imported by the worker."""

    __slots__ = ("info",)

    def __init__(self, info):
        self.info = info

    def encode_placeholder(self, encoder: Encoder) -> dict:
        return {
            TAG: "helper",
            "module": self.info.module,
            "name": self.info.name,
            "revision": self.info.revision,
        }

    def __repr__(self):
        return "<expression helper %s>" % self.info.describe()
