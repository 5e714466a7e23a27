"""Compiling ``if`` statements into branches the dispatcher can build.

An ``if`` whose test may be a task result cannot be a Python ``if``: when the
test is deferred, both branches must be built (each under its guard) from
the same state, and the names they assign merged afterwards. So the rewrite
turns::

    if test:
        body
    else:
        orelse

into functions and one dispatcher call (AutoGraph's ``if_stmt``)::

    def __bm_then_3():
        nonlocal a, b
        body
    def __bm_else_3():
        nonlocal a, b
        orelse
    def __bm_get_3():
        return {'a': __blumycelium__.read(lambda: a), ...}
    def __bm_set_3(__bm_state):
        nonlocal a, b
        ...                       # rebind each name, or unbind it
    __blumycelium__.if_stmt(test, __bm_then_3, __bm_else_3, __bm_get_3,
                            __bm_set_3, site)

With a static test, ``if_stmt`` calls one branch, which is what Python does.
``nonlocal`` needs a binding of each name in the enclosing function, so the
rewrite adds a dead ``if False: a = b = None`` to that function.

An ``if`` that holds ``return``, ``break``, ``continue``, ``global``,
``nonlocal`` or ``yield`` in its branches stays a Python ``if``, whose test
must then be static (see ``scan.escape_in``).

This module holds what both the preview and the run say about branches and
loops; ``astbuild`` builds the functions above, and the questions (what a
block binds, carries, leaves by) are asked of Python's tree in ``scan`` and
of libcst's in ``cstscan``.
"""

from __future__ import annotations

FAN_OUT_REFUSALS = {
    "break": "its body holds `break`",
    "continue": "its body holds `continue`",
    "return": "its body holds `return`",
    "yield": "its body holds `yield`",
    "global": "its body declares a name `global`",
    "nonlocal": "its body declares a name `nonlocal`",
    "target": "it assigns each element to something other than plain names",
    "comprehension": "only list, dict and generator comprehensions fan out",
}
FAN_OUT_HINT = (
    "loop with plain names and without break, continue or return (decide"
    " inside a task, or filter with `if` in a comprehension), or pass the"
    " whole value to a task and loop inside it"
)


def kept_generator_refusal(origin: str) -> tuple[str, str]:
    """The message and hint refusing a generator expression over a task
    result (``origin`` describes it) that no call consumes at once."""
    return (
        "this generator expression runs over %s, so its elements are known"
        " only at run time, as one list; a generator kept in a name could be"
        " consumed twice or in part, which a list cannot mimic" % origin,
        "write a list comprehension [...], or pass the generator straight to"
        " the call that consumes it, e.g. sum(x for x in ...)",
    )


def carried_refusal(names: list[str]) -> tuple[str, str]:
    """The message and hint refusing names carried between the iterations of
    a loop over a task result."""
    return (
        "%s carried from one iteration to the next of a loop over a task"
        " result; its iterations run apart, one job per element, with no"
        " order to carry values along"
        % (", ".join(repr(n) for n in names) + (" is" if len(names) == 1 else " are")),
        "gather the per-element values in a list (a comprehension or"
        " results.append(...)) and combine them after the loop, e.g."
        " total = sum(values)",
    )


def one_branch_refusal(name: str, line: int, missing: str) -> tuple[str, str]:
    """Message and hint for a name an ``if`` on a task result binds in one
    branch only, used after it."""
    return (
        "%r is assigned in only one branch of the `if` at line %d (not in its %s"
        " branch), so after it %r has no value when the task result takes that"
        " branch" % (name, line, missing, name),
        "assign %r in both branches, or before the `if`" % name,
    )


# Changing in place an object bound before a branch or loop built on a task
# result (see mutation.py), by the kind of scope: message (of the name), hint.
IN_PLACE = {
    "branch": (
        "this changes %r in place inside a branch decided by a task result;"
        " both branches are built at submit time, so the change would happen"
        " whichever way the result goes",
        "assign a new value instead (box = box + [x], d = {**d, 'k': v}), or"
        " make the change in a task",
    ),
    "loop": (
        "this changes %r in place inside a loop over a task result; the loop's"
        " body is built once, as a template for every element, so the change"
        " would happen once, not once per element",
        "collect per-element values (out.append(x), or a comprehension) and"
        " combine them after the loop",
    ),
}
