"""The expression evaluator: what it computes, and what it refuses."""

import re

import pytest

from blumycelium.errors import ExpressionError
from blumycelium.evaluator import check_expression, evaluate


@pytest.mark.parametrize(
    ("code", "inputs", "expected"),
    [
        ("_0.upper() + '!'", {"_0": "hi"}, "HI!"),
        ("_0 * 2", {"_0": "ab"}, "abab"),
        ("[_0] * 3", {"_0": 1}, [1, 1, 1]),
        ("_0['a'][1:3]", {"_0": {"a": [1, 2, 3, 4]}}, [2, 3]),
        ("_0[::-1]", {"_0": (1, 2, 3)}, (3, 2, 1)),
        ("len(_0) > 2 and _0[0] or 'none'", {"_0": [5, 6, 7]}, 5),
        ("1 < _0 < 3", {"_0": 2}, True),
        ("1 < _0 < 3", {"_0": 3}, False),
        ("'%s and %d' % (_0, _1)", {"_0": "x", "_1": 4}, "x and 4"),
        ("f'{_0!r:>6}|{_1:.2f}'", {"_0": "a", "_1": 3.14159}, "   'a'|3.14"),
        ("sorted(_0, reverse=True)", {"_0": [2, 3, 1]}, [3, 2, 1]),
        ("{'k': _0, **_1}", {"_0": 1, "_1": {"z": 2}}, {"k": 1, "z": 2}),
        ("_0 if _1 else 'no'", {"_0": "yes", "_1": []}, "no"),
        ("sum(_0) / len(_0)", {"_0": [1, 2, 3]}, 2.0),
        ("_0.get('missing', 0) + round(abs(-2.5))", {"_0": {}}, 2),
        ("not _0 is None", {"_0": 1}, True),
        ("list(zip(_0, range(3)))", {"_0": "ab"}, [("a", 0), ("b", 1)]),
        ("sorted(_0, key=len)", {"_0": ["bb", "a"]}, ["a", "bb"]),
        ("_0 in {1, 7}", {"_0": 7}, True),
        ("(3).real + _0.imag", {"_0": 2.0}, 3.0),
    ],
)
def test_expression_nodes_compute_what_python_computes(code, inputs, expected):
    assert evaluate(code, inputs) == expected


@pytest.mark.parametrize(
    ("code", "refused"),
    [
        ("__import__('os').system('true')", "underscore"),
        ("_0.__class__", "underscore"),
        ("open('/etc/passwd')", "unknown name 'open'"),
        ("eval('1')", "unknown name 'eval'"),
        ("(lambda: 1)", "Lambda is not allowed"),
        ("(lambda: 1)()", "only builtins and methods can be called"),
        ("[x for x in _0]", "ListComp is not allowed"),
        ("(y := 1)", "NamedExpr is not allowed"),
        ("_0.format(1)", "attribute 'format' of str is not allowed"),
        ("len.__self__", "underscore"),
        ("b'bytes'", "constant b'bytes' is not a JSON value"),
        ("'a' * 10**9", "repetition would create more than 10000000 items"),
        ("[[0] * 5000000, [0] * 5000000, [0] * 5000000]", "more than 10000000"),
        ("2 ** 10**7", "the integer would have about"),
        ("(10 ** 100000) ** 100000", "the integer would have about"),
        ("1 << 10**10", "the integer would have about"),
        ("'a'.ljust(10**10)", "ljust() to a width of 10000000000"),
        ("f'{1:>10000000000}'", "a format width of 10000000000"),
        ("'%*d' % (10**10, 1)", "a format width of 10000000000"),
        ("list(range(10**10))", "list() of a range would create more than"),
        ("'ab'.replace('', 'x' * 10**7)", "replace() would create more than"),
        ("'-'.join(['a' * 6000000, 'b' * 6000000])", "more than 10000000"),
        ("[len, str][1]", "'len' can only be called, not used as a value"),
        ("_0.upper", "'upper' can only be called, not used as a value"),
        ("import os", "not valid Python"),
    ],
)
def test_smuggled_code_is_refused_with_a_clear_message(code, refused):
    with pytest.raises(ExpressionError, match=re.escape(refused)):
        evaluate(code, {"_0": "text"})


def test_methods_are_looked_up_on_the_actual_value():
    with pytest.raises(ExpressionError, match="attribute 'upper' of int"):
        evaluate("_0.upper()", {"_0": 3})


def test_checked_trees_are_cached_by_code():
    first = check_expression("_0 + 1")
    assert evaluate("_0 + 1", {"_0": 1}) == 2
    assert first is not check_expression("_0 + 1")
