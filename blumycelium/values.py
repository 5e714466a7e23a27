"""The value codec: what a parameter or a result may be, and how it is stored.

Values are JSON-like: ``None``, booleans, integers, finite floats, strings,
lists, tuples and dicts of those. :func:`encode` turns a value into a
*JSON-ready* structure that every backend can store as it is (SQLite as JSON
text, ArangoDB as a document), and :func:`decode` turns it back into exactly
the value it was. What JSON cannot say is tagged with a small dict whose first
key is ``"__bm__"``:

    ("a", 1)               {"__bm__": "tuple", "items": ["a", 1]}
    {1: "a"}               {"__bm__": "dict", "items": [[1, "a"]]}
    2 ** 64                {"__bm__": "int", "hex": "0x10000000000000000"}

A user dict that itself has the key ``"__bm__"`` is stored in the tagged dict
form, so no user value can be mistaken for a tag. Integers beyond 2**53 are
tagged so that stores with double-precision numbers (ArangoDB) keep them
exact. Anything else (sets, bytes, NaN, objects, subclasses of the allowed
types that would come back as their base type) is refused with a
:class:`~blumycelium.errors.NotStorableError` naming the path inside the value.

Two more tags carry the graph inside a parameter: ``ref`` (the result of a job
of the same run, by its index) and ``expr`` (an expression node: code in a
checked subset of Python and its inputs). The compiler produces them through
the :class:`Placeholder` protocol; workers develop them (see ``develop.py``).

Lists of plain scalars take a fast path (one type scan at C speed, no walk in
Python), so a list of a million numbers costs about as much as ``json`` does.

:func:`dumps` and :func:`loads` use msgspec when it is installed (``pip
install msgspec``): ten times faster than the ``json`` module on a large list,
and as exact (integers of any size, floats to the last bit, the same values
read back). The ``json`` module serves where msgspec would differ: a text
with ``null`` in it (msgspec writes NaN and infinities as null, ``json``
refuses them) or a lone surrogate, and every text when msgspec is missing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .errors import NotStorableError

try:
    import msgspec
except ImportError:  # the standard json module does it all, slower
    msgspec = None

TAG = "__bm__"
MAX_EXACT_INT = 2**53 - 1
MAX_DEPTH = 100

_NONE_TYPE = type(None)
_PLAIN_TYPES = frozenset({str, bool, _NONE_TYPE})
_SCALAR_TYPES = frozenset({str, bool, _NONE_TYPE, int, float})
_CONTAINER_TYPES = frozenset({list, dict})


class Placeholder:
    """A value that is only known once a job has run.

    The compiler's result references and expression nodes derive from it; the
    codec asks them for their stored form through :meth:`encode_placeholder`.
    """

    __slots__ = ()

    def encode_placeholder(self, encoder: Encoder) -> dict:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class RefMarker:
    """A stored reference: job ``job`` of the same run, result key ``key``.

    ``key`` None stands for the job's whole result.
    """

    job: int
    key: str | None


@dataclass(frozen=True, slots=True)
class SkippedMarker:
    """The result of a job that was skipped: its branch was not taken."""


@dataclass(frozen=True, slots=True)
class FailedMarker:
    """A stored failure of a branch chosen at run time: raise it if used."""

    exception_type: str
    message: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class HelperMarker:
    """A stored expression helper: ``module:name`` at ``revision``."""

    module: str
    name: str
    revision: str


@dataclass(frozen=True, slots=True)
class ExprMarker:
    """A stored expression node: ``code`` over named ``inputs`` (JSON-ready)."""

    code: str
    inputs: dict
    line: int
    column: int


# What decode gives for a tagged dict that stands for no value of its own.
MARKERS = (RefMarker, SkippedMarker, FailedMarker, HelperMarker, ExprMarker)


def stored_as_is(value) -> bool:
    """Whether the encoder gives ``value`` back unchanged without looking
    into it: a string, a bool, None, an int JSON holds exactly."""
    kind = type(value)
    return (
        kind is str
        or kind is bool
        or value is None
        or (kind is int and -MAX_EXACT_INT <= value <= MAX_EXACT_INT)
    )


class Encoder:
    """Encodes values and remembers the job indices their references name."""

    def __init__(self):
        self.refs: set[int] = set()
        self.placeholders = 0  # how many placeholders were encoded
        self.depth = 0

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.depth = 0
            raise NotStorableError(
                "the value is nested more than %d levels deep (does it contain"
                " itself?)" % MAX_DEPTH
            )

    def encode(self, value):
        kind = type(value)
        if kind is str or kind is bool or value is None:
            return value
        if kind is int:
            return _encode_int(value)
        if kind is float:
            return _check_float(value)
        if kind is list or kind is tuple or kind is dict:
            self._enter()
            try:
                if kind is list:
                    return self._encode_list(value)
                if kind is tuple:
                    return {TAG: "tuple", "items": self._encode_list(value)}
                return self._encode_dict(value)
            finally:
                self.depth -= 1
        if isinstance(value, Placeholder):
            self.placeholders += 1
            return value.encode_placeholder(self)
        raise NotStorableError(describe_unstorable(value))

    def _encode_list(self, items) -> list:
        kinds = set(map(type, items))
        if kinds <= _PLAIN_TYPES:
            return list(items)
        if kinds <= _SCALAR_TYPES and _numbers_are_exact(items, kinds):
            return list(items)
        encoded = []
        for index, item in enumerate(items):
            try:
                encoded.append(self.encode(item))
            except NotStorableError as error:
                error.segments.insert(0, index)
                raise
        return encoded

    def _encode_dict(self, mapping: dict) -> dict:
        if TAG in mapping or not all(type(key) is str for key in mapping):
            return {TAG: "dict", "items": self._encode_pairs(mapping)}
        encoded = {}
        for key, item in mapping.items():
            try:
                encoded[key] = self.encode(item)
            except NotStorableError as error:
                error.segments.insert(0, key)
                raise
        return encoded

    def _encode_pairs(self, mapping: dict) -> list:
        pairs = []
        for key, item in mapping.items():
            try:
                check_key(key)
                pairs.append([self.encode(key), self.encode(item)])
            except NotStorableError as error:
                error.segments.insert(0, key)
                raise
        return pairs


def encode(value, root: str = "value", encoder: Encoder | None = None):
    """Return the JSON-ready form of ``value``; refuse what cannot round-trip.

    ``root`` names the value in errors (a parameter name, ``result``).
    """
    try:
        return (encoder or Encoder()).encode(value)
    except NotStorableError as error:
        error.root = root
        raise


def check_storable(value, root: str = "value") -> None:
    """Raise NotStorableError when ``value`` could not be stored exactly."""
    encode(value, root)


def _encode_int(value: int):
    if -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
        return value
    return {TAG: "int", "hex": hex(value)}


def _check_float(value: float) -> float:
    if math.isfinite(value):
        return value
    raise NotStorableError(
        "float %r is not storable: JSON has no NaN or infinity (use None or a"
        " string)" % value
    )


def _numbers_are_exact(items, kinds) -> bool:
    """True when the ints of ``items`` fit MAX_EXACT_INT and its floats are finite."""
    if kinds == {int}:
        return -MAX_EXACT_INT <= min(items) and max(items) <= MAX_EXACT_INT
    if kinds == {float}:
        return all(map(math.isfinite, items))
    for item in items:
        kind = type(item)
        if kind is int and not -MAX_EXACT_INT <= item <= MAX_EXACT_INT:
            return False
        if kind is float and not math.isfinite(item):
            return False
    return True


def check_key(key) -> None:
    """Dict keys must be hashable storable values: scalars or tuples of them."""
    kind = type(key)
    if kind is tuple:
        for part in key:
            check_key(part)
        return
    if kind not in _SCALAR_TYPES:
        raise NotStorableError("dict key %s" % describe_unstorable(key))
    if kind is float:
        _check_float(key)


_HINTS = {
    "set": "use a sorted list",
    "frozenset": "use a sorted list",
    "bytes": "decode it to str, or base64-encode it",
    "bytearray": "decode it to str, or base64-encode it",
    "datetime": "use an ISO 8601 string or a timestamp",
    "date": "use an ISO 8601 string",
    "Decimal": "use str or float",
    "complex": "use a [real, imag] list",
}


def describe_unstorable(value) -> str:
    """Say in words why ``value`` cannot be stored, with a fix when one is known."""
    kind = type(value)
    name = kind.__name__
    for base in (bool, int, float, str, list, tuple, dict):
        if isinstance(value, base):
            return (
                "%s is not storable: it would come back as a plain %s; convert"
                " it with %s(...)" % (name, base.__name__, base.__name__)
            )
    if callable(value) and hasattr(value, "__qualname__"):
        return "%s %r is not storable: pass data, not code" % (
            name,
            value.__qualname__,
        )
    hint = _HINTS.get(name)
    if hint:
        return "%s is not storable (%s)" % (name, hint)
    return (
        "%s is not storable (only None, bool, int, float, str, list, tuple"
        " and dict are)" % name
    )


def decode(data, resolve=None):
    """Return the value a JSON-ready structure stands for.

    References and expression nodes become :class:`RefMarker` and
    :class:`ExprMarker`, or, when ``resolve`` is given, whatever
    ``resolve(marker)`` returns for them.
    """
    kind = type(data)
    if kind is list:
        return _decode_list(data, resolve)
    if kind is dict:
        return _decode_dict(data, resolve)
    return data


def _decode_list(items: list, resolve) -> list:
    if _CONTAINER_TYPES.isdisjoint(set(map(type, items))):
        return items
    return [decode(item, resolve) for item in items]


def _decode_dict(mapping: dict, resolve):
    if TAG in mapping:
        return _decode_tagged(mapping, resolve)
    if _CONTAINER_TYPES.isdisjoint(set(map(type, mapping.values()))):
        return mapping
    return {key: decode(item, resolve) for key, item in mapping.items()}


def _decode_tagged(mapping: dict, resolve):
    try:
        return _decode_tag(mapping, resolve)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, NotStorableError):
            raise
        raise NotStorableError(
            "a stored %r document is malformed (%s: %s)"
            % (mapping.get(TAG), type(error).__name__, error)
        ) from error


def _decode_tag(mapping: dict, resolve):
    tag = mapping[TAG]
    if tag == "tuple":
        return tuple(decode(mapping["items"], resolve))
    if tag == "dict":
        return {
            _freeze(decode(key, resolve)): decode(item, resolve)
            for key, item in mapping["items"]
        }
    if tag == "int":
        return int(mapping["hex"], 16)
    if tag == "ref":
        marker = RefMarker(mapping["job"], mapping["key"])
    elif tag == "expr":
        line, column = mapping.get("site") or (0, 0)
        marker = ExprMarker(mapping["code"], mapping["inputs"], line, column)
    elif tag == "helper":
        marker = HelperMarker(mapping["module"], mapping["name"], mapping["revision"])
    elif tag == "skipped":
        return SkippedMarker()
    elif tag == "failed":
        line, column = mapping.get("site") or (0, 0)
        marker = FailedMarker(mapping["type"], mapping["message"], line, column)
    else:
        raise NotStorableError("unknown stored tag %r in %r" % (tag, mapping))
    return resolve(marker) if resolve else marker


def _freeze(key):
    """Stored tuple keys come back as tuples already; lists never are keys."""
    if type(key) is list:
        raise NotStorableError("a stored dict key is a list: %r" % (key,))
    return key


def has_placeholders(data) -> bool:
    """True when a JSON-ready structure holds a reference or expression node."""
    kind = type(data)
    if kind is list:
        if _CONTAINER_TYPES.isdisjoint(set(map(type, data))):
            return False
        return any(has_placeholders(item) for item in data)
    if kind is dict:
        tag = data.get(TAG)
        if tag in ("ref", "expr", "helper"):
            return True
        return any(has_placeholders(item) for item in data.values())
    return False


# One encoder for every call: json.dumps with options builds a new one each time.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(data) -> str:
    """JSON text of a JSON-ready structure (compact, no NaN)."""
    kind = type(data)
    if kind is int:  # the most common parameter, exact: JSON-ready ints are
        return int.__repr__(data)  # within MAX_EXACT_INT
    if data is None:  # what a task declared '-> None' returns
        return "null"
    if msgspec is not None and (kind is list or kind is dict):
        try:
            text = msgspec.json.encode(data)
        except (TypeError, ValueError):  # a lone surrogate, a foreign type
            pass
        else:
            if b"null" not in text:  # else json decides: it refuses NaN
                return text.decode()
    return _JSON_ENCODER.encode(data)


def loads(text: str):
    """The JSON-ready structure of JSON text written by :func:`dumps`."""
    if msgspec is not None:
        try:
            return msgspec.json.decode(text)
        except msgspec.DecodeError:  # json says why, or reads it anyway
            pass
    return json.loads(text)


def to_text(value, root: str = "value") -> str:
    """Encode ``value`` and return its JSON text."""
    return dumps(encode(value, root))


def from_text(text: str, resolve=None):
    """Decode a value from its JSON text."""
    return decode(loads(text), resolve)
