"""Pass 2, changes in place: refusing those a fan-out or a guarded branch
would make the wrong number of times.

The body of a loop over a task result is built once, as a template, and both
branches of an ``if`` on a task result are built. A statement there that
changes, in place, an object the flow held before the loop or the ``if``
(``box[0] += 1``, ``ns.count = 3``, ``del items[0]``, ``out.pop()``) would
change it once (or once per branch) at submit time, where the eager function
changes it once per element (or in one branch). The rewrite wraps the object
such a statement reaches through a name, when the name is bound outside the
enclosing ``if``/``for``, in ``mutable(obj, scopes, name, site)``. At submit
time ``mutable`` refuses the change when one of those scopes is being built
on a task result; under a static ``if`` or loop, which run as Python, the
change is fine. Objects the body creates (bound in it) may be changed freely.
"""

from __future__ import annotations

import libcst as cst

from ..evaluator import MUTATING_METHODS
from . import branches
from .cstbuild import literal, op


class MutationGuards:
    """The enclosing ``if``/``for`` statements of the node being rewritten,
    with the names each binds; mixed into the FlowTransformer."""

    def enter_scope(self, node, site: cst.Integer, names: set[str]) -> None:
        self.scope_sites[id(node)] = site
        self.scopes.append((site, names, isinstance(node, cst.For)))

    def leave_scope(self, node) -> None:
        if id(node) in self.scope_sites:
            self.scopes.pop()

    def scope_site(self, node) -> cst.Integer | None:
        """The site id registered for this ``if``/``for`` when it was entered."""
        return self.scope_sites.get(id(node))

    def guarded_root(self, value, site, loops_only=False) -> cst.BaseExpression:
        """``value`` (the object a statement changes), wrapped in ``mutable``
        when it is a name bound outside an enclosing ``if``/``for`` (only a
        ``for`` when ``loops_only``: a branch copies what it changes)."""
        if not isinstance(value, cst.Name) or not self.scopes:
            return value
        outside = [
            s
            for s, names, loop in self.scopes
            if value.value not in names and (loop or not loops_only)
        ]
        if not outside:
            return value
        return op(
            "mutable",
            value,
            cst.Tuple(
                [cst.Element(s) for s in outside],
                lpar=[cst.LeftParen()],
                rpar=[cst.RightParen()],
            ),
            literal(value.value),
            site,
        )

    def guarded_target(self, target, site):
        """``x[k]`` or ``x.a`` as an assignment or ``del`` target, its ``x``
        guarded."""
        if isinstance(target, (cst.Subscript, cst.Attribute)):
            return target.with_changes(value=self.guarded_root(target.value, site))
        return target

    def is_mutating_method(self, attribute: cst.Attribute) -> bool:
        return attribute.attr.value in MUTATING_METHODS


def if_names(node: cst.If) -> set[str]:
    """Names an ``if`` chain binds (not counting lists it grows)."""
    names = branches.bound_names(node.body.body)
    if isinstance(node.orelse, cst.Else):
        names |= branches.bound_names(node.orelse.body.body)
    elif isinstance(node.orelse, cst.If):
        names |= if_names(node.orelse)
    return names


def for_names(node: cst.For) -> set[str]:
    """Names a ``for`` binds: its targets and its body's."""
    return branches.bound_names(node.body.body) | set(
        branches.loop_target_names(node.target) or ()
    )
