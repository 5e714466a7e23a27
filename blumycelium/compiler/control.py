"""The dispatcher's control flow: ``if`` statements, list growth, the tests
and iterations that need a value now, and scopes.

``if_stmt`` is AutoGraph's: the rewrite (``branches.py``) hands it the two
branches as functions and the state of the names they assign; a static test
runs one branch, a test on a task result builds both, each under its guard,
and merges what they assigned. ``list_append``, ``list_extend`` and
``with_item`` stand for ``name.append(x)``, ``name.extend(x)`` and
``name[k] = v``: in place, as Python does, except inside a branch built on a
task result, where each branch grows its own copy.
"""

from __future__ import annotations

import ast
import sys

from ..errors import BlumyceliumError
from .branches import FAN_OUT_HINT, FAN_OUT_REFUSALS, IN_PLACE
from .calls import call
from .deferred import (
    Appended,
    Deferred,
    Expr,
    FlowError,
    Unassigned,
    current_builder,
)
from .diagnostics import site
from .runtime import (
    _expr,
    _in_branch,
    _needs_now,
    attribute,
    binop,
    branch_guard,
)
from .runtime import inplace as _inplace

# -- if statements -------------------------------------------------------------------


class _Undefined:
    """What a name holds when it is not bound (see :func:`read`)."""

    def __repr__(self):
        return "UNDEFINED"


UNDEFINED = _Undefined()


def now(value):
    """``value``, computed already, handed on as the function giving it."""
    return lambda: value


def read(value_of):
    """The value of a name, or UNDEFINED when it is not bound yet."""
    try:
        return value_of()
    except NameError:
        return UNDEFINED


def if_stmt(test, then_branch, else_branch, get_state, set_state, site_id: int):
    """An ``if`` statement, its branches compiled into functions.

    A static test runs one branch, as Python does. A test on a task result
    builds both, each under its guard, starting from the same state; after
    them a name the branches left different holds a select expression
    (``then if test else otherwise``), and a name only one of them assigned
    holds an :class:`~.graph.Unassigned` that refuses to be used.
    """
    if not isinstance(test, Deferred):
        then_branch() if test else else_branch()
        return
    before = get_state() if get_state else {}
    with current_builder().dynamic_scope(site_id, "branch"):
        _build_branch(then_branch, branch_guard(test, True, site_id), "if", site_id)
        after_then = get_state() if get_state else {}
        if set_state:
            set_state(before)
        _build_branch(else_branch, branch_guard(test, False, site_id), "else", site_id)
        after_else = get_state() if get_state else {}
    if set_state:
        set_state(
            {
                name: _merged(name, test, after_then[name], after_else[name], site_id)
                for name in before
            }
        )


def _build_branch(branch, condition, which: str, site_id: int) -> None:
    with current_builder().guarded(condition):
        try:
            branch()
        except BlumyceliumError:
            raise
        except Exception as error:
            raise FlowError.at(
                site(site_id),
                "the %s branch of this `if` raised %s: %s while the flow was"
                " built; a branch decided by a task result is built at"
                " submit time"
                " whichever way the result goes" % (which, type(error).__name__, error),
                "make the branch safe to build for any result, or move what may"
                " fail into a task",
            ) from error


def _merged(name: str, test, then_value, else_value, site_id: int):
    if then_value is else_value:
        return then_value
    if then_value is UNDEFINED or else_value is UNDEFINED:
        missing = "else" if else_value is UNDEFINED else "if"
        return Unassigned(name, missing, site_id)
    return _expr(
        lambda t, a, b: ast.IfExp(t, a, b), site_id, test, then_value, else_value
    )


def list_append(target, item, site_id: int):
    """``target.append(item)``: in place, or a new list inside a branch built
    on a task result (both branches must start from the same list), or an
    item gathered per element in a loop over a task result."""
    if isinstance(target, Appended):
        target.add(_current_guard(), item)
        return target
    if isinstance(target, Expr):  # a list the flow computed: grow a new one
        return binop(target, [item], "+", site_id)
    if _in_branch() and type(target) is list:
        return target + [item]
    call(attribute(target, "append", site_id), site_id, item)
    return target


def list_extend(target, items, site_id: int):
    """``target.extend(items)``, like :func:`list_append`; in a loop over a
    task result, ``items`` may be a task result too."""
    if isinstance(target, Appended):
        if isinstance(items, Deferred):
            target.add(_current_guard(), items, spread=True)
        else:
            for item in iterable(items, site_id):
                target.add(_current_guard(), item)
        return target
    if isinstance(target, Expr):
        return binop(target, items, "+", site_id)
    if _in_branch() and type(target) is list:
        return target + list(iterable(items, site_id))
    call(attribute(target, "extend", site_id), site_id, items)
    return target


def inplace(target, value, op: str, site_id: int):
    """``target op= value``; ``out += items`` in a loop over a task result
    grows ``out`` per element, as ``out.extend(items)`` does."""
    if isinstance(target, Appended) and op == "+=":
        return list_extend(target, value, site_id)
    return _inplace(target, value, op, site_id)


def _current_guard():
    builder = current_builder()
    return builder.guards[-1] if builder.guards else None


def with_item(target, key, value, site_id: int):
    """``target[key] = value``, like :func:`list_append`."""
    if _in_branch() and type(target) in (list, dict):
        changed = target.copy()
        changed[key] = value
        return changed
    if isinstance(target, Deferred):
        target.read_only("assigning an item of")
    target[key] = value
    return target


# -- control flow that needs a value now ---------------------------------------


def test(value, site_id: int, keyword: str, escape: str = ""):
    """A test that must be static: a ``while``, or an ``if`` whose branches hold
    ``escape`` (return, break...), which cannot depend on a task result."""
    if not isinstance(value, Deferred):
        return value
    if escape:
        raise _needs_now(
            site_id,
            value,
            "`%s`" % keyword,
            extra="; this `%s` holds `%s`, which cannot depend on a task result"
            % (keyword, escape),
            hint="assign a variable in each branch and %s after the `if`, or"
            " decide inside a task" % ("return it" if escape == "return" else "use it"),
        )
    if keyword == "while":
        raise _needs_now(
            site_id,
            value,
            "`while`",
            hint="a `while` cannot loop on a task result: loop over"
            " a result with `for`, or let a task do the looping",
        )
    raise _needs_now(site_id, value, "`%s`" % keyword)


def iterate(value, site_id: int, reason: str = ""):
    """The iterable of a loop that runs now: a ``for`` or comprehension that
    cannot fan out over a task result, for ``reason``."""
    if not isinstance(value, Deferred):
        return value
    if not reason:
        raise _needs_now(site_id, value, "`for`")
    raise _needs_now(
        site_id,
        value,
        "this `for`",
        extra="; a loop over a task result runs one job per element, and this"
        " one cannot: %s" % FAN_OUT_REFUSALS[reason],
        hint=FAN_OUT_HINT,
    )


def iterable(value, site_id: int):
    if isinstance(value, Deferred):
        raise _needs_now(site_id, value, "unpacking")
    return value


def mapping(value, site_id: int):
    if isinstance(value, Deferred):
        raise _needs_now(site_id, value, "`**` unpacking")
    return value


def concrete(value, site_id: int, what: str):
    if isinstance(value, Deferred):
        raise _needs_now(site_id, value, what)
    return value


# -- scopes ----------------------------------------------------------------------


def local_function(function):
    """Mark a function defined inside a flow: it is rewritten too."""
    function.__blumycelium_local__ = True
    return function


def returned(value, site_id: int):
    builder = current_builder()
    if builder is not None:
        builder.return_site = site_id
    return value


def enter_try(first: int, last: int) -> None:
    """The ``try`` whose body is lines ``first`` to ``last`` of the calling
    frame begins: while that frame runs those lines, task calls are inside
    it (see ``GraphBuilder.in_try``). No block marks the body, so a flow may
    nest as many ``try`` statements as Python allows."""
    builder = current_builder()
    if builder is not None:
        entry = (sys._getframe(1), first, last)
        if entry not in builder.try_frames:
            builder.try_frames.append(entry)


def mutable(value, scopes: tuple, name: str, site_id: int):
    """The object a statement changes in place, reached through ``name``,
    which is bound outside the ``if``/``for`` statements ``scopes`` (their
    site ids): refused when one of them is being built on a task result."""
    builder = current_builder()
    if builder is None:
        return value
    for scope, kind in reversed(builder.dynamic_scopes):
        if scope in scopes:
            message, hint = IN_PLACE[kind]
            raise FlowError.at(site(site_id), message % name, hint)
    return value
