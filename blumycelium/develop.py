"""Developing a stored template into the value a task receives.

A parameter (or a run's return value) is stored as a JSON-ready template that
may hold references to results of other jobs of the same run and expression
nodes. Developing it:

1. collects the job indices its references name (:func:`referenced_jobs`);
2. fetches those results in one store call and decodes each once;
3. decodes the template, replacing each reference by the result (or one key
   of it) and each expression node by its value, computed by the evaluator
   from its developed inputs.

Nothing here imports the compiler or a store backend: results are fetched
through the callable the caller passes.
"""

from __future__ import annotations

import re

from .errors import ExecutionError, ExpressionError
from .evaluator import evaluate, shown
from .expressions import load_helper
from .values import (
    TAG,
    ExprMarker,
    FailedMarker,
    HelperMarker,
    RefMarker,
    SkippedMarker,
    decode,
    encode,
)


def referenced_jobs(data, found: set | None = None) -> set:
    """Job indices named by the references inside a JSON-ready template."""
    found = set() if found is None else found
    kind = type(data)
    if kind is list:
        for item in data:
            if type(item) in (list, dict):
                referenced_jobs(item, found)
    elif kind is dict:
        if data.get(TAG) == "ref":
            found.add(data["job"])
            return found
        for item in data.values():
            if type(item) in (list, dict):
                referenced_jobs(item, found)
    return found


class Developer:
    """Develops templates of one run, given the results they need."""

    def __init__(self, results: dict, where: str = ""):
        self.results = {index: decode(value) for index, value in results.items()}
        self.where = where
        self.skipped: list = []

    def develop(self, template, lenient: bool = False):
        """The value of ``template``. Unless ``lenient``, a value that holds
        what a skipped job or a failed branch left raises the failure."""
        self.failures: list[FailedMarker] = []
        value = decode(template, self._resolve)
        if lenient:
            return value
        if self.failures and _holds(value, self.failures):
            failure = next(f for f in self.failures if _holds(value, [f]))
            raise ExpressionError(
                "%s%s: %s (raised when the flow was built, by flow line %d, in the"
                " branch chosen at run time)"
                % (self.where, failure.exception_type, failure.message, failure.line)
            )
        if self.skipped and _holds(value, self.skipped):
            raise ExecutionError(
                "%sa value comes from a job that was skipped (its branch was not"
                " taken)" % self.where
            )
        return value

    def _resolve(self, marker):
        if type(marker) is RefMarker:
            return self._result(marker)
        if type(marker) is HelperMarker:
            try:
                return load_helper(marker.module, marker.name, marker.revision)
            except ExecutionError as error:
                raise ExecutionError(self.where + str(error)) from error
        if type(marker) is FailedMarker:
            self.failures.append(marker)
            return marker
        return self._evaluate(marker)

    def _result(self, marker: RefMarker):
        value = self.results.get(marker.job)
        if type(value) is SkippedMarker:
            self.skipped.append(value)
            return value
        if marker.job not in self.results:
            raise ExecutionError(
                "%sthe result of job #%d of this run is not in the mycelium"
                " (has that job finished?)" % (self.where, marker.job)
            )
        value = self.results[marker.job]
        if marker.key is None:
            return value
        try:
            return value[marker.key]
        except (KeyError, TypeError) as error:
            raise ExecutionError(
                "%sthe result of job #%d has no key %r"
                % (self.where, marker.job, marker.key)
            ) from error

    def _evaluate(self, marker: ExprMarker):
        inputs = {
            name: decode(value, self._resolve) for name, value in marker.inputs.items()
        }
        try:
            value = evaluate(marker.code, inputs)
            if any(callable(v) for v in inputs.values()):  # a helper's value
                encode(value, "the value")  # NotStorableError: what and where
            return value
        except Exception as error:
            poison = _poison_in(inputs)
            if poison is not None:
                # an input a skipped job or a failed branch left: the
                # expression has no value either; develop() reports the cause
                return poison
            raise self._failed(marker, error, inputs) from error

    def _failed(
        self, marker: ExprMarker, error: Exception, inputs: dict
    ) -> ExpressionError:
        if isinstance(error, ExpressionError):
            return ExpressionError(
                "%s%s (flow line %d)" % (self.where, error, marker.line)
            )
        return ExpressionError(
            "%sthe expression %s (flow line %d, column %d) failed: %s: %s"
            % (
                self.where,
                shown(_with_helper_names(marker.code, inputs)),
                marker.line,
                marker.column,
                type(error).__name__,
                error,
            )
        )


def _with_helper_names(code: str, inputs: dict) -> str:
    """The code with each expression helper's input (``_0``) written as the
    helper's module and name, for messages."""
    for name, value in inputs.items():
        if callable(value) and hasattr(value, "__qualname__"):
            label = "%s:%s" % (value.__module__, value.__qualname__)
            code = re.sub(r"\b%s\b" % re.escape(name), label, code)
    return code


def _poison_in(inputs: dict):
    """The first skipped or failed marker among the inputs, if any."""
    return first_inside(
        inputs, lambda item: type(item) in (SkippedMarker, FailedMarker)
    )


def develop_templates(templates: dict, fetch_results, where: str = "") -> dict:
    """Develop named templates; ``fetch_results(indices)`` returns raw results."""
    needed: set = set()
    for template in templates.values():
        referenced_jobs(template, needed)
    developer = Developer(fetch_results(needed) if needed else {}, where)
    return {name: developer.develop(template) for name, template in templates.items()}


def first_inside(value, found):
    """The first item (``value`` itself, or one inside it) for which
    ``found(item)`` holds, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if found(item):
            return item
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return None


def holds(value, found) -> bool:
    """True when ``found(item)`` holds for ``value`` or a value inside it."""
    return first_inside(value, found) is not None


def _holds(value, markers: list) -> bool:
    """True when ``value`` is, or contains, one of the failure markers."""
    return holds(value, lambda item: any(item is marker for marker in markers))
