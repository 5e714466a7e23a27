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

from .errors import NotStorableError
from .values import decode, encode

EAGER: contextvars.ContextVar = contextvars.ContextVar(
    "blumycelium_eager", default=False
)


def snapshot(value, root: str = "value"):
    """``value`` as it comes back from the store: a copy, tuples kept."""
    return decode(encode(value, root))


def eager_call(function, elf, args: tuple, kwargs: dict):
    """A task called in eager mode, as a run would call it: its arguments
    bound and checked against its signature and annotations, then copied;
    its result a copy too."""
    spec = type(elf).__blumycelium_tasks__.get(function.__name__)
    if spec is None:  # not one of the class's tasks (set on the instance)
        return snapshot(function(elf, *args, **kwargs), "result")
    values = {}
    for name, value in spec.bind(args, kwargs).items():
        try:
            values[name] = snapshot(value, name)
        except NotStorableError as error:  # named as submission names it
            error.root = "argument %s of %s" % (error.path, spec.call_name)
            error.segments = []
            raise
        spec.check_argument(name, values[name])
    args, kwargs = spec.split_arguments(values)
    return snapshot(function(elf, *args, **kwargs), "result of %s" % spec.call_name)
