"""What a task promises: its parameters, their annotations and its result keys.

A :class:`TaskSpec` is read once per elf class from the task's signature. The
compiler binds a flow's call against it (argument count, keywords, defaults,
result keys), the worker checks the developed arguments and the returned dict
against it, and registration stores its source and revision.

Return annotations are mandatory and take one of three forms:

    -> None                          the task returns nothing
    -> ("value", "count")            a tuple or list of result keys
    -> {"species": str, "weight": int}   keys with the types of their values

Argument and result types are checked for the forms JSON values can take:
plain classes (an int is accepted for float, as in typing), ``None``,
``Any``, unions and ``Optional``, ``list[X]``, ``tuple[X, ...]``,
``dict[K, V]`` and ``Literal``. Annotations outside these forms are recorded
but not checked.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import types
import typing
from dataclasses import dataclass

from .errors import ElfDefinitionError, TaskContractError
from .policy import task_policies
from .values import encode

TASK_PREFIX = "task_"
_EMPTY = inspect.Parameter.empty
_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
_RETURN_FORMS = (
    'write "-> None", "-> (\'value\',)" (a tuple of result keys) or'
    " \"-> {'value': str}\" (keys and their types)"
)


@dataclass(frozen=True)
class ResultSpec:
    """The declared result: no value (``keys`` None) or a dict with ``keys``."""

    keys: tuple[str, ...] | None
    types: dict | None = None

    def describe(self) -> str:
        if self.keys is None:
            return "None"
        return ", ".join(repr(key) for key in self.keys)


class TaskSpec:
    """The contract of one task method of an elf class."""

    def __init__(self, owner: type, name: str, function):
        self.owner = owner
        self.name = name
        function = getattr(function, "__blumycelium_function__", function)
        self.function = function
        self.qualname = "%s.%s" % (owner.__name__, name)
        self.signature = _signature_without_self(function, self.qualname)
        self.annotations = _evaluated_annotations(function, self.qualname)
        self.result = _read_result_spec(self.annotations, self.qualname)
        self.parameters = tuple(self.signature.parameters.values())
        self.names = tuple(parameter.name for parameter in self.parameters)
        self.is_simple = all(
            p.kind in _POSITIONAL for p in self.parameters
        ) and not any(
            p.kind is inspect.Parameter.POSITIONAL_ONLY for p in self.parameters
        )
        self.defaults = {
            p.name: p.default for p in self.parameters if p.default is not _EMPTY
        }
        # the annotated parameters, as (annotation, kind) by name
        self.checks = {
            p.name: (self.annotations[p.name], p.kind)
            for p in self.parameters
            if self.annotations.get(p.name, _EMPTY) is not _EMPTY
        }
        # the checked parameters annotated with a class: a value of exactly
        # that class fits without a look at the annotation
        self.exact_types = {
            name: annotation
            for name, (annotation, kind) in self.checks.items()
            if isinstance(annotation, type) and kind not in _VARIADIC
        }
        self.retry, self.timeout = task_policies(owner, function)
        self.source = _source_or_none(function)
        self.documentation = inspect.getdoc(function)
        self.revision = _revision_of(owner, name, self.source, function)

    # -- binding a call ---------------------------------------------------------

    def bind(self, args: tuple, kwargs: dict, where: str = "") -> dict:
        """Map a call's arguments to parameter names, in signature order.

        Omitted arguments with defaults are left out: the worker's own
        defaults apply when the task runs, as in a plain call. Raises
        TypeError with a message naming the task and the fix.
        """
        if not kwargs and self.is_simple and len(args) == len(self.names):
            return dict(zip(self.names, args))
        if not self.is_simple:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError("%s%s: %s" % (where, self.call_name, error)) from None
            return dict(bound.arguments)
        self._check_count(args, where)
        bound = dict(zip(self.names, args))
        for key, value in kwargs.items():
            if key not in self.names:
                raise TypeError(
                    "%s%s got an unknown keyword %r%s"
                    % (where, self.call_name, key, did_you_mean(key, self.names))
                )
            if key in bound:
                raise TypeError(
                    "%s%s got two values for %r" % (where, self.call_name, key)
                )
            bound[key] = value
        return self._in_order(bound, where)

    def _check_count(self, args: tuple, where: str) -> None:
        if len(args) <= len(self.names):
            return
        raise TypeError(
            "%s%s takes %d argument%s (%s) but %d %s given"
            % (
                where,
                self.call_name,
                len(self.names),
                "" if len(self.names) == 1 else "s",
                ", ".join(self.names) or "none",
                len(args),
                "was" if len(args) == 1 else "were",
            )
        )

    def _in_order(self, bound: dict, where: str) -> dict:
        ordered = {}
        for name in self.names:
            if name in bound:
                ordered[name] = bound[name]
            elif name not in self.defaults:
                raise TypeError(
                    "%s%s is missing the argument %r" % (where, self.call_name, name)
                )
        return ordered

    @property
    def call_name(self) -> str:
        return "%s()" % self.qualname

    def split_arguments(self, values: dict) -> tuple[list, dict]:
        """Turn named argument values back into a call's args and kwargs.

        Parameters after one left out (it takes its default) go by keyword.
        """
        args, kwargs = [], {}
        gap = False
        for parameter in self.parameters:
            if parameter.name not in values:
                gap = gap or parameter.kind in _POSITIONAL
                continue
            value = values[parameter.name]
            if parameter.kind in _POSITIONAL and not gap:
                args.append(value)
            elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(value)
            elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
                kwargs.update(value)
            else:
                kwargs[parameter.name] = value
        return args, kwargs

    # -- checks -----------------------------------------------------------------

    def check_argument(self, name: str, value) -> None:
        """Raise TaskContractError when ``value`` contradicts the annotation
        (for ``*args`` and ``**kwargs``, each of their items)."""
        if type(value) is self.exact_types.get(name):
            return  # exactly the annotated class: nothing more to look at
        check = self.checks.get(name)
        if check is None:
            return
        annotation, kind = check
        if kind is inspect.Parameter.VAR_POSITIONAL:
            items = [("%s[%d]" % (name, i), item) for i, item in enumerate(value)]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            items = [("%s[%r]" % (name, key), item) for key, item in value.items()]
        else:
            items = [(name, value)]
        for label, item in items:
            if not matches(item, annotation):
                raise TaskContractError(
                    "%s parameter %r expects %s, got %s %s"
                    % (
                        self.call_name,
                        label,
                        describe_type(annotation),
                        type(item).__name__,
                        _short(item),
                    )
                )

    def check_result(self, value):
        """Check a returned value against the annotation; return it encoded."""
        expected = self.result
        if expected.keys is None:
            if value is not None:
                raise TaskContractError(
                    "%s is declared '-> None' but returned %s %s; return nothing"
                    " or declare its keys"
                    % (self.call_name, type(value).__name__, _short(value))
                )
            return None
        if type(value) is not dict:
            raise TaskContractError(
                "%s returned %s %s; it must return a dict with the keys %s"
                % (
                    self.call_name,
                    type(value).__name__,
                    _short(value),
                    expected.describe(),
                )
            )
        self._check_result_keys(value)
        return encode(value, "%s result" % self.call_name)

    def _check_result_keys(self, value: dict) -> None:
        expected = self.result
        missing = [key for key in expected.keys if key not in value]
        if missing:
            raise TaskContractError(
                "%s returned a dict without the declared key %r (it has %s)"
                % (
                    self.call_name,
                    missing[0],
                    ", ".join(repr(k) for k in value) or "no keys",
                )
            )
        extra = [key for key in value if key not in expected.keys]
        if extra:
            raise TaskContractError(
                "%s returned the undeclared key %r; add it to the return"
                " annotation (declared: %s)"
                % (self.call_name, extra[0], expected.describe())
            )
        for key, annotation in (expected.types or {}).items():
            if not matches(value[key], annotation):
                raise TaskContractError(
                    "%s result key %r expects %s, got %s %s"
                    % (
                        self.call_name,
                        key,
                        describe_type(annotation),
                        type(value[key]).__name__,
                        _short(value[key]),
                    )
                )

    def check_result_key(self, key, where: str = "") -> None:
        """Raise KeyError-like TypeError when ``key`` is not a declared result key."""
        keys = self.result.keys
        if keys is None:
            raise TypeError(
                "%s%s is declared '-> None': its result has no key %r"
                % (where, self.call_name, key)
            )
        if key not in keys:
            raise TypeError(
                "%s%s has no result key %r%s (declared: %s)"
                % (
                    where,
                    self.call_name,
                    key,
                    did_you_mean(key, keys),
                    self.result.describe(),
                )
            )

    def describe_signature(self) -> str:
        return "%s%s -> %s" % (self.name, self.signature, self.result.describe())


def find_task_specs(owner: type) -> dict[str, TaskSpec]:
    """Read every ``task_*`` method of an elf class into a TaskSpec."""
    specs = {}
    for name in dir(owner):
        if not name.startswith(TASK_PREFIX):
            continue
        member = inspect.getattr_static(owner, name)
        if isinstance(member, (staticmethod, classmethod)) or not callable(member):
            raise ElfDefinitionError(
                "%s.%s: tasks must be plain methods (def %s(self, ...)), found %s"
                % (owner.__name__, name, name, type(member).__name__)
            )
        raw = getattr(member, "__blumycelium_function__", member)
        if (
            inspect.iscoroutinefunction(raw)
            or inspect.isasyncgenfunction(raw)
            or inspect.isgeneratorfunction(raw)
        ):
            raise ElfDefinitionError(
                "%s.%s: tasks must be plain functions that return their result;"
                " async functions and generators are not supported (the worker"
                " runs each task to completion in its own process)"
                % (owner.__name__, name)
            )
        specs[name] = TaskSpec(owner, name, member)
    return specs


def _signature_without_self(function, qualname: str) -> inspect.Signature:
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].kind not in _POSITIONAL:
        raise ElfDefinitionError(
            "%s: a task is a method and takes self first" % qualname
        )
    return signature.replace(parameters=parameters[1:])


def _evaluated_annotations(function, qualname: str) -> dict:
    """Annotations with string forms (PEP 563) evaluated in the module globals."""
    raw = dict(getattr(function, "__annotations__", {}) or {})
    stringified = bool(function.__code__.co_flags & _FUTURE_ANNOTATIONS_FLAG)
    if not stringified:
        return raw
    evaluated = {}
    for name, annotation in raw.items():
        try:
            evaluated[name] = eval(annotation, function.__globals__)  # noqa: S307
        except Exception as error:
            if name == "return":
                raise ElfDefinitionError(
                    "%s: cannot evaluate the return annotation %r: %s"
                    % (qualname, annotation, error)
                ) from error
            evaluated[name] = _EMPTY
    return evaluated


_FUTURE_ANNOTATIONS_FLAG = __import__("__future__").annotations.compiler_flag


def _read_result_spec(annotations: dict, qualname: str) -> ResultSpec:
    if "return" not in annotations:
        raise ElfDefinitionError(
            "%s has no return annotation; tasks must declare what they return:"
            " %s" % (qualname, _RETURN_FORMS)
        )
    annotation = annotations["return"]
    if annotation is None or annotation is type(None):
        return ResultSpec(None)
    if isinstance(annotation, (tuple, list)):
        return ResultSpec(_check_keys(tuple(annotation), qualname))
    if isinstance(annotation, dict):
        keys = _check_keys(tuple(annotation), qualname)
        return ResultSpec(keys, dict(annotation))
    if isinstance(annotation, str):
        raise ElfDefinitionError(
            "%s: the return annotation %r is a single string; write it as a"
            " tuple: -> (%r,)" % (qualname, annotation, annotation)
        )
    raise ElfDefinitionError(
        "%s: the return annotation %r is not one blumycelium understands; %s"
        % (qualname, annotation, _RETURN_FORMS)
    )


def _check_keys(keys: tuple, qualname: str) -> tuple:
    if not keys:
        raise ElfDefinitionError(
            "%s: the return annotation declares no keys; use -> None when the"
            " task returns nothing" % qualname
        )
    for key in keys:
        if not isinstance(key, str):
            raise ElfDefinitionError(
                "%s: result keys must be strings, found %r" % (qualname, key)
            )
    if len(set(keys)) != len(keys):
        raise ElfDefinitionError("%s: a result key is declared twice" % qualname)
    return keys


def _source_or_none(function) -> str | None:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return None


def _revision_of(owner: type, name: str, source: str | None, function) -> str:
    text = source if source is not None else repr(function.__code__.co_code)
    digest = hashlib.sha256()
    digest.update(("%s.%s\n" % (owner.__qualname__, name)).encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:20]


def did_you_mean(name: str, candidates) -> str:
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1)
    return " (did you mean %r?)" % close[0] if close else ""


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- checking values against annotations ------------------------------------------


def matches(value, annotation) -> bool:
    """True when ``value`` fits ``annotation`` (unknown forms always fit)."""
    if type(value) is annotation:
        return True
    if annotation is typing.Any or annotation is object:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin is None:
        return _matches_class(value, annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(matches(value, option) for option in arguments)
    if origin is typing.Literal:
        return any(
            value == option and type(value) is type(option) for option in arguments
        )
    if not isinstance(origin, type) or not isinstance(value, origin):
        return not isinstance(origin, type)
    return _matches_items(value, origin, arguments)


def _matches_class(value, annotation) -> bool:
    if not isinstance(annotation, type):
        return True
    if annotation is float and isinstance(value, int):  # bool too, as for int
        return True
    return isinstance(value, annotation)


def _matches_items(value, origin, arguments) -> bool:
    if not arguments:
        return True
    if origin is dict and len(arguments) == 2:
        return all(
            matches(k, arguments[0]) and matches(v, arguments[1])
            for k, v in value.items()
        )
    if origin is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return all(matches(item, arguments[0]) for item in value)
        return len(arguments) == len(value) and all(
            matches(item, kind) for item, kind in zip(value, arguments)
        )
    if origin in (list, set, frozenset) and len(arguments) == 1:
        kinds = set(map(type, value))
        if len(kinds) == 1 and isinstance(arguments[0], type):
            return matches(
                value[0] if origin is list else next(iter(value)), arguments[0]
            )
        return all(matches(item, arguments[0]) for item in value)
    return True


def describe_type(annotation) -> str:
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__name__
    return repr(annotation).replace("typing.", "")
