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

import libcst as cst

from . import branches
from .cstbuild import OPS, literal, literal_tuple, op


def convert_for(transformer, original, updated, targets: list[str]) -> list:
    """A ``for`` statement as a body function and a ``for_stmt`` call."""
    transformer.branch_count += 1
    number = transformer.branch_count
    frame = transformer.frames[-1]
    assigned, grown, carried = branches.loop_names(original)
    names = sorted(n for n in assigned if n in frame["locals"] or n in frame["globals"])
    frame["names"].update(n for n in names if n not in frame["globals"])
    grown = sorted(grown & set(names))
    carried = sorted(carried)
    site = transformer.scope_site(original) or transformer.site(original.iter)
    if isinstance(original.target, cst.Name):
        bind = "%s = __bm_item" % targets[0]
    else:
        bind = "%s = %s.unpack(__bm_item, %d, %s, %d)" % (
            ", ".join(targets),
            OPS,
            len(targets),
            site.value,
            branches.starred_index(original.target),
        )
    function = branches.branch_function(
        "__bm_body_%d" % number,
        [cst.parse_statement(bind + "\n"), *updated.body.body],
        names,
        frame["globals"],
    )
    function = function.with_changes(
        params=cst.Parameters([cst.Param(cst.Name("__bm_item"))])
    )
    statements = [function]
    definitions, state = branches.state_plumbing(number, names, frame["globals"])
    statements += definitions
    call = op(
        "for_stmt",
        updated.iter,
        cst.Name("__bm_body_%d" % number),
        *state,
        literal_tuple(carried),
        literal_tuple(grown),
        site,
    )
    statements.append(cst.SimpleStatementLine([cst.Expr(call)]))
    transformer.branch_lines[id(statements[-1])] = transformer.parsed.span(
        original
    ).line
    if updated.orelse is not None:
        statements += list(updated.orelse.body.body)
    return statements


def convert_comprehension(transformer, updated, pairs: bool, generator: str = ""):
    """The ``comprehension`` calls of a list (or dict, when ``pairs``)
    comprehension, or of a generator expression (``generator`` says whether
    it is a call's only argument, "consumed", or "kept"); None when a clause
    is not one we convert."""
    clauses = []
    node = updated.for_in
    while node is not None:
        original, plain = transformer.comp_fors[id(node)]
        targets = branches.loop_target_names(original.target)
        if targets is None or original.asynchronous:
            return None
        clauses.append((original, plain))
        node = node.inner_for_in
    if pairs:
        expression = cst.Tuple(
            [cst.Element(updated.key), cst.Element(updated.value)],
            lpar=[cst.LeftParen()],
            rpar=[cst.RightParen()],
        )
    else:
        expression = updated.elt
    for depth in reversed(range(len(clauses))):
        original, plain = clauses[depth]
        site = transformer.site(original.iter)
        conditions = [
            cst.Element(_of_element(original.target, clause.test, site))
            for clause in plain.ifs
        ]
        expression = op(
            "comprehension",
            plain.iter,
            _of_element(original.target, expression, site),
            cst.Tuple(conditions, lpar=[cst.LeftParen()], rpar=[cst.RightParen()]),
            site,
            literal(depth < len(clauses) - 1),
            literal(pairs and depth == 0),
            literal(generator if depth == 0 else ""),
        )
    return expression


def _of_element(target, body, site) -> cst.Lambda:
    """``lambda x: body``, or for ``a, b``, the element split in two."""
    if isinstance(target, cst.Name):
        return _lambda([target.value], body)
    names = branches.loop_target_names(target)
    split = cst.Call(
        _lambda(names, body).with_changes(
            lpar=[cst.LeftParen()], rpar=[cst.RightParen()]
        ),
        [
            cst.Arg(
                op(
                    "unpack",
                    cst.Name("__bm_item"),
                    literal(len(names)),
                    site,
                    literal(branches.starred_index(target)),
                ),
                star="*",
            )
        ],
    )
    return _lambda(["__bm_item"], split)


def _lambda(names: list[str], body) -> cst.Lambda:
    return cst.Lambda(
        params=cst.Parameters([cst.Param(cst.Name(name)) for name in names]),
        body=body,
    )
