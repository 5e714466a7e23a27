"""The value codec: exact round trips, refusals naming the path, fast paths."""

import collections
import datetime
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blumycelium.errors import NotStorableError
from blumycelium.values import (
    TAG,
    ExprMarker,
    RefMarker,
    decode,
    dumps,
    encode,
    from_text,
    has_placeholders,
    loads,
    to_text,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
keys = st.one_of(
    st.text(),
    st.integers(),
    st.booleans(),
    st.none(),
    st.tuples(st.integers(), st.text()),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6)
        | st.tuples(children, children)
        | st.dictionaries(keys, children, max_size=6)
        | st.dictionaries(st.just(TAG) | st.text(), children, max_size=3)
    ),
    max_leaves=30,
)


def same(left, right) -> bool:
    """Equality that also compares types and float signs all the way down."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict):
        return list(left) == list(right) and all(
            same(left[key], right[key]) and type(key) is type(other)
            for key, other in zip(left, right)
        )
    return left == right


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_storable_value_survives_a_text_round_trip(value):
    assert same(from_text(to_text(value)), value)


@given(st.integers(min_value=-(10**400), max_value=10**400))
def test_integers_of_any_size_round_trip_and_big_ones_are_tagged(number):
    encoded = encode(number)
    assert decode(loads(dumps(encoded))) == number
    if abs(number) > 2**53 - 1:
        assert encoded[TAG] == "int"


def test_tuples_stay_tuples_and_int_keys_stay_ints():
    value = {"pair": (1, "a"), "table": {1: "one", (2, 3): [4]}}
    back = from_text(to_text(value))
    assert back == value
    assert type(back["pair"]) is tuple
    assert list(back["table"]) == [1, (2, 3)]


def test_a_user_dict_with_the_tag_key_is_not_mistaken_for_a_tag():
    value = {TAG: "ref", "job": 1, "key": "x"}
    assert from_text(to_text(value)) == value
    assert not has_placeholders(encode(value))


def test_negative_zero_and_unicode_survive():
    value = [-0.0, "żółw 🐢", "\udc80 lone surrogate"]
    back = from_text(to_text(value))
    assert math.copysign(1, back[0]) == -1
    assert back[1:] == value[1:]


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        (
            {"weights": [1, 2, 3, {"when": datetime.datetime(2026, 1, 1)}]},
            'value["weights"][3]["when"]',
            "datetime is not storable",
        ),
        ([float("nan")], "value[0]", "float nan is not storable"),
        ({"x": float("inf")}, 'value["x"]', "float inf is not storable"),
        ({1, 2}, "value", "set is not storable"),
        (b"bytes", "value", "bytes is not storable"),
        ([len], "value[0]", "builtin_function_or_method 'len' is not storable"),
        (collections.OrderedDict(a=1), "value", "OrderedDict is not storable"),
        (
            {"p": collections.namedtuple("P", "x")(1)},
            'value["p"]',
            "P is not storable: it would come back as a plain tuple",
        ),
        ({frozenset(): 1}, "value[frozenset()]", "dict key frozenset"),
        (object(), "value", "object is not storable"),
    ],
)
def test_unstorable_values_are_refused_with_their_path(value, path, reason):
    with pytest.raises(NotStorableError) as caught:
        encode(value)
    assert caught.value.path == path
    assert reason in str(caught.value)


def test_the_root_names_the_parameter():
    with pytest.raises(NotStorableError, match=r"^weights\[0\]: set"):
        encode([{1}], "weights")


def test_a_million_integers_are_one_flat_json_array():
    numbers = list(range(1_000_000))
    encoded = encode(numbers)
    assert encoded == numbers and encoded is not numbers
    text = dumps(encoded)
    assert text.startswith("[0,1,2,") and json.loads(text) == numbers
    assert decode(loads(text)) == numbers


def test_encoding_snapshots_lists_so_later_changes_do_not_leak():
    numbers = [1, 2, 3]
    encoded = encode(numbers)
    numbers.append(4)
    assert encoded == [1, 2, 3]


def test_references_and_expressions_decode_into_markers_or_resolved_values():
    data = [
        {TAG: "ref", "job": 2, "key": "v"},
        {TAG: "expr", "code": "_0 + 1", "inputs": {"_0": 1}, "site": [3, 5]},
    ]
    assert has_placeholders(data)
    markers = decode(data)
    assert markers == [RefMarker(2, "v"), ExprMarker("_0 + 1", {"_0": 1}, 3, 5)]
    assert decode(data, lambda marker: type(marker).__name__) == [
        "RefMarker",
        "ExprMarker",
    ]


def test_an_unknown_tag_is_refused():
    with pytest.raises(NotStorableError, match="unknown stored tag"):
        decode({TAG: "pickle", "data": "..."})


def test_arguments_recorded_on_a_run_never_fail_the_submission():
    from blumycelium.mycelium import stored_arguments

    class Moody:
        def __repr__(self):
            raise RuntimeError("no repr for you")

    deep = 0
    for _ in range(5000):
        deep = [deep]
    stored = stored_arguments({"moody": Moody(), "deep": deep, "n": 3})
    assert stored["moody"]["repr"].startswith("<Moody instance at 0x")
    assert stored["deep"]["repr"] == "[[[[[[[...]]]]]]]"
    assert stored["n"] == {"value": 3}
