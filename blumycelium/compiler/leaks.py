"""After a flow is built: task results left in state that outlives the build.

A flow that appends a result to a module-level list (``HISTORY.append(r)``),
assigns one to a global (``global LAST; LAST = r``) or stores one in a list
of an enclosing function leaves a reference to a job of this run where later
ordinary code will find it and have no value to read. The names the flow's
code reads from its globals and closure are looked at once the graph is
built (containers a level deep, and only the last items of large ones, where
appends land), and such a leak is refused like any other construct.
"""

from __future__ import annotations

import itertools

from .deferred import Deferred

_LOOKED_AT = 100  # items of a large container looked at, from its end


def leaked_name(function) -> str | None:
    """The first global or closure name of ``function`` that now holds a
    task result (directly or in a container); None when there is none."""
    code = function.__code__
    names = [
        (name, function.__globals__[name])
        for name in code.co_names
        if name in function.__globals__
    ]
    for name, cell in zip(code.co_freevars, function.__closure__ or ()):
        try:
            names.append((name, cell.cell_contents))
        except ValueError:  # an empty cell
            continue
    for name, value in names:
        if _holds_result(value, depth=2):
            return name
    return None


def _holds_result(value, depth: int) -> bool:
    if isinstance(value, Deferred):
        return True
    if depth == 0 or type(value) not in (list, tuple, dict, set):
        return False
    items = value.values() if type(value) is dict else value
    if type(value) is not set:
        items = reversed(items)  # appends and new keys land at the end
    return any(
        _holds_result(item, depth - 1) for item in itertools.islice(items, _LOOKED_AT)
    )
