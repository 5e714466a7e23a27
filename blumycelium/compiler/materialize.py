"""Pass 3: turn the rewritten source into a function object.

The rewritten ``def`` is compiled inside a factory whose parameters are the
original function's free variables, so the compiled code expects exactly the
original closure cells; the function is then built from that code with the
original globals, closure, defaults and keyword defaults. Closures therefore
see later changes to the cells they close over, as the eager function does.

Every node of the rewritten tree stands at the line and column of the code
it was made from, and the code is compiled under the user's file name: a
Python error raised by the flow's static code at submit time has a traceback
that points at the flow's own lines.
"""

from __future__ import annotations
import __future__

import ast
import re
import types

from . import ops
from .astbuild import OPS
from .deferred import register_rewritten_code
from .diagnostics import SourceSpan, compile_error
from .rewrite import RewrittenFlow

_FACTORY = "__blumycelium_factory__"
_DEFINITION = "__blumycelium_flow__"
# The __future__ features of the flow's module apply to the compiled flow too.
_FUTURE_FLAGS = 0
for _feature in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag


def future_flags(function) -> int:
    """The ``__future__`` features ``function`` was compiled with."""
    return function.__code__.co_flags & _FUTURE_FLAGS


def factory_code(rewritten: RewrittenFlow, original, file: str) -> types.CodeType:
    """Compile ``rewritten`` into the code of a module defining the factory
    of the function standing in for ``original`` (see :func:`materialize`)."""
    definition = rewritten.tree.body[0]
    if isinstance(definition, ast.If):  # the wrapper of source.read_flow_source
        definition = definition.body[0]
    free_names = original.__code__.co_freevars
    # renamed inside the factory, so that the flow's own name (a flow calling
    # itself, or naming itself) still means the module global, not a closure
    definition.name = _DEFINITION  # the tree is not used again
    last = definition.end_lineno
    place = {"lineno": last, "end_lineno": last, "col_offset": 0, "end_col_offset": 0}
    factory = ast.FunctionDef(
        name=_FACTORY,
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(n, **place) for n in free_names],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=[
            definition,
            ast.Return(ast.Name(definition.name, ast.Load(), **place), **place),
        ],
        decorator_list=[],
        **dict(place, lineno=min(definition.lineno, last)),
    )
    module = ast.Module(body=[factory], type_ignores=[])
    flags = future_flags(original)
    code = compile(module, file, "exec", flags=flags, dont_inherit=True)
    inner = _find_code(_find_code(code, _FACTORY), _DEFINITION)
    if inner.co_freevars != free_names:
        raise compile_error(
            SourceSpan(
                file,
                definition.lineno,
                definition.col_offset,
                definition.lineno,
                definition.col_offset + 3,
                original.__name__,
            ),
            "flow %r closes over %s, which a compiled flow cannot share (a flow"
            " defined in a class cannot use super() or __class__)"
            % (original.__name__, ", ".join(free_names) or "nothing"),
            "define the flow as a function, or pass what it needs as arguments",
        )
    return code


def materialize(code: types.CodeType, original):
    """The function standing in for ``original``, from the code
    :func:`factory_code` compiled for it."""
    inner = _find_code(_find_code(code, _FACTORY), _DEFINITION)
    inner = inner.replace(co_name=original.__name__)
    inner = _requalified(
        inner, _FACTORY + ".<locals>." + _DEFINITION, original.__qualname__
    )
    register_rewritten_code(inner)
    original.__globals__.setdefault(OPS, ops)
    function = types.FunctionType(
        inner,
        original.__globals__,
        original.__name__,
        original.__defaults__,
        original.__closure__,
    )
    function.__kwdefaults__ = original.__kwdefaults__
    function.__qualname__ = original.__qualname__
    function.__module__ = original.__module__
    function.__doc__ = original.__doc__
    return function


def _find_code(code: types.CodeType, name: str) -> types.CodeType:
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType) and constant.co_name == name:
            return constant
    raise RuntimeError("internal error: no code object %r in %r" % (name, code))


def _requalified(code, old: str, new: str):
    """``code`` and the functions nested in it with the qualified name the
    user wrote (``flow.<locals>.<lambda>``), not the factory's: Python 3.11+
    reads it from ``co_qualname``, 3.10 from a string constant of the code
    that makes the function."""
    constants = tuple(_requalified_constant(c, old, new) for c in code.co_consts)
    if not hasattr(code, "co_qualname"):  # Python 3.10
        return code.replace(co_consts=constants)
    name = _renamed(code.co_qualname, old, new)
    return code.replace(co_consts=constants, co_qualname=name)


def _requalified_constant(constant, old: str, new: str):
    if isinstance(constant, types.CodeType):
        return _requalified(constant, old, new)
    if isinstance(constant, str):
        return _renamed(constant, old, new)
    return constant


def _renamed(name: str, old: str, new: str) -> str:
    """``name`` under the flow's own name, without the branch and loop-body
    functions of the rewrite (``f.<locals>.h``, as Python names it)."""
    if name == old or name.startswith(old + "."):
        return _PLUMBING.sub("", new + name[len(old) :])
    return name


_PLUMBING = re.compile(r"__bm_[a-z]+_\d+\.<locals>\.")
