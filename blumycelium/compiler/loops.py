"""Pass 2, loops: ``for`` statements and comprehensions become calls of
``for_stmt`` and ``comprehension`` (see ``fanout.py``), which run them at
once over a value known when the flow is called and fan them out, one job
per element, over a task result.

A ``for`` statement's body becomes a function of the element, with the names
it assigns declared ``nonlocal`` (as the branches of an ``if`` are, see
``branches.py``); a comprehension's element and each ``if`` clause become
lambdas of the element, one ``comprehension`` call per ``for`` clause, the
outer ones joining the lists of the inner ones.
"""

from __future__ import annotations

import ast

from . import scan
from .astbuild import (
    OPS,
    branch_function,
    expression_statement,
    from_template,
    lambda_of,
    literal,
    literal_tuple,
    name,
    op,
    place,
    state_plumbing,
    tuple_of,
)


def convert_for(transformer, node: ast.For, loop: tuple) -> list:
    """A (rewritten) ``for`` statement as a body function and a ``for_stmt``
    call; ``loop`` is what ``scan.loop_names`` read from it before."""
    transformer.branch_count += 1
    number = transformer.branch_count
    frame = transformer.frames[-1]
    assigned, grown, carried = loop
    names = sorted(n for n in assigned if n in frame["locals"] or n in frame["globals"])
    frame["names"].update(n for n in names if n not in frame["globals"])
    grown = sorted(grown & set(names))
    carried = sorted(carried)
    site = transformer.scope_site(node)
    at = place(node)
    targets = scan.loop_target_names(node.target)
    if isinstance(node.target, ast.Name):
        bind = "%s = __bm_item" % targets[0]
    else:
        bind = "%s = %s.unpack(__bm_item, %d, %d, %d)" % (
            ", ".join(targets),
            OPS,
            len(targets),
            site.value,
            scan.starred_index(node.target),
        )
    body = "__bm_body_%d" % number
    statements = [
        branch_function(
            body,
            [*from_template(bind, place(node.target)), *node.body],
            names,
            frame["globals"],
            at,
            params=("__bm_item",),
        )
    ]
    definitions, state = state_plumbing(number, names, frame["globals"], at)
    statements += definitions
    call = op(
        "for_stmt",
        at,
        node.iter,
        name(body, at),
        *state,
        literal_tuple(carried, at),
        literal_tuple(grown, at),
        site,
    )
    statements.append(expression_statement(call, at))
    return statements + node.orelse


def convert_comprehension(transformer, node, pairs: bool, generator: str = ""):
    """The ``comprehension`` calls of a (rewritten) list comprehension (or
    dict, when ``pairs``), or of a generator expression (``generator`` says
    whether it is a call's only argument, "consumed", or "kept"); None when
    a clause is not one we convert."""
    clauses = node.generators
    if any(scan.loop_target_names(c.target) is None or c.is_async for c in clauses):
        return None
    at = place(node)
    expression = tuple_of([node.key, node.value], at) if pairs else node.elt
    for depth in reversed(range(len(clauses))):
        clause = clauses[depth]
        iterable = clause.original[0]
        site = transformer.site(iterable)
        conditions = [_of_element(clause.target, test, site) for test in clause.ifs]
        expression = op(
            "comprehension",
            at,
            clause.iter,
            _of_element(clause.target, expression, site),
            tuple_of(conditions, at),
            site,
            depth < len(clauses) - 1,
            pairs and depth == 0,
            generator if depth == 0 else "",
        )
    for clause in clauses:
        del clause.original
    return expression


def _of_element(target, body: ast.expr, site: ast.Constant) -> ast.Lambda:
    """``lambda x: body``, or for ``a, b``, the element split in two."""
    at = place(body)
    names = scan.loop_target_names(target)
    if isinstance(target, ast.Name):
        return lambda_of(names, body, at)
    split = op(
        "unpack",
        at,
        name("__bm_item", at),
        literal(len(names), at),
        site,
        literal(scan.starred_index(target), at),
    )
    call = ast.Call(
        lambda_of(names, body, at), [ast.Starred(split, ast.Load(), **at)], [], **at
    )
    return lambda_of(["__bm_item"], call, at)
