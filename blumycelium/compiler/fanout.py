"""Run-time fan-out: loops and list comprehensions over task results.

``for x in items`` where ``items`` is a task result cannot be unrolled when
the flow is called: the number of elements is known only once the job that
makes ``items`` has run. So the loop body is built once, as a *template*,
with ``x`` an :class:`~.graph.Element` placeholder, and two system jobs are
added to the run:

- an **expand** job that depends on the iterable; a worker (of any elf) runs
  it when the iterable is known: it copies the template's jobs once per
  element, in order, with the element in place of the placeholder, and adds
  them to the run in one transaction, which also completes the expand job
  (so the expansion happens once even with many workers, and a worker that
  dies half-way leaves nothing: the job is handed to another);
- a **gather** job that depends on the expand job and, once expanded, on the
  copies: it collects, in order, what each iteration left in the names the
  body assigns (the last iteration's, as Python does) and the items the body
  appended to lists, dropping those whose branch was not taken.

After the loop, a name the body assigned is ``last[name] if count else
<value before the loop>``, and a list it grew is ``<list before the loop> +
appended[name]``, expression nodes over the gather job's result.

A loop nested in the template is itself an expand and a gather job of the
template, expanded when its own iterable is known. Names carried from one
iteration to the next (read before they are assigned, or assigned only in
some branches) are refused: a fan-out has no order between iterations to
carry them along; gather the values and combine them after the loop.
"""

from __future__ import annotations

import ast
import contextlib
import sys
import traceback

from ..errors import CompileError, NotStorableError
from ..evaluator import unpacked
from ..values import TAG, Encoder
from .branches import carried_refusal, kept_generator_refusal
from .control import UNDEFINED
from .deferred import (
    Appended,
    Deferred,
    Element,
    Expr,
    FailedBranch,
    FlowError,
    LoopOnly,
    NoValue,
    Ref,
    current_builder,
    is_rewritten,
    span_from_stack,
)
from .diagnostics import site
from .runtime import _expr, branch_guard, contains_deferred

_GATHER = "__bm_comprehension__"
_UNUSABLE = (type(UNDEFINED), NoValue)


def for_stmt(iterable, body, get_state, set_state, carried, grown, site_id: int):
    """A ``for`` statement, its body compiled into ``body(item)``.

    ``carried`` names are read before the body assigns them; ``grown`` lists
    are grown with ``append``/``extend`` (see ``rewrite.py``).
    """
    if not isinstance(iterable, Deferred):
        for item in iterable:
            body(item)
        return
    before = get_state() if get_state else {}
    # `total += x` counts as growing `total`: a list grows, a number is carried
    grown_numbers = {
        n for n in grown or () if not isinstance(before.get(n), (list, Expr, Appended))
    }
    _refuse_carried(set(carried or ()) | grown_numbers, before, site_id)
    _refuse_aliases({n: before[n] for n in grown or () if type(before.get(n)) is list})
    builder = current_builder()
    frame = builder.new_frame(site_id)
    with builder.looping(frame), builder.dynamic_scope(site_id, "loop"):
        if set_state:
            set_state(
                {n: _grown(v, frame) if n in grown else v for n, v in before.items()}
            )
        _build_template(frame, body, Element(frame, iterable))
    if frame.failure is not None and set_state:
        set_state(before)  # as after zero iterations; any element fails the run
    after = get_state() if get_state else {}
    gather = _fan_out(builder, frame, iterable, before, after, site_id)
    if set_state:
        unstorable = frame.unstorable  # usable in the loop only
        set_state(
            {
                name: LoopOnly(name, unstorable[name], site_id)
                if name in unstorable
                else _after_loop(name, before[name], after[name], gather, site_id)
                for name in before
            }
        )


def _refuse_aliases(grown: dict) -> None:
    """A list the loop grows is a new value after it (the gathered items):
    another name the flow holds for the same list, or a container of the
    flow holding it, would keep the list as it was, where Python would show
    the items. Refused, naming both."""
    if not grown:
        return
    for name, value in _flow_locals():
        for grown_name, grown_list in grown.items():
            if name != grown_name and _holds(value, grown_list, depth=2):
                raise FlowError.at(
                    span_from_stack(),
                    "%r holds the list %r, which this loop over a task"
                    " result grows; after the loop %r is a new"
                    " list (its items are known at run time), and %r"
                    " would still hold the list as it was"
                    % (name, grown_name, grown_name, name),
                    "use %r itself after the loop, or build %r from it"
                    " after the loop" % (grown_name, name),
                )


def _flow_locals():
    """The variables of the flow's frames being run (the flow and its
    nested branch and loop functions), innermost first."""
    frame = sys._getframe(2)
    while frame is not None:
        if is_rewritten(frame.f_code):
            for name, value in frame.f_locals.items():
                if not name.startswith("__bm"):
                    yield name, value
        frame = frame.f_back


def _holds(value, target: list, depth: int) -> bool:
    if value is target:
        return True
    if depth == 0 or type(value) not in (list, tuple, dict):
        return False
    items = value.values() if type(value) is dict else value
    return any(_holds(item, target, depth - 1) for item in items)


def _build_template(frame, body, element) -> None:
    """Build the loop body once, for the template. Ordinary code in it that
    raises (``1 / 0``, a missing key of a dict known now) would raise in
    Python only if the loop ran at least once: the failure is kept with the
    template, and the expansion fails when there is an element."""
    try:
        body(element)
    except CompileError:
        raise
    except Exception as error:
        frame.jobs = []
        frame.failure = {
            "type": type(error).__name__,
            "message": str(error),
            "traceback": "".join(traceback.format_exception(error)),
        }


def _grown(value, frame):
    """What the loop body appends to: a list of the flow (or one an earlier
    fan-out or expression computed), or, in a loop inside a loop over a task
    result, a list the outer loop grows (the inner loop's items are added to
    it as one ``extend``)."""
    if type(value) is list or isinstance(value, Expr):  # a list computed by the flow
        return Appended(value, frame)
    if isinstance(value, Appended):
        return Appended([], frame)
    return value


def comprehension(
    iterable, element, conditions, site_id: int, flat=False, pairs=False, generator=""
):
    """``[element(x) for x in iterable if c(x) ...]`` with ``conditions`` the
    ``if`` clauses in order. When ``flat``, ``element`` gives the list of an
    inner ``for`` clause and the lists are joined; when ``pairs``, the
    elements are key-value pairs and the value is a dict. A generator
    expression over a value known now is a generator, as in Python; over a
    task result, the list of the fan-out, which stands for the generator only
    where a call consumes it at once (``sum(x for x in ...)``)."""
    kind = (flat, pairs)
    builder = current_builder()
    if generator and not isinstance(iterable, Deferred):
        return _lazy(iter(iterable), element, conditions, site_id, flat)
    if generator == "kept" and builder is not None:
        raise _kept_generator(site_id, iterable)
    if builder is None:
        items = [element(x) for x in iterable if all(c(x) for c in conditions or ())]
        return _shaped(items, kind, site_id)
    if not isinstance(iterable, Deferred):
        return _unrolled(builder, iterable, element, conditions, site_id, kind)
    frame = builder.new_frame(site_id)
    collected = Appended([], frame)
    with builder.looping(frame):
        _build_template(
            frame,
            lambda item: _collect(
                builder, item, element, conditions, site_id, collected.items
            ),
            Element(frame, iterable),
        )
    if frame.failure is not None:
        collected.items.clear()
    gather = _fan_out(
        builder, frame, iterable, {_GATHER: []}, {_GATHER: collected}, site_id
    )
    return _shaped(_after_loop(_GATHER, [], collected, gather, site_id), kind, site_id)


def _kept_generator(site_id: int, iterable) -> FlowError:
    return FlowError.at(site(site_id), *kept_generator_refusal(iterable.origin()))


def _lazy(iterator, element, conditions, site_id: int, flat: bool):
    """A generator expression over a value known now: elements are built
    when they are asked for, as Python builds them."""
    for item in iterator:
        if not all(_lazy_test(condition(item), site_id) for condition in conditions):
            continue
        value = element(item)
        if not flat:
            yield value
            continue
        if isinstance(value, Deferred):
            raise _not_lazy(site_id, "an inner `for` over a task result")
        yield from value


def _lazy_test(test, site_id: int):
    if isinstance(test, Deferred):
        raise _not_lazy(site_id, "an `if` on a task result")
    return test


def _not_lazy(site_id: int, what: str) -> FlowError:
    return FlowError.at(
        site(site_id),
        "this generator expression over a value known now has %s; a"
        " generator yields its elements one by one as they are asked"
        " for, and whether this one yields needs the task result" % what,
        "write a list comprehension [...], which keeps each element"
        " under its condition until the run knows it",
    )


def _collect(builder, item, element, conditions, site_id: int, into: list) -> None:
    """Append ``(guard, element(item))`` to ``into`` unless a static condition
    is false; a condition on a task result guards the element and what follows."""
    with contextlib.ExitStack() as stack:
        for condition in conditions or ():
            test = condition(item)
            if isinstance(test, Deferred):
                stack.enter_context(builder.guarded(branch_guard(test, True, site_id)))
            elif not test:
                return
        guard = builder.guards[-1] if builder.guards else None
        into.append((guard, element(item), False))


def _unrolled(builder, iterable, element, conditions, site_id: int, kind: str):
    """A comprehension over a value known now: unrolled, and where a condition
    depends on a task result, each element kept or not when the run knows it."""
    outer = builder.guards[-1] if builder.guards else None
    parts: list = []
    for item in iterable:
        _collect(builder, item, element, conditions, site_id, parts)
    if all(guard is outer for guard, _, _ in parts):
        return _shaped([value for _, value, _ in parts], kind, site_id)
    flat, pairs = kind
    pieces = [
        _kept_if(guard, value if flat else [value], site_id)
        if guard is not outer
        else (value if flat else [value])
        for guard, value, _ in parts
    ]
    joined = _expr(
        lambda *nodes: _sum_of(ast.List(list(nodes), ast.Load())), site_id, *pieces
    )
    return _shaped(joined, (False, pairs), site_id)


def _kept_if(guard, piece, site_id: int):
    """``piece if guard else []``."""
    return _expr(
        lambda g, p: ast.IfExp(g, p, ast.List([], ast.Load())), site_id, guard, piece
    )


def _shaped(items, kind: tuple, site_id: int):
    """The list of gathered elements as the comprehension's value."""
    flat, pairs = kind
    if flat:
        if isinstance(items, list) and not any(isinstance(i, Deferred) for i in items):
            items = [value for part in items for value in part]
        else:
            items = _expr(_sum_of, site_id, items)
    if not pairs:
        return items
    if isinstance(items, list) and not contains_deferred([k for k, _ in items]):
        return dict(items)
    return _expr(
        lambda a: ast.Call(ast.Name("dict", ast.Load()), [a], []), site_id, items
    )


def _sum_of(lists: ast.expr) -> ast.expr:
    """``sum(lists, [])``: the lists joined end to end."""
    return ast.Call(ast.Name("sum", ast.Load()), [lists, ast.List([], ast.Load())], [])


def unpack(item, count: int, site_id: int, star: int = -1):
    """``a, b = item`` (or ``a, *b = item`` with ``star`` 1) in a loop body:
    an element split by position, checked as Python checks it."""
    if isinstance(item, Element):
        return tuple(
            _expr(
                lambda a, i=i: ast.Subscript(
                    ast.Call(
                        ast.Name("unpacked", ast.Load()),
                        [a, ast.Constant(count), ast.Constant(star)],
                        [],
                    ),
                    ast.Constant(i),
                    ast.Load(),
                ),
                site_id,
                item,
            )
            for i in range(count)
        )
    return unpacked(item, count, star)


# -- the template and its two system jobs -------------------------------------------


def _fan_out(builder, frame, iterable, before: dict, after: dict, site_id: int):
    """Add the expand and gather jobs of a built loop; return the gather job."""
    encoder = Encoder()
    iterable_value = encoder.encode(iterable)
    expand = builder.add_system_job(
        "expand", site_id, {"iterable": iterable_value}, encoder.refs
    )
    gather = builder.add_system_job("gather", site_id, {"iterations": []}, {expand.key})
    with builder.looping(frame):
        expand.arguments["template"] = _template(frame, before, after, gather)
    return gather


def _template(frame, before: dict, after: dict, gather) -> dict:
    encoder = Encoder()
    values, appends = {}, {}
    for name in before:
        value = after[name]
        if isinstance(value, Appended):
            appends[name] = [
                [
                    None if guard is None else encoder.encode(guard),
                    encoder.encode(item),
                    spread,
                ]
                for guard, item, spread in value.items
            ]
        elif value is not before[name] and not isinstance(value, _UNUSABLE):
            try:
                values[name] = encoder.encode(value)
            except NotStorableError as error:
                frame.unstorable[name] = error.reason
    return {
        "loop": frame.id,
        "failure": frame.failure,
        "jobs": [_template_job(job) for job in frame.jobs],
        "gather": {
            "job": encoder.encode(Ref(gather, None)),
            "values": values,
            "appends": appends,
        },
    }


def _template_job(job) -> dict:
    return {
        "index": job.index,
        "elf_uid": job.elf_uid,
        "task": job.task,
        "task_revision": job.spec.revision,
        "site": job.site_record(),
        "parameters": [
            [name, value, name in job.deferred_arguments]
            for name, value in job.arguments.items()
        ],
        "dependencies": sorted(
            (
                d
                if isinstance(d, int)
                else {TAG: "ref", "job": d[1], "key": None, "loop": d[0]}
                for d in job.dependencies
            ),
            key=str,
        ),
        "max_attempts": job.spec.retry.max_attempts,
        "guard": job.guard,
    }


def _after_loop(name: str, before, after, gather, site_id: int):
    """What a name holds after the loop, from the gather job's result."""
    count = Ref(gather, "count")
    if isinstance(after, Appended):
        appended = _expr(
            lambda a: ast.Subscript(a, ast.Constant(name), ast.Load()),
            site_id,
            Ref(gather, "appended"),
        )
        if isinstance(before, Appended):  # grown by an enclosing fan-out too
            builder = current_builder()
            before.add(builder.guards[-1] if builder.guards else None, appended, True)
            return before
        if type(after.base) is list and not after.base:
            return appended
        return _expr(
            lambda b, a: ast.BinOp(b, ast.Add(), a), site_id, after.base, appended
        )
    if after is before or isinstance(after, NoValue):
        return after  # a name with no value stays refused wherever it is used
    last = _expr(
        lambda a: ast.Subscript(a, ast.Constant(name), ast.Load()),
        site_id,
        Ref(gather, "last"),
    )
    otherwise = (
        before
        if before is not UNDEFINED
        else FailedBranch(
            UnboundLocalError(
                "%r is not bound: the loop at line %d ran zero times"
                % (name, site(site_id).line)
            ),
            site_id,
        )
    )
    return _expr(lambda c, a, b: ast.IfExp(c, a, b), site_id, count, last, otherwise)


def _refuse_carried(carried, before: dict, site_id: int) -> None:
    names = [
        n
        for n in carried or ()
        if before.get(n, UNDEFINED) is not UNDEFINED and type(before[n]) is not list
    ]
    if names:
        message, hint = carried_refusal(names)
        raise FlowError.at(site(site_id), message, hint)
