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

import ast

from ..evaluator import MUTATING_METHODS
from .astbuild import literal, op, place, tuple_of


class MutationGuards:
    """The enclosing ``if``/``for`` statements of the node being rewritten,
    with the names each binds; mixed into the FlowTransformer."""

    def enter_scope(self, node, site: ast.Constant, names: set[str]) -> None:
        self.scope_sites[id(node)] = site
        self.scopes.append((site, names, isinstance(node, ast.For)))

    def leave_scope(self, node) -> None:
        if id(node) in self.scope_sites:
            self.scopes.pop()

    def scope_site(self, node) -> ast.Constant | None:
        """The site id registered for this ``if``/``for`` when it was entered."""
        return self.scope_sites.get(id(node))

    def guarded_root(self, value, site, loops_only=False) -> ast.expr:
        """``value`` (the object a statement changes), wrapped in ``mutable``
        when it is a name bound outside an enclosing ``if``/``for`` (only a
        ``for`` when ``loops_only``: a branch copies what it changes)."""
        if not isinstance(value, ast.Name) or not self.scopes:
            return value
        outside = [
            s
            for s, names, loop in self.scopes
            if value.id not in names and (loop or not loops_only)
        ]
        if not outside:
            return value
        at = place(value)
        return op(
            "mutable", at, value, tuple_of(outside, at), literal(value.id, at), site
        )

    def guard_target(self, target, site) -> None:
        """Guard the name ``x`` an assignment or ``del`` target reaches
        (``x[k]``, ``x.a.b``, in a tuple of targets too), before the target
        is rewritten."""
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.guard_target(element, site)
        elif isinstance(target, ast.Starred):
            self.guard_target(target.value, site)
        elif isinstance(target, (ast.Subscript, ast.Attribute)):
            self.guard_chain(target, site)

    def guard_chain(self, node, site) -> None:
        """Mark the name at the root of ``node`` (``x`` of ``x[k].a``), an
        object about to be changed, to be guarded when it is rewritten (see
        :meth:`guarded_name`)."""
        root = node.value
        while isinstance(root, (ast.Subscript, ast.Attribute)):
            root = root.value
        if isinstance(root, ast.Name) and self.scopes:
            self.roots[id(root)] = site

    def guarded_name(self, node: ast.Name) -> ast.expr:
        """A name as rewritten: guarded when :meth:`guard_chain` marked it."""
        site = self.roots.pop(id(node), None) if self.roots else None
        return node if site is None else self.guarded_root(node, site)

    def is_mutating_method(self, attribute: ast.Attribute) -> bool:
        return attribute.attr in MUTATING_METHODS
