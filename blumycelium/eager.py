"""Eager mode: a flow run now, in this process, as plain Python.

``flow.eager(...)`` sets :data:`EAGER` while the original function runs; its
task calls are method calls. A run hands each task its arguments, and the
flow each result, through the store: as copies, taken at the call. Eager task
calls do the same (:func:`snapshot`), so that a flow that changes a list
after passing it to a task means the same eagerly and when submitted, and an
unstorable value is refused in both.
"""

from __future__ import annotations

import contextvars

from .values import decode, encode

EAGER: contextvars.ContextVar = contextvars.ContextVar(
    "blumycelium_eager", default=False
)


def snapshot(value, root: str = "value"):
    """``value`` as it comes back from the store: a copy, tuples kept."""
    return decode(encode(value, root))


def eager_call(function, elf, args: tuple, kwargs: dict):
    """A task called in eager mode: on copies of its arguments, its result
    a copy too."""
    args = tuple(snapshot(arg, "argument %d" % n) for n, arg in enumerate(args))
    kwargs = {name: snapshot(value, name) for name, value in kwargs.items()}
    return snapshot(function(elf, *args, **kwargs), "result")
