"""Calls in a rewritten flow: ``call`` decides what each call of the flow
becomes (see ``runtime.py`` for the values it works on).

A task method makes a job; a flow the flow calls is built into it; an
expression helper or an allowed builtin given task results makes an
expression node (``any``/``all`` of a lazy generator stop at the item that
decides, as Python does); ``next``/``iter`` hand a generator's items on;
any other function given a task result needs its value now, which is
refused with where and why.
"""

from __future__ import annotations

import ast
import builtins
import types

from ..errors import BlumyceliumError
from ..evaluator import METHODS, MUTATING_METHODS
from ..expressions import helper_info
from .deferred import (
    _CURRENT,
    Deferred,
    Expr,
    FlowError,
    HelperRef,
    NeedsConcreteValue,
    current_builder,
)
from .diagnostics import site
from .graph import attempt, within
from .runtime import (
    _BUILTIN_BY_ID,
    _INPUT_IDS,
    _LAZY_BUILTINS,
    _LAZY_ITERATORS,
    _STORING_METHODS,
    _STRUCTURAL,
    _expr,
    _in_branch,
    _needs_now,
    contains_deferred,
    operand,
)


def call(function, site_id: int, /, *args, **kwargs):
    if type(function) is types.MethodType:
        spec = _task_spec(function)
        if spec is not None:
            builder = _CURRENT.get(None)
            if builder is None:
                raise RuntimeError("rewritten flow code ran outside a flow call")
            return builder.add_job(function.__self__, spec, args, kwargs, site_id)
    if isinstance(function, Deferred):
        return _call_deferred(function, args, kwargs, site_id)
    if getattr(function, "__blumycelium_flow__", False):
        return _inline_flow(function, args, kwargs, site_id)
    helper = helper_info(function)
    if helper is not None:
        return _call_helper(function, helper, args, kwargs, site_id)
    name = _BUILTIN_BY_ID.get(id(function))
    if name is not None:
        return _call_builtin(name, function, args, kwargs, site_id)
    if _in_branch():
        _refuse_change_in_branch(function, site_id)
    if _accepts_deferred(function) or _hands_on(function, args):
        return function(*args, **kwargs)
    if isinstance(function, types.BuiltinFunctionType):
        args = _materialized(args)  # so that deferred items can be seen
    if _has_deferred(args, kwargs):
        return _call_with_deferred(function, args, kwargs, site_id)
    return within(site_id, function, args, kwargs)


def _call_helper(function, helper, args, kwargs, site_id: int):
    """An expression helper: called now on values known now, else an
    expression node the worker evaluates by importing the helper."""
    args = _materialized(args)
    if not _has_deferred(args, kwargs):
        return within(site_id, function, args, kwargs)
    if helper.module == "__main__":
        raise FlowError.at(
            site(site_id),
            "expression helper %s is defined in the script being run"
            " (__main__), which a worker cannot import" % helper.name,
            "define the helper in a module the flow imports",
        )
    name = "_%d" % next(_INPUT_IDS)
    target = Expr(ast.Name(name, ast.Load()), {name: HelperRef(helper)}, site_id)
    return _call_expr(target, args, kwargs, site_id)


MAX_FLOW_RECURSION = 50


def _inline_flow(flow, args, kwargs, site_id: int):
    """A flow called by the flow being built: its graph is built into the
    caller's (its jobs keep their own call sites and this one)."""
    builder = current_builder()
    try:
        compiled, args, kwargs = within(
            site_id, flow.__blumycelium_inline__, (args, kwargs), {}
        )
    except BlumyceliumError:
        raise
    except TypeError as error:  # arguments that do not fit its signature
        raise FlowError.at(site(site_id), str(error)) from None
    depth = [key for key, _ in builder.inlined].count(compiled.key)
    if depth >= MAX_FLOW_RECURSION:
        names = [name for _, name in builder.inlined]
        raise FlowError.at(
            site(site_id),
            "flow %s calls itself %d levels deep (%s → ...); a run's graph"
            " is built before it runs, so only recursion on values known"
            " at submit time unrolls, and at most %d levels of it"
            % (compiled.name, depth, " → ".join(names[:4]), depth),
            "stop the recursion sooner on an argument known when the"
            " flow is called, loop instead, or let a task recurse",
        )
    return_site = builder.return_site
    builder.inlining.append(site_id)
    builder.inlined.append((compiled.key, compiled.name))
    try:
        value = compiled.call(args, kwargs)
        compiled.refuse_leaks()  # its arguments hold the caller's values
        return value
    finally:
        builder.inlining.pop()
        builder.inlined.pop()
        builder.return_site = return_site


def _task_spec(method):
    if not getattr(method.__func__, "__blumycelium_task__", False):
        return None
    specs = getattr(type(method.__self__), "__blumycelium_tasks__", {})
    return specs.get(method.__func__.__name__)


def _call_deferred(function, args, kwargs, site_id: int):
    if isinstance(function, Expr) and isinstance(function.node, ast.Attribute):
        return _call_expr(function, args, kwargs, site_id)
    raise _needs_now(site_id, function, "calling it")


def _call_expr(function: Expr, args, kwargs, site_id: int) -> Expr:
    inputs = dict(function.inputs)
    arg_nodes = [operand(arg, inputs, site_id) for arg in _materialized(args)]
    keywords = [
        ast.keyword(key, operand(value, inputs, site_id))
        for key, value in kwargs.items()
    ]
    return Expr(ast.Call(function.node, arg_nodes, keywords), inputs, site_id)


def _call_builtin(name, function, args, kwargs, site_id: int):
    if name in _LAZY_BUILTINS and not any(
        isinstance(a, Deferred) for a in (*args, *kwargs.values())
    ):
        # zip() and enumerate() of values known now stay lazy, as in Python:
        # their items may hold task results and flow on as such
        return within(site_id, function, args, kwargs)
    if name in _DECIDING and len(args) == 1 and not kwargs:
        if isinstance(args[0], _LAZY_ITERATORS):
            return _short_circuit(name, function, args[0], site_id)
    args = _materialized(args)
    if not _has_deferred(args, kwargs):
        return within(site_id, function, args, kwargs)
    if name == "bool":
        raise _needs_now(site_id, _first_deferred(args, kwargs), "bool()")
    if name in _STRUCTURAL and not any(isinstance(a, Deferred) for a in args):
        try:
            return attempt(function, *args, **kwargs)
        except NeedsConcreteValue:
            pass
    target = Expr(ast.Name(name, ast.Load()), {}, site_id)
    return _call_expr(target, args, kwargs, site_id)


# any() and all() stop at the first element that decides, as in Python.
_DECIDING = {"any": True, "all": False}
# Items any()/all() take once one is a task result (each may make jobs).
MOST_UNDECIDED = 10_000


def _endless(name: str, site_id: int) -> FlowError:
    return FlowError.at(
        site(site_id),
        "%s() of this generator would stop at the first item that"
        " decides, but its items are task results, known only when"
        " their jobs have run, so every item must be built, and it has"
        " more than %d" % (name, MOST_UNDECIDED),
        "bound the generator (itertools.islice), or decide in a task",
    )


def _short_circuit(name, function, iterator, site_id: int):
    """``any``/``all`` of a lazy iterator: its items are taken one by one
    until one known now decides, as Python stops there; the task results
    met before it cannot decide now, so when none does, the answer is an
    expression node over them (at most MOST_UNDECIDED of them)."""
    deciding = _DECIDING[name]
    undecided = []
    for item in iterator:
        if contains_deferred(item):
            undecided.append(item)
            if len(undecided) > MOST_UNDECIDED:
                raise _endless(name, site_id)
        elif bool(item) is deciding:
            return deciding
    if undecided:
        return _call_builtin(name, function, [undecided], {}, site_id)
    return not deciding


def _call_with_deferred(function, args, kwargs, site_id: int):
    owner = getattr(function, "__self__", None)
    method = getattr(function, "__name__", "")
    if type(owner) in METHODS and not isinstance(function, types.MethodType):
        if method not in METHODS[type(owner)]:
            hint = (
                "use an f-string"
                if method in ("format", "format_map")
                else "compute it inside a task"
            )
            raise FlowError.at(
                site(site_id),
                "%s.%s() is not a method expression nodes allow on task results"
                % (type(owner).__name__, method),
                hint,
            )
        target = _expr(lambda a: ast.Attribute(a, method, ast.Load()), site_id, owner)
        return _call_expr(target, args, kwargs, site_id)
    deferred = _first_deferred(args, kwargs)
    what = "print()" if function is builtins.print else "%s()" % _name_of(function)
    hint = (
        "pass the value to a task that prints it"
        if function is builtins.print
        else "make it a task of an elf (a task_* method), or write the"
        " computation in the flow itself, where it becomes an expression node"
    )
    raise NeedsConcreteValue(
        site(site_id),
        "%s is ordinary code run at submit time; calling it with %s needs that"
        " value now, but it is known only when that job has run"
        % (what, deferred.origin()),
        hint,
    )


def _refuse_change_in_branch(function, site_id: int) -> None:
    """Changing a container in a branch built on a task result would change it
    for the other branch too: both are built, from the same objects."""
    owner = getattr(function, "__self__", None)
    name = getattr(function, "__name__", "")
    if type(owner) in (list, dict, set) and name in MUTATING_METHODS:
        raise FlowError.at(
            site(site_id),
            "%s.%s() inside a branch decided by a task result would change the"
            " %s for the other branch too (both branches are built at submit"
            " time)" % (type(owner).__name__, name, type(owner).__name__),
            "build a new value instead, e.g. items = items + [x], or use a list"
            " local to the function, which `items.append(x)` grows branch by"
            " branch",
        )


def _accepts_deferred(function) -> bool:
    if getattr(function, "__blumycelium_local__", False):
        return True
    if getattr(function, "__blumycelium_accepts_deferred__", False):
        return True
    owner = getattr(function, "__self__", None)
    storing = _STORING_METHODS.get(type(owner))
    return storing is not None and getattr(function, "__name__", "") in storing


def _hands_on(function, args) -> bool:
    """``next(g)``/``iter(g)`` of a generator the flow made: the items are
    handed on untouched (and the generator stays lazy)."""
    return (function is next or function is iter) and not any(
        isinstance(a, Deferred) for a in args
    )


def _has_deferred(args, kwargs) -> bool:
    return any(contains_deferred(a) for a in args) or any(
        contains_deferred(v) for v in kwargs.values()
    )


def _first_deferred(args, kwargs) -> Deferred:
    stack = list(args) + list(kwargs.values())
    while stack:
        value = stack.pop(0)
        if isinstance(value, Deferred):
            return value
        if isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    raise AssertionError("no deferred value in the arguments")


def _materialized(args) -> list:
    return [list(a) if isinstance(a, _LAZY_ITERATORS) else a for a in args]


def _name_of(function) -> str:
    return getattr(function, "__qualname__", None) or type(function).__name__
