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
    bool: frozenset({"real"}),
}
METHOD_NAMES = frozenset().union(*METHODS.values())

# Methods that change their object: a deferred value is a snapshot of a job's
# result, so the compiler refuses them with a hint instead of losing the change.
MUTATING_METHODS = frozenset(
    "append clear extend insert pop popitem remove reverse setdefault sort"
    " update".split()
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
    ast.JoinedStr,
    ast.FormattedValue,
    ast.And,
    ast.Or,
    *_BINARY,
    *_UNARY,
    *_COMPARE,
)
# Bounds that keep a hand-edited document from exhausting a worker.
MAX_SEQUENCE_LENGTH = 50_000_000
MAX_EXPONENT = 100_000


def check_expression(code: str) -> ast.Expression:
    """Parse ``code`` and refuse any construct outside the admitted subset."""
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as error:
        raise ExpressionError(
            "expression %r is not valid Python: %s" % (code, error.msg)
        ) from error
    for node in ast.walk(tree):
        _check_node(node, code)
    return tree


def _check_node(node, code: str) -> None:
    if not isinstance(node, _ADMITTED):
        raise ExpressionError(
            "expression %r is refused: %s is not allowed in an expression node"
            % (code, type(node).__name__)
        )
    name = getattr(node, "id", None) or getattr(node, "attr", None) or ""
    if name.startswith("_") and not _is_input_name(node):
        raise ExpressionError(
            "expression %r is refused: the name %r starts with an underscore"
            % (code, name)
        )
    if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANT_TYPES):
        raise ExpressionError(
            "expression %r is refused: constant %r is not a JSON value"
            % (code, node.value)
        )
    if isinstance(node, ast.Call) and not isinstance(
        node.func, (ast.Name, ast.Attribute)
    ):
        raise ExpressionError(
            "expression %r is refused: only builtins and methods can be called" % code
        )


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
    """One evaluation: the inputs in scope and a visitor per node kind."""

    def __init__(self, inputs: dict, code: str):
        self.inputs = inputs
        self.code = code

    def visit(self, node):
        return getattr(self, "visit_" + type(node).__name__)(node)

    def visit_Constant(self, node):
        return node.value

    def visit_Name(self, node):
        if node.id in self.inputs:
            return self.inputs[node.id]
        if node.id in SAFE_BUILTINS:
            return SAFE_BUILTINS[node.id]
        raise ExpressionError(
            "expression %r is refused: unknown name %r" % (self.code, node.id)
        )

    def visit_BinOp(self, node):
        left, right = self.visit(node.left), self.visit(node.right)
        _check_size(type(node.op), left, right, self.code)
        return _BINARY[type(node.op)](left, right)

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
            raise ExpressionError(
                "expression %r is refused: attribute %r of %s is not allowed"
                % (self.code, node.attr, type(value).__name__)
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
        return function(*args, **kwargs)

    def visit_List(self, node):
        return [self.visit(element) for element in node.elts]

    def visit_Tuple(self, node):
        return tuple(self.visit(element) for element in node.elts)

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
        return format(value, spec)


def _check_size(op_kind, left, right, code: str) -> None:
    """Refuse results too large to be what a flow meant (memory exhaustion)."""
    if op_kind is ast.Mult:
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
                if len(sequence) * count > MAX_SEQUENCE_LENGTH:
                    raise ExpressionError(
                        "expression %r is refused: the repeated sequence would"
                        " hold %d items" % (code, len(sequence) * count)
                    )
    elif op_kind in (ast.Pow, ast.LShift) and isinstance(right, int):
        if isinstance(left, int) and abs(right) > MAX_EXPONENT:
            raise ExpressionError(
                "expression %r is refused: exponent or shift %d is too large"
                % (code, right)
            )


DEFAULT_EVALUATOR = ExpressionEvaluator()


def evaluate(code: str, inputs: dict):
    """Evaluate ``code`` with the process-wide evaluator and its parse cache."""
    return DEFAULT_EVALUATOR.evaluate(code, inputs)
