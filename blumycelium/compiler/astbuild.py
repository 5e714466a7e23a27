"""Small builders of Python ``ast`` nodes for the rewritten flow.

Every node built here takes its position from a node of the flow (``at``),
so the compiled code carries the user's lines and columns without a pass
over the tree afterwards.
"""

from __future__ import annotations

import ast

OPS = "__blumycelium__"
_LOAD = ast.Load()
_STORE = ast.Store()


def place(node: ast.AST) -> dict:
    """The position of ``node``, as keyword arguments of a node."""
    return {
        "lineno": node.lineno,
        "col_offset": node.col_offset,
        "end_lineno": node.end_lineno,
        "end_col_offset": node.end_col_offset,
    }


def name(identifier: str, at: dict, store: bool = False) -> ast.Name:
    return ast.Name(identifier, _STORE if store else _LOAD, **at)


def literal(value, at: dict) -> ast.Constant:
    return ast.Constant(value, **at)


def literal_tuple(values, at: dict) -> ast.Tuple:
    return ast.Tuple([literal(v, at) for v in values], _LOAD, **at)


def tuple_of(elements: list, at: dict) -> ast.Tuple:
    return ast.Tuple(elements, _LOAD, **at)


def ops_attribute(member: str, at: dict) -> ast.Attribute:
    return ast.Attribute(name(OPS, at), member, _LOAD, **at)


def op(member: str, at: dict, *args, keywords=()) -> ast.Call:
    """``__blumycelium__.member(*args)``; a str or int argument is a literal."""
    values = [arg if isinstance(arg, ast.AST) else literal(arg, at) for arg in args]
    # the function at the node's first character: a call whose function spans
    # lines is reported at the function's last line (CPython 3.11+)
    start = dict(at, end_lineno=at["lineno"], end_col_offset=at["col_offset"])
    return ast.Call(ops_attribute(member, start), values, list(keywords), **at)


def thunk(expression: ast.expr) -> ast.Lambda:
    """``lambda: expression``."""
    return ast.Lambda(_no_arguments(), expression, **place(expression))


def lambda_of(names: list[str], body: ast.expr, at: dict) -> ast.Lambda:
    arguments = _no_arguments()
    arguments.args = [ast.arg(n, **at) for n in names]
    return ast.Lambda(arguments, body, **at)


def _no_arguments() -> ast.arguments:
    return ast.arguments(
        posonlyargs=[],
        args=[],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )


def assign(target: str, value: ast.expr, at: dict) -> ast.Assign:
    return ast.Assign([name(target, at, store=True)], value, **at)


def expression_statement(value: ast.expr, at: dict) -> ast.Expr:
    return ast.Expr(value, **at)


def function(function_name: str, params: list[str], body: list, at: dict):
    """``def function_name(*params): body``."""
    arguments = _no_arguments()
    arguments.args = [ast.arg(p, **at) for p in params]
    return ast.FunctionDef(
        function_name, arguments, body or [ast.Pass(**at)], [], None, **at
    )


def strip_parameters(arguments: ast.arguments) -> None:
    """A def's parameters without annotations and defaults: the rewritten
    function is given the original's defaults (see materialize)."""
    for argument in (
        *arguments.posonlyargs,
        *arguments.args,
        *arguments.kwonlyargs,
        arguments.vararg,
        arguments.kwarg,
    ):
        if argument is not None:
            argument.annotation = None
    arguments.defaults = []
    arguments.kw_defaults = [None] * len(arguments.kwonlyargs)


def from_template(text: str, at: dict) -> list:
    """The statements of ``text``, every node of them at the start of ``at``
    (code spanning lines would be reported at its last line)."""
    statements = ast.parse(text).body
    line, column = at["lineno"], at["col_offset"]
    for statement in statements:
        for node in ast.walk(statement):
            if "lineno" in node._attributes:
                node.lineno = node.end_lineno = line
                node.col_offset = node.end_col_offset = column
    return statements


# -- the plumbing of branches and loop bodies (see branches.py) -----------------


def declarations(names: list[str], globals_: set[str], at: dict) -> list:
    """``nonlocal``/``global`` statements for the names a branch assigns."""
    local = [n for n in names if n not in globals_]
    shared = [n for n in names if n in globals_]
    statements = []
    if local:
        statements.append(ast.Nonlocal(local, **at))
    if shared:
        statements.append(ast.Global(shared, **at))
    return statements


def branch_function(
    function_name: str,
    body: list,
    names: list[str],
    globals_: set[str],
    at: dict,
    params: tuple = (),
):
    """``def function_name(*params): <declarations> body``."""
    statements = declarations(names, globals_, at) + body
    return function(function_name, list(params), statements, at)


def state_plumbing(number: int, names: list[str], globals_: set[str], at: dict):
    """The getter and setter definitions (none without names), and the two
    arguments that hand them to ``if_stmt`` or ``for_stmt``."""
    if not names:
        return [], [literal(None, at), literal(None, at)]
    return state_functions(number, names, globals_, at), [
        name("__bm_get_%d" % number, at),
        name("__bm_set_%d" % number, at),
    ]


def state_functions(number: int, names: list[str], globals_: set[str], at: dict):
    """The getter and setter of the names the branches assign."""
    reads = ", ".join("%r: %s.read(lambda: %s)" % (n, OPS, n) for n in names)
    lines = [
        "def __bm_get_%d():" % number,
        "    return {%s}" % reads,
        "def __bm_set_%d(__bm_state):" % number,
    ]
    for variable in names:
        lines += [
            "    if __bm_state[%r] is %s.UNDEFINED:" % (variable, OPS),
            "        try:",
            "            del %s" % variable,
            "        except NameError:",
            "            pass",
            "    else:",
            "        %s = __bm_state[%r]" % (variable, variable),
        ]
    getter, setter = from_template("\n".join(lines), at)
    setter.body[:0] = declarations(names, globals_, at)
    return [getter, setter]


def dead_bindings(names: set[str], at: dict) -> ast.If:
    """``if False: a = b = None``: makes names local without running."""
    return from_template("if False:\n    %s = None\n" % " = ".join(sorted(names)), at)[
        0
    ]
