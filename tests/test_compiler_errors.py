"""Flows that cannot run get a compiler's error: file:line:col, the source
line with a caret under the construct, what is wrong and what to write."""

import pytest

from blumycelium import CompileError, Mycelium
from tests.conftest import PRELUDE_LINES


def error_of(load_flows, body, *args):
    with pytest.raises(CompileError) as caught:
        module = load_flows(body)
        module.f.graph(*args)
    return caught.value


def assert_located(error, line, column, source, caret, *fragments):
    diagnostic = error.diagnostics[0]
    text = str(error)
    file_line = PRELUDE_LINES + 1 + line  # bodies start with a blank line
    header = "%s:%d:%d: error:" % (diagnostic.span.file, file_line, column)
    assert text.startswith(header), text
    rows = text.splitlines()
    assert rows[1].endswith("| " + source), text
    assert rows[2].endswith("| " + " " * (column - 1) + caret), text
    for fragment in fragments:
        assert fragment in text, text


def test_an_if_on_a_result_that_returns_from_a_branch_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            r = calc.task_add(1)
            if r["sum"] > 2:
                return 1
            return 2
    """,
    )
    assert_located(
        error,
        4,
        8,
        '    if r["sum"] > 2:',
        "^" * 12,
        '`if` needs the value of `r["sum"] > 2` at submit time',
        "this `if` holds `return`, which cannot depend on a task result",
        "assign a variable in each branch and return it after the `if`",
    )


def test_a_for_over_a_result_that_breaks_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            parts = words.task_split("a b")
            for word in parts["words"]:
                if word == "b":
                    break
                words.task_show(word)
    """,
    )
    assert_located(
        error,
        4,
        17,
        '    for word in parts["words"]:',
        "^" * 14,
        "this `for` needs the value",
        "a loop over a task result runs one job per element, and this one"
        " cannot: its body holds `break`",
    )


def test_a_value_carried_across_iterations_of_a_fan_out_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            parts = words.task_split("a b")
            total = 0
            for word in parts["words"]:
                total = total + calc.task_add(1)["sum"]
            return total
    """,
    )
    assert_located(
        error,
        5,
        17,
        '    for word in parts["words"]:',
        "^" * 14,
        "'total' is carried from one iteration to the next",
        "total = sum(values)",
    )


def test_a_set_comprehension_over_a_result_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            parts = words.task_split("a b")
            return {w for w in parts["words"]}
    """,
    )
    assert "only list, dict and generator comprehensions fan out" in str(error)


def test_a_while_on_a_result_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            x = 0
            while x < 3:
                x = calc.task_add(x)["sum"]
    """,
    )
    assert_located(error, 4, 11, "    while x < 3:", "^" * 5, "`while` needs")


def test_bool_of_a_result_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            flag = bool(calc.task_add(1)["sum"])
    """,
    )
    assert "bool() needs the value" in str(error)


def test_an_ordinary_function_given_a_result_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        def helper(value):
            return value + 1

        @myc.flow
        def f():
            helper(calc.task_add(1)["sum"])
    """,
    )
    assert_located(
        error,
        6,
        5,
        '    helper(calc.task_add(1)["sum"])',
        "^" * 31,
        "helper() is ordinary code run at submit time",
        "make it a task of an elf",
    )


def test_print_of_a_result_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            print(calc.task_add(1))
    """,
    )
    assert "print() is ordinary code" in str(error)
    assert "pass the value to a task that prints it" in str(error)


def test_an_unknown_result_key_is_refused_with_a_did_you_mean(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            return calc.task_add(1)["summ"]
    """,
    )
    assert_located(
        error,
        3,
        12,
        '    return calc.task_add(1)["summ"]',
        "^" * 24,
        "Calc.task_add() has no result key 'summ' (did you mean 'sum'?)",
    )


def test_a_none_task_has_no_keys(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            shown = words.task_show(1)
            return shown["value"]
    """,
    )
    assert "is declared '-> None': its result has no key 'value'" in str(error)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("calc.task_add(1, 2, 3)", "takes 2 arguments (a, b) but 3 were given"),
        ("calc.task_add(1, c=2)", "unknown keyword 'c'"),
        ("calc.task_add()", "missing the argument 'a'"),
        ("calc.task_add('one')", "parameter 'a' expects int, got str 'one'"),
        ("calc.task_total([{1, 2}])", "argument values[0] of Calc.task_total(): set"),
        (
            "words.task_show({'at': time.gmtime()})",
            'argument value["at"] of Words.task_show(): struct_time is not storable',
        ),
        ("calc.task_mul(1)", "'Calc' object has no attribute 'task_mul'"),
    ],
)
def test_bad_task_calls_are_refused_at_the_call(load_flows, call, message):
    body = (
        """
        @myc.flow
        def f():
            %s
    """
        % call
    )
    if "task_mul" in call:
        with pytest.raises(AttributeError, match=message):
            load_flows(body).f.graph()
        return
    error = error_of(load_flows, body)
    assert_located(error, 3, 5, "    " + call, "^" * len(call), message)


def test_changing_a_result_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            parts = words.task_split("a")
            parts["words"].append("b")
    """,
    )
    assert "append() would change the result of Words.task_split()" in str(error)


def test_a_task_call_inside_try_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        @myc.flow
        def f():
            try:
                calc.task_add(1)
            except ValueError:
                pass
    """,
    )
    assert "called inside try/except" in str(error)


def test_a_task_called_by_ordinary_code_during_the_build_is_refused(load_flows):
    error = error_of(
        load_flows,
        """
        def helper():
            return calc.task_add(1)

        @myc.flow
        def f():
            helper()
    """,
    )
    assert "Calc.task_add was called from ordinary code" in str(error)
    assert error.diagnostics[0].span.line == PRELUDE_LINES + 7  # helper() in f


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("def f():\n    yield calc.task_add(1)\n", "a flow cannot yield"),
        ("async def f():\n    pass\n", "flow 'f' is async"),
        (
            "def f():\n    class Inner:\n        pass\n",
            "classes cannot be defined inside a flow",
        ),
        ("def f():\n    if (n := 3):\n        pass\n", "assignment expressions"),
    ],
)
def test_unsupported_syntax_is_refused_when_the_flow_is_defined(
    load_flows, body, message
):
    with pytest.raises(CompileError, match=message) as caught:
        load_flows("@myc.flow\n" + body)
    assert caught.value.diagnostics[0].span.line > PRELUDE_LINES


def test_every_unsupported_construct_is_reported_at_once(load_flows):
    with pytest.raises(CompileError) as caught:
        load_flows("@myc.flow\ndef f():\n    yield 1\n    class A:\n        pass\n")
    assert len(caught.value.diagnostics) == 2


def test_other_decorators_on_a_flow_are_refused(load_flows):
    with pytest.raises(CompileError, match="the flow decorator must be its only"):
        load_flows(
            "import functools\n"
            "def logged(function):\n"
            "    @functools.wraps(function)\n"
            "    def wrapper(*args):\n"
            "        return function(*args)\n"
            "    return wrapper\n"
            "@myc.flow\n@logged\ndef f():\n    pass\n"
        )
    with pytest.raises(CompileError, match="found _lru_cache_wrapper"):
        load_flows(
            "import functools\n@myc.flow\n@functools.lru_cache\ndef f():\n    pass\n"
        )


def test_a_flow_without_source_gets_a_clear_error():
    namespace = {"myc": Mycelium("sqlite:///unused.db")}
    with pytest.raises(CompileError, match="define flows in a .py file"):
        exec("@myc.flow\ndef f():\n    pass\n", namespace)


def test_elves_of_another_mycelium_are_refused_at_submit(load_flows, tmp_path):
    module = load_flows(
        """
        other = Mycelium("%s")
        stray = Calc("stray", other)

        @myc.flow
        def f():
            stray.task_add(1)
    """
        % ("sqlite:///" + str(tmp_path / "other.db"))
    )
    with pytest.raises(CompileError, match="belongs to sqlite:///"):
        module.f()


def test_a_task_called_on_its_class_says_to_make_an_elf(load_flows):
    module = load_flows(
        """
        @myc.flow
        def f(n):
            return Calc.task_add(n, 1)["sum"]
        """
    )
    with pytest.raises(Exception) as caught:
        module.f(2)
    assert "Calc.task_add is called on the class Calc, not on an elf of it" in str(
        caught.value
    )
    assert ":%d:" % (PRELUDE_LINES + 4) in str(caught.value)
    with pytest.raises(TypeError, match="make one .e.g. calc = Calc"):
        module.Calc.task_add(2, 1)
