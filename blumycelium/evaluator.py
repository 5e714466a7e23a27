"""The evaluator of expression nodes: a checked subset of Python, walked by hand.

An expression node is stored as the text of one Python expression plus named
inputs. A worker evaluates it just before the consuming task runs. The text is
read from the store, so it is never given to ``eval`` or ``exec``: it is parsed
with :mod:`ast` (parsing runs nothing), every node is checked against the kinds
admitted below, and the tree is evaluated by :class:`ExpressionEvaluator`.

Admitted: literals of JSON types, the input names, the builtins in
:data:`SAFE_BUILTINS`, arithmetic, comparison, boolean and conditional
operators, subscripts and slices, list/tuple/dict displays, f-strings, and
calls of those builtins and of the methods of JSON value types listed in
:data:`METHODS` (attributes are looked up on the actual value, so ``upper`` is
allowed on a str and nothing is allowed on a function). Names and attributes
starting with an underscore are refused outright. Anything else (imports,
lambdas, comprehensions, walrus, unknown names) is refused with an
:class:`~blumycelium.errors.ExpressionError` saying which construct and where.

The compiler uses :data:`SAFE_BUILTINS` and :data:`METHODS` too, to reject at
submit time what a worker would refuse at run time.
"""

from __future__ import annotations

import ast
import operator
import re

from .errors import ExpressionError

SAFE_BUILTINS = {
    function.__name__: function
    for function in (
        abs,
        all,
        any,
        bool,
        dict,
        enumerate,
        float,
        int,
        len,
        list,
        max,
        min,
        range,
        repr,
        reversed,
        round,
        set,
        sorted,
        str,
        sum,
        tuple,
        zip,
    )
}

_STR_METHODS = """capitalize casefold center count endswith expandtabs find index
isalnum isalpha isascii isdecimal isdigit isidentifier islower isnumeric
isprintable isspace istitle isupper join ljust lower lstrip partition
removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip
split splitlines startswith strip swapcase title upper zfill""".split()

METHODS = {
    str: frozenset(_STR_METHODS),
    list: frozenset({"copy", "count", "index"}),
    tuple: frozenset({"count", "index"}),
    dict: frozenset({"copy", "get", "items", "keys", "values"}),
    int: frozenset({"bit_length", "denominator", "imag", "numerator", "real"}),
    float: frozenset({"as_integer_ratio", "imag", "is_integer", "real"}),
    bool: frozenset({"bit_length", "denominator", "imag", "numerator", "real"}),
}
METHOD_NAMES = frozenset().union(*METHODS.values())


# Methods that change their object: a deferred value is a snapshot of a job's
# result, so the compiler refuses them with a hint instead of losing the change.
def unpacked(value, count: int, star: int = -1) -> tuple:
    """``value`` split into ``count`` targets as ``a, b = value`` (or, with the
    target at ``star`` starred, ``a, *b = value``) splits it, with Python's
    ValueError when the number of items does not fit."""
    items = list(value)
    if star < 0:
        if len(items) > count:
            raise ValueError("too many values to unpack (expected %d)" % count)
        if len(items) < count:
            raise ValueError(
                "not enough values to unpack (expected %d, got %d)"
                % (count, len(items))
            )
        return tuple(items)
    if len(items) < count - 1:
        raise ValueError(
            "not enough values to unpack (expected at least %d, got %d)"
            % (count - 1, len(items))
        )
    end = len(items) - (count - 1 - star)
    return (*items[:star], items[star:end], *items[end:])


# Functions the compiler writes into expressions; users cannot name them.
INTERNAL_FUNCTIONS = {"unpacked": unpacked}


MUTATING_METHODS = frozenset(
    "add append clear difference_update discard extend insert"
    " intersection_update pop popitem remove reverse setdefault sort"
    " symmetric_difference_update update".split()
)

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.BitAnd: operator.and_,
}
_UNARY = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Not: operator.not_,
    ast.Invert: operator.invert,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda left, right: left in right,
    ast.NotIn: lambda left, right: left not in right,
}
_CONSTANT_TYPES = (str, int, float, bool, type(None))
_ADMITTED = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Subscript,
    ast.Slice,
    ast.Attribute,
    ast.Call,
    ast.keyword,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.And,
    ast.Or,
    *_BINARY,
    *_UNARY,
    *_COMPARE,
)
# Bounds that keep a hand-edited document from exhausting a worker: the items
# one evaluation may create (sequence repetition, concatenation, padding,
# replace, join, materialized ranges), the bits of an integer it may compute,
# and the widths a format may ask for.
MAX_ITEMS = 10_000_000
MAX_INT_BITS = 1_000_000
MAX_WIDTH = 1_000_000
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})
_MATERIALIZING = frozenset({"set"}) | frozenset(
    {
        "list",
        "tuple",
        "sorted",
        "dict",
        "sum",
        "min",
        "max",
        "any",
        "all",
        "enumerate",
        "zip",
        "reversed",
        "str",
        "repr",
    }
)
_DATA_ATTRIBUTES = frozenset({"real", "imag", "numerator", "denominator"})
_NUMBERS = re.compile(r"\d+")
# A %-conversion: its width and precision (digits or *) are the groups.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?[a-zA-Z%]")


def check_expression(code: str) -> ast.Expression:
    """Parse ``code`` and refuse any construct outside the admitted subset."""
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as error:
        raise ExpressionError(
            "expression %s is not valid Python: %s" % (shown(code), error.msg)
        ) from error
    _check_tree(tree, None, code)
    return tree


def _check_tree(node, parent, code: str) -> None:
    _check_node(node, parent, code)
    for child in ast.iter_child_nodes(node):
        _check_tree(child, node, code)


def _check_node(node, parent, code: str) -> None:
    if not isinstance(node, _ADMITTED):
        raise _refused(
            code, "%s is not allowed in an expression node" % type(node).__name__
        )
    name = getattr(node, "id", None) or getattr(node, "attr", None) or ""
    if name.startswith("_") and not _is_input_name(node):
        raise _refused(code, "the name %r starts with an underscore" % name)
    if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANT_TYPES):
        raise _refused(code, "constant %r is not a JSON value" % (node.value,))
    if isinstance(node, ast.Call) and not isinstance(
        node.func, (ast.Name, ast.Attribute)
    ):
        raise _refused(code, "only builtins and methods can be called")
    if _is_function_value(node, parent):
        raise _refused(code, "%r can only be called, not used as a value" % name)


def _is_function_value(node, parent) -> bool:
    """A builtin or a method used other than by calling it (or as key=)."""
    if isinstance(node, ast.Name) and not _is_input_name(node):
        called = isinstance(parent, ast.Call) and parent.func is node
        return not called and not (
            isinstance(parent, ast.keyword) and parent.arg == "key"
        )
    if isinstance(node, ast.Attribute) and node.attr not in _DATA_ATTRIBUTES:
        return not (isinstance(parent, ast.Call) and parent.func is node)
    return False


def _refused(code: str, reason: str) -> ExpressionError:
    return ExpressionError("expression %s is refused: %s" % (shown(code), reason))


def shown(code: str, limit: int = 200) -> str:
    """The code for a message: quoted, and cut when long."""
    text = repr(code)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _is_input_name(node) -> bool:
    """Inputs are named ``_0``, ``_1``...: the only names allowed an underscore."""
    return isinstance(node, ast.Name) and node.id[1:].isdigit()


class ExpressionEvaluator:
    """Evaluates checked expression trees against a dict of input values."""

    def __init__(self, cache_size: int = 4096):
        self._trees: dict[str, ast.Expression] = {}
        self._cache_size = cache_size

    def evaluate(self, code: str, inputs: dict):
        tree = self._trees.get(code)
        if tree is None:
            tree = check_expression(code)
            if len(self._trees) >= self._cache_size:
                self._trees.clear()
            self._trees[code] = tree
        return _Evaluation(inputs, code).visit(tree.body)


class _Evaluation:
    """One evaluation: the inputs in scope, the items it may still create, and
    a visitor per node kind."""

    def __init__(self, inputs: dict, code: str):
        self.inputs = inputs
        self.code = code
        self.budget = MAX_ITEMS

    def visit(self, node):
        return getattr(self, "visit_" + type(node).__name__)(node)

    def spend(self, items: int, what: str) -> None:
        self.budget -= max(0, items)
        if self.budget < 0:
            raise _refused(
                self.code,
                "%s would create more than %d items in one"
                " expression" % (what, MAX_ITEMS),
            )

    def visit_Constant(self, node):
        return node.value

    def visit_Name(self, node):
        if node.id in self.inputs:
            return self.inputs[node.id]
        if node.id in SAFE_BUILTINS:
            return SAFE_BUILTINS[node.id]
        if node.id in INTERNAL_FUNCTIONS:
            return INTERNAL_FUNCTIONS[node.id]
        raise _refused(self.code, "unknown name %r" % node.id)

    def visit_BinOp(self, node):
        left, right = self.visit(node.left), self.visit(node.right)
        self.check_binary(type(node.op), left, right)
        return _BINARY[type(node.op)](left, right)

    def check_binary(self, kind, left, right) -> None:
        if kind is ast.Mult or kind is ast.Add:
            for sequence, other in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)):
                    if kind is ast.Add and isinstance(other, (str, list, tuple)):
                        self.spend(len(sequence) + len(other), "concatenation")
                    elif kind is ast.Mult and isinstance(other, int):
                        self.spend(len(sequence) * other, "repetition")
                    return
        if not (isinstance(left, int) and isinstance(right, int)):
            if kind is ast.Mod and isinstance(left, str):
                self.check_format(left, right)
            return
        bits = {
            ast.Mult: lambda: left.bit_length() + right.bit_length(),
            ast.Pow: lambda: right * left.bit_length() if abs(left) > 1 else 0,
            ast.LShift: lambda: left.bit_length() + right,
        }.get(kind, lambda: 0)()
        if bits > MAX_INT_BITS:
            raise _refused(self.code, "the integer would have about %d bits" % bits)

    def check_format(self, template: str, arguments) -> None:
        """``%`` formatting: refuse widths and precisions that would be huge."""
        specs = _PERCENT_SPEC.findall(template)
        widths = [int(n) for spec in specs for n in spec if n.isdigit()]
        if any("*" in spec for spec in specs):
            values = arguments if isinstance(arguments, tuple) else (arguments,)
            widths += [abs(v) for v in values if isinstance(v, int)]
        if widths and max(widths) > MAX_WIDTH:
            raise _refused(self.code, "a format width of %d" % max(widths))

    def visit_UnaryOp(self, node):
        return _UNARY[type(node.op)](self.visit(node.operand))

    def visit_BoolOp(self, node):
        is_and = isinstance(node.op, ast.And)
        value = None
        for operand in node.values:
            value = self.visit(operand)
            if bool(value) != is_and:
                return value
        return value

    def visit_Compare(self, node):
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.visit(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def visit_IfExp(self, node):
        if self.visit(node.test):
            return self.visit(node.body)
        return self.visit(node.orelse)

    def visit_Subscript(self, node):
        return self.visit(node.value)[self.visit(node.slice)]

    def visit_Slice(self, node):
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if part is None else self.visit(part) for part in parts))

    def visit_Attribute(self, node):
        value = self.visit(node.value)
        allowed = METHODS.get(type(value), frozenset())
        if node.attr not in allowed:
            raise _refused(
                self.code,
                "attribute %r of %s is not allowed" % (node.attr, type(value).__name__),
            )
        return getattr(value, node.attr)

    def visit_Call(self, node):
        function = self.visit(node.func)
        args = [self.visit(arg) for arg in node.args]
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                kwargs.update(self.visit(keyword.value))
            else:
                kwargs[keyword.arg] = self.visit(keyword.value)
        self.check_call(node.func, function, args)
        return function(*args, **kwargs)

    def check_call(self, func, function, args) -> None:
        if isinstance(func, ast.Name):
            if func.id in _MATERIALIZING:
                for arg in args:
                    if isinstance(arg, range):
                        self.spend(len(arg), "%s() of a range" % func.id)
            return
        owner, name = getattr(function, "__self__", None), func.attr
        if not isinstance(owner, str):
            return
        if (
            name in _WIDTH_METHODS
            and args
            and isinstance(args[0], int)
            and args[0] > MAX_WIDTH
        ):
            raise _refused(self.code, "%s() to a width of %d" % (name, args[0]))
        if name == "expandtabs":
            self.spend(len(owner) * (args[0] if args else 8), "expandtabs()")
        elif name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            count = len(owner) + 1 if old == "" else owner.count(old)
            self.spend(count * (len(new) - len(old)), "replace()")
        elif name == "join" and args and isinstance(args[0], (list, tuple)):
            items = args[0]
            self.spend(
                sum(len(i) for i in items if isinstance(i, str))
                + len(owner) * len(items),
                "join()",
            )

    def visit_List(self, node):
        return [self.visit(element) for element in node.elts]

    def visit_Tuple(self, node):
        return tuple(self.visit(element) for element in node.elts)

    def visit_Set(self, node):
        return {self.visit(element) for element in node.elts}

    def visit_Dict(self, node):
        result = {}
        for key, value in zip(node.keys, node.values):
            if key is None:
                result.update(self.visit(value))
            else:
                result[self.visit(key)] = self.visit(value)
        return result

    def visit_JoinedStr(self, node):
        return "".join(str(self.visit(part)) for part in node.values)

    def visit_FormattedValue(self, node):
        value = self.visit(node.value)
        if node.conversion == ord("r"):
            value = repr(value)
        elif node.conversion == ord("s"):
            value = str(value)
        elif node.conversion == ord("a"):
            value = ascii(value)
        spec = "" if node.format_spec is None else self.visit(node.format_spec)
        widths = [int(n) for n in _NUMBERS.findall(spec)]
        if widths and max(widths) > MAX_WIDTH:
            raise _refused(self.code, "a format width of %d" % max(widths))
        return format(value, spec)


DEFAULT_EVALUATOR = ExpressionEvaluator()


def evaluate(code: str, inputs: dict):
    """Evaluate ``code`` with the process-wide evaluator and its parse cache."""
    return DEFAULT_EVALUATOR.evaluate(code, inputs)
