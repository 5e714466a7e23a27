"""Expression helpers: pure functions a flow may apply to task results.

``@blumycelium.expression`` marks a module-level function as a helper. In a
flow, calling it on values known at submit time calls it at once; calling it
on task results records an expression node that names the helper by module
and qualified name, with the revision of its source. The worker that
develops the node imports the module, checks that the name is a helper, and
calls it; a helper that cannot be imported there fails the job with a message
that says so. A revision that differs from the one the flow was built with is
logged, as for tasks.

Helpers run on workers as plain Python (they are code of the application,
imported like the elves' classes), so they must be pure: their result may
depend on their arguments only, and nothing they change is kept.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
from dataclasses import dataclass

from .errors import ExecutionError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HelperInfo:
    """Where a helper lives, and the revision of its source."""

    module: str
    name: str
    revision: str

    def describe(self) -> str:
        return "%s:%s" % (self.module, self.name)


def expression(function):
    """Mark ``function`` as a pure helper flows may apply to task results."""
    if not inspect.isfunction(function):
        raise TypeError(
            "@blumycelium.expression decorates functions, not %s"
            % type(function).__name__
        )
    if "<locals>" in function.__qualname__ or function.__name__ == "<lambda>":
        raise TypeError(
            "@blumycelium.expression helper %s must be defined at module level"
            " (workers import it by module and name)" % function.__qualname__
        )
    function.__blumycelium_expression__ = HelperInfo(
        function.__module__, function.__qualname__, _revision(function)
    )
    return function


def helper_info(function) -> HelperInfo | None:
    """The helper ``function`` is, or None."""
    info = getattr(function, "__blumycelium_expression__", None)
    return info if isinstance(info, HelperInfo) else None


def _revision(function) -> str:
    try:
        text = inspect.getsource(function)
    except (OSError, TypeError):
        text = repr(function.__code__.co_code)
    digest = hashlib.sha256(function.__qualname__.encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:20]


_LOADED: dict[tuple[str, str], object] = {}


def load_helper(module: str, name: str, revision: str):
    """The helper ``module:name``, imported on this worker."""
    key = (module, name)
    function = _LOADED.get(key)
    if function is None:
        function = _import(module, name)
        _LOADED[key] = function
        info = helper_info(function)
        if info.revision != revision:
            logger.warning(
                "expression helper %s:%s has revision %s here; the flow was"
                " built with revision %s",
                module,
                name,
                info.revision,
                revision,
            )
    return function


def _import(module: str, name: str):
    where = "%s:%s" % (module, name)
    if module == "__main__":
        raise ExecutionError(
            "expression helper %s was defined in the script that built the flow;"
            " a worker cannot import it: define it in a module" % where
        )
    try:
        value = importlib.import_module(module)
        for part in name.split("."):
            value = getattr(value, part)
    except Exception as error:
        raise ExecutionError(
            "expression helper %s cannot be imported on this worker: %s: %s"
            % (where, type(error).__name__, error)
        ) from error
    if helper_info(value) is None:
        raise ExecutionError(
            "%s is not decorated with @blumycelium.expression; a stored"
            " expression may only call helpers" % where
        )
    return value
