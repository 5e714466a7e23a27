"""The dispatcher a rewritten flow calls for every operation on a value.

The rewrite pass (``rewrite.py``) turns ``a + b`` into
``__blumycelium__.binop(a, b, "+", 7)`` and so on, where ``__blumycelium__``
is ``ops.py`` (over this module and its neighbours) and ``7`` a site id (see
``diagnostics.py``). Each function here computes plain Python when none of
its inputs is deferred, and records
an expression node (:class:`~.graph.Expr`) otherwise. Control flow whose
value must be known now (``if``/``while`` tests, ``for`` iterables, unpacking)
goes through :func:`test` and :func:`iterate`, which refuse deferred values
with a located CompileError. Calls go through ``calls.call``, which turns
task calls into jobs, builtins over deferred values into expression nodes,
and refuses ordinary functions that would need a deferred value's concrete
value.

Static attempts come first: a static operation that touches a deferred value
buried in a container (``x in [r["a"], 2]``) raises NeedsConcreteValue inside
Python, and the operation is then recorded as an expression node instead.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import math
import operator
import types

from ..errors import BlumyceliumError, NotStorableError
from ..evaluator import METHOD_NAMES, METHODS, MUTATING_METHODS, SAFE_BUILTINS
from ..tasks import did_you_mean
from ..values import MAX_EXACT_INT, encode
from .deferred import (
    Deferred,
    Expr,
    FailedBranch,
    FlowError,
    NeedsConcreteValue,
    NoValue,
    TaskResult,
    current_builder,
)
from .diagnostics import site
from .graph import attempt

_INPUT_IDS = itertools.count()

_BINARY = {
    "+": (operator.add, ast.Add),
    "-": (operator.sub, ast.Sub),
    "*": (operator.mul, ast.Mult),
    "/": (operator.truediv, ast.Div),
    "//": (operator.floordiv, ast.FloorDiv),
    "%": (operator.mod, ast.Mod),
    "**": (operator.pow, ast.Pow),
    "<<": (operator.lshift, ast.LShift),
    ">>": (operator.rshift, ast.RShift),
    "|": (operator.or_, ast.BitOr),
    "^": (operator.xor, ast.BitXor),
    "&": (operator.and_, ast.BitAnd),
    "@": (operator.matmul, None),
}
_INPLACE = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "|=": operator.ior,
    "^=": operator.ixor,
    "&=": operator.iand,
    "@=": operator.imatmul,
}
_UNARY = {
    "-": (operator.neg, ast.USub),
    "+": (operator.pos, ast.UAdd),
    "~": (operator.invert, ast.Invert),
    "not": (operator.not_, ast.Not),
}
_COMPARE = {
    "==": (operator.eq, ast.Eq),
    "!=": (operator.ne, ast.NotEq),
    "<": (operator.lt, ast.Lt),
    "<=": (operator.le, ast.LtE),
    ">": (operator.gt, ast.Gt),
    ">=": (operator.ge, ast.GtE),
    "is": (operator.is_, ast.Is),
    "is not": (operator.is_not, ast.IsNot),
    "in": (lambda a, b: a in b, ast.In),
    "not in": (lambda a, b: a not in b, ast.NotIn),
}
_BUILTIN_BY_ID = {id(function): name for name, function in SAFE_BUILTINS.items()}
# Builtins that only rearrange their arguments: on a static container holding
# deferred values they run now (len([r["a"], r["b"]]) is 2 at submit time).
_STRUCTURAL = frozenset(
    {"len", "list", "tuple", "dict", "zip", "enumerate", "reversed"}
)
_LAZY_ITERATORS = (types.GeneratorType, map, filter, zip, enumerate, reversed)
_LAZY_BUILTINS = frozenset({"zip", "enumerate"})
_STORING_METHODS = {
    list: {"append", "insert", "extend", "__setitem__"},
    dict: {"__setitem__", "setdefault", "update"},
}
_SCALARS = frozenset({str, bool, type(None), int, float})
_MAX_LITERAL_LENGTH = 200


def is_deferred(value) -> bool:
    return isinstance(value, Deferred)


def contains_deferred(value) -> bool:
    """True when ``value`` is deferred or a container holding one (at any depth)."""
    if type(value) in _SCALARS:
        return False
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if isinstance(item, Deferred):
            return True
        if isinstance(item, (list, tuple, dict)) and id(item) not in seen:
            seen.add(id(item))
            items = item.values() if isinstance(item, dict) else item
            if not set(map(type, items)) <= _SCALARS:
                stack.extend(items)
    return False


# -- building expression nodes -------------------------------------------------


def operand(value, inputs: dict, site_id: int) -> ast.expr:
    """The ast of ``value`` inside an expression node, recording its inputs.

    Containers holding deferred values become displays in the tree, so that
    what they hold is evaluated only where the expression evaluates it (in a
    branch, say); other static values are captured as snapshots.
    """
    if isinstance(value, Expr):
        inputs.update(value.inputs)
        return value.node
    if _is_literal(value):
        if type(value) in (int, float) and (value < 0 or math.copysign(1, value) < 0):
            return ast.UnaryOp(ast.USub(), ast.Constant(-value))
        return ast.Constant(value)
    builtin = _BUILTIN_BY_ID.get(id(value))
    if builtin is not None:
        return ast.Name(builtin, ast.Load())
    display = _display(value, inputs, site_id)
    if display is not None:
        return display
    if not isinstance(value, Deferred):
        _check_captured(value, site_id)
        value = snapshot(value)
    name = "_%d" % next(_INPUT_IDS)
    inputs[name] = value
    return ast.Name(name, ast.Load())


def _display(value, inputs: dict, site_id: int) -> ast.expr | None:
    """A display for a container that holds deferred values, a set or a range."""
    kind = type(value)
    if kind in (list, tuple) and contains_deferred(value):
        elements = [operand(item, inputs, site_id) for item in value]
        return (
            ast.List(elements, ast.Load())
            if kind is list
            else ast.Tuple(elements, ast.Load())
        )
    if kind is dict and contains_deferred(value):
        return ast.Dict(
            [operand(k, inputs, site_id) for k in value],
            [operand(v, inputs, site_id) for v in value.values()],
        )
    if kind in (set, frozenset):
        if not value:
            return ast.Call(ast.Name("set", ast.Load()), [], [])
        items = sorted(value, key=repr)
        return ast.Set([operand(item, inputs, site_id) for item in items])
    if kind is range:
        bounds = [value.start, value.stop, value.step]
        return ast.Call(
            ast.Name("range", ast.Load()),
            [operand(b, inputs, site_id) for b in bounds],
            [],
        )
    return None


def snapshot(value):
    """A copy of a static value's containers, as it is now (leaves are shared)."""
    kind = type(value)
    if kind is list:
        return [snapshot(item) for item in value]
    if kind is tuple:
        return tuple(snapshot(item) for item in value)
    if kind is dict:
        return {key: snapshot(item) for key, item in value.items()}
    return value


def _check_captured(value, site_id: int) -> None:
    """A static value an expression node carries must be storable; say so here."""
    try:
        encode(value, "a value the expression uses")
    except NotStorableError as error:
        raise FlowError.at(
            site(site_id),
            str(error),
            "an expression on task results is evaluated on a worker, so the"
            " values it uses are stored with it",
        ) from None


def _is_literal(value) -> bool:
    kind = type(value)
    if kind is str:
        return len(value) <= _MAX_LITERAL_LENGTH
    if kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_EXACT_INT <= value <= MAX_EXACT_INT
    return kind is float and math.isfinite(value)


def _expr(build, site_id: int, *values) -> Expr:
    inputs: dict = {}
    nodes = [operand(value, inputs, site_id) for value in values]
    return Expr(build(*nodes), inputs, site_id)


# -- operators -----------------------------------------------------------------


def binop(left, right, op: str, site_id: int):
    if not (isinstance(left, Deferred) or isinstance(right, Deferred)):
        if op != "%" or not contains_deferred(right):
            try:
                return attempt(_BINARY[op][0], left, right)
            except NeedsConcreteValue:
                pass
    node_type = _BINARY[op][1]
    if node_type is None:
        raise _unsupported(site_id, "the operator %s" % op)
    return _expr(lambda a, b: ast.BinOp(a, node_type(), b), site_id, left, right)


def unop(value, op: str, site_id: int):
    function, node_type = _UNARY[op]
    if not isinstance(value, Deferred):
        return function(value)
    return _expr(lambda a: ast.UnaryOp(node_type(), a), site_id, value)


def compare(left, right, op: str, site_id: int):
    function, node_type = _COMPARE[op]
    if not (isinstance(left, Deferred) or isinstance(right, Deferred)):
        try:
            return attempt(function, left, right)
        except NeedsConcreteValue:
            pass
    return _expr(lambda a, b: ast.Compare(a, [node_type()], [b]), site_id, left, right)


def compare_chain(left, site_id: int, *pairs):
    """``a < b < c``: each operand once, stopping at the first static False."""
    deferred_parts = []
    for op, thunk in pairs:
        right = (
            _guarded(thunk, _all_of(deferred_parts, site_id), site_id)
            if deferred_parts
            else thunk()
        )
        part = compare(left, right, op, site_id)
        if isinstance(part, Deferred):
            deferred_parts.append(part)
        elif not part:
            return part
        left = right
    if not deferred_parts:
        return True
    return _expr(
        lambda *nodes: (
            ast.BoolOp(ast.And(), list(nodes)) if len(nodes) > 1 else nodes[0]
        ),
        site_id,
        *deferred_parts,
    )


def boolop(left, thunk, op: str, site_id: int):
    if not isinstance(left, Deferred):
        if bool(left) == (op == "and"):
            return thunk()
        return left
    right = _guarded(thunk, branch_guard(left, op == "and", site_id), site_id)
    node_type = ast.And if op == "and" else ast.Or
    return _expr(lambda a, b: ast.BoolOp(node_type(), [a, b]), site_id, left, right)


def ifexp(test_value, body, orelse, site_id: int):
    if not isinstance(test_value, Deferred):
        return body() if test_value else orelse()
    then_value = _guarded(body, branch_guard(test_value, True, site_id), site_id)
    else_value = _guarded(orelse, branch_guard(test_value, False, site_id), site_id)
    return _expr(
        lambda t, a, b: ast.IfExp(t, a, b), site_id, test_value, then_value, else_value
    )


def _guarded(thunk, condition, site_id: int):
    """Evaluate an operand Python evaluates only when ``condition`` holds.

    It must be evaluated now: jobs it creates are guarded by the condition
    (skipped at run time when it is false), and an exception it raises
    becomes a failure raised on the worker only if the condition selects it.
    """
    with current_builder().guarded(condition):
        try:
            return thunk()
        except BlumyceliumError:
            raise
        except Exception as error:
            return FailedBranch(error, site_id)


def branch_guard(test, positive: bool, site_id: int):
    """The condition of a branch: ``test`` (or its negation), and the
    condition of the branch being built around it."""
    condition = test if positive else unop(test, "not", site_id)
    builder = current_builder()
    if builder is not None and builder.guards:
        condition = _expr(
            lambda a, b: ast.BoolOp(ast.And(), [a, b]),
            site_id,
            builder.guards[-1],
            condition,
        )
    return condition


def _all_of(parts: list, site_id: int):
    if len(parts) == 1:
        return parts[0]
    return _expr(lambda *nodes: ast.BoolOp(ast.And(), list(nodes)), site_id, *parts)


def _in_branch() -> bool:
    builder = current_builder()
    return builder is not None and bool(builder.guards)


# -- subscripts and attributes -------------------------------------------------


class DeferredSlice:
    """A slice with a deferred bound; only meaningful as a subscript."""

    __slots__ = ("parts",)

    def __init__(self, parts):
        self.parts = parts


def make_slice(lower, upper, step):
    parts = (lower, upper, step)
    if any(isinstance(part, Deferred) for part in parts):
        return DeferredSlice(parts)
    return slice(lower, upper, step)


def getitem(value, key, site_id: int):
    if type(value) is TaskResult:
        if isinstance(key, (Deferred, DeferredSlice)):
            raise _needs_now(
                site_id, key if isinstance(key, Deferred) else value, "a result key"
            )
        return value.key(key, site(site_id))
    if not (isinstance(value, Deferred) or isinstance(key, (Deferred, DeferredSlice))):
        try:
            return attempt(operator.getitem, value, key)
        except NeedsConcreteValue:
            pass
    if isinstance(key, (slice, DeferredSlice)):
        return _slice_expr(value, key, site_id)
    return _expr(lambda a, b: ast.Subscript(a, b, ast.Load()), site_id, value, key)


def _slice_expr(value, key, site_id: int) -> Expr:
    parts = (
        key.parts if isinstance(key, DeferredSlice) else (key.start, key.stop, key.step)
    )
    present = [part for part in parts if part is not None]

    def build(target, *nodes):
        bounds = iter(nodes)
        lower, upper, step = (None if part is None else next(bounds) for part in parts)
        return ast.Subscript(target, ast.Slice(lower, upper, step), ast.Load())

    return _expr(build, site_id, value, *present)


def attribute(value, name: str, site_id: int):
    if not isinstance(value, Deferred):
        return builtins.getattr(value, name)
    if (
        isinstance(value, TaskResult)
        and name not in MUTATING_METHODS
        and name not in METHODS[dict]
    ):
        raise FlowError.at(
            site(site_id),
            "a task result has no attribute %r; its values are read by key" % name,
            "write result[%r]" % name,
        )
    if name in MUTATING_METHODS:
        raise FlowError.at(
            site(site_id),
            "%s() would change %s, which is a read-only snapshot"
            % (name, value.origin()),
            "build a new value instead, e.g. r['items'] + [x] or {**r['d'], 'k': v}",
        )
    if name not in METHOD_NAMES:
        raise FlowError.at(
            site(site_id),
            "%r is not a method expression nodes allow on JSON values%s"
            % (name, did_you_mean(name, METHOD_NAMES)),
            "use an f-string"
            if name in ("format", "format_map")
            else "compute it inside a task",
        )
    return _expr(lambda a: ast.Attribute(a, name, ast.Load()), site_id, value)


def _needs_now(
    site_id: int, value, need: str, extra: str = "", hint: str = ""
) -> NeedsConcreteValue:
    span = site(site_id)
    if isinstance(value, NoValue):
        value.refuse(span=span)  # a name that has no value here, said so
    return NeedsConcreteValue(
        span,
        "%s needs the value of `%s` at submit time, but it is %s, known only"
        " when that job has run%s" % (need, span.snippet(), value.origin(), extra),
        hint or "pass the value to a task and decide there",
    )


def _unsupported(site_id: int, what: str) -> FlowError:
    return FlowError.at(site(site_id), "%s is not supported yet" % what)


# -- assignments, strings, displays --------------------------------------------


def inplace(target, value, op: str, site_id: int):
    if not (isinstance(target, Deferred) or isinstance(value, Deferred)):
        try:
            return attempt(_INPLACE[op], target, value)
        except NeedsConcreteValue:
            pass
    return binop(target, value, op[:-1], site_id)


def inplace_item(container, key, value_of, op: str, site_id: int) -> None:
    """``container[key] op= value``: the item is read before ``value_of()``
    computes the value, as Python does."""
    current = getitem(container, key, site_id)
    container[key] = inplace(current, value_of(), op, site_id)


def inplace_attr(owner, name: str, value_of, op: str, site_id: int) -> None:
    current = attribute(owner, name, site_id)
    setattr(owner, name, inplace(current, value_of(), op, site_id))


def fstring(site_id: int, *parts):
    """An f-string: parts are literal str or (value, conversion, spec)."""
    if not any(
        type(part) is tuple
        and (contains_deferred(part[0]) or isinstance(part[2], Deferred))
        for part in parts
    ):
        return "".join(part if type(part) is str else _format(*part) for part in parts)
    inputs: dict = {}
    values = [
        ast.Constant(part)
        if type(part) is str
        else _formatted_node(part, inputs, site_id)
        for part in parts
    ]
    return Expr(ast.JoinedStr(values), inputs, site_id)


def _format(value, conversion, spec):
    if conversion == "r":
        value = repr(value)
    elif conversion == "s":
        value = str(value)
    elif conversion == "a":
        value = ascii(value)
    return format(value, spec or "")


def _formatted_node(part, inputs: dict, site_id: int) -> ast.FormattedValue:
    value, conversion, spec = part
    if spec is None or (type(spec) is str and not spec):
        spec_node = None
    elif isinstance(spec, Expr):
        inputs.update(spec.inputs)
        spec_node = spec.node
    else:
        spec_node = ast.JoinedStr([ast.Constant(spec)])
    code = ord(conversion) if conversion else -1
    return ast.FormattedValue(operand(value, inputs, site_id), code, spec_node)


def dict_display(site_id: int, *items):
    """A dict display whose keys may be deferred; ``(SPREAD, m)`` spreads m."""
    if not any(
        contains_deferred(key) or (key is SPREAD and isinstance(value, Deferred))
        for key, value in items
    ):
        result = {}
        for key, value in items:
            if key is SPREAD:
                result.update(value)
            else:
                result[key] = value
        return result
    inputs: dict = {}
    keys, values = [], []
    for key, value in items:
        keys.append(None if key is SPREAD else operand(key, inputs, site_id))
        values.append(operand(value, inputs, site_id))
    return Expr(ast.Dict(keys, values), inputs, site_id)


class _Spread:
    """Marks a ``**mapping`` item of a dict display."""


SPREAD = _Spread()
