"""After a flow is built: task results left in state that outlives the build.

A flow that appends a result to a module-level list (``HISTORY.append(r)``),
assigns one to a global (``global LAST; LAST = r``) or to an attribute of a
global object, or stores one in a list of an enclosing function, in a
mutable default or in an argument it was given, leaves a reference to a job
of this run where later ordinary code will find it and have no value to
read. What the flow's code reads from its globals and closure, its defaults
and its arguments are looked at once the graph is built (containers and
objects two levels deep, and only the last items of large containers, where
appends land), and such a leak is refused like any other construct.
"""

from __future__ import annotations

import itertools
import types

from .deferred import Deferred

_LOOKED_AT = 100  # items of a large container looked at, from its end
_BUDGET = 20_000  # values looked at in all, per flow built


def leaked_name(function, arguments: dict | None = None) -> str | None:
    """Where ``function`` left a task result (directly, in a container or in
    an object's attribute): a global or closure name (quoted), a default or
    an argument; None when it left none."""
    code = function.__code__
    names = [
        (repr(name), function.__globals__[name])
        for name in code.co_names
        if name in function.__globals__
    ]
    for name, cell in zip(code.co_freevars, function.__closure__ or ()):
        try:
            names.append((repr(name), cell.cell_contents))
        except ValueError:  # an empty cell
            continue
    names += [("a default value", d) for d in function.__defaults__ or ()]
    names += [
        ("the default of %r" % k, d) for k, d in (function.__kwdefaults__ or {}).items()
    ]
    names += [("the argument %r" % k, v) for k, v in (arguments or {}).items()]
    budget = [_BUDGET]
    for name, value in names:
        if _holds_result(value, 3, budget):
            return name
    return None


def _holds_result(value, depth: int, budget: list) -> bool:
    """Whether ``value`` holds a task result within ``depth`` levels; looks
    at no more than ``budget[0]`` values in all (spent as it goes)."""
    budget[0] -= 1
    if isinstance(value, Deferred):
        return True
    if depth == 0 or budget[0] <= 0:
        return False
    if type(value) not in (list, tuple, dict, set):
        if isinstance(value, (type, types.ModuleType)):
            return False
        value = getattr(value, "__dict__", None)  # an object's attributes
        if type(value) is not dict:
            return False
    items = value.values() if type(value) is dict else value
    if type(value) is not set:
        items = reversed(items)  # appends and new keys land at the end
    return any(
        _holds_result(item, depth - 1, budget)
        for item in itertools.islice(items, _LOOKED_AT)
    )
