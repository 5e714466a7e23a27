"""What the compiler's move to Python's ast changed, pinned: behaviours a
differential run of the libcst rewrite against the ast one found apart, each
settled by what Python does with the same code."""

import subprocess
import sys
import traceback

import pytest

from blumycelium import CompileError
from tests.conftest import PRELUDE_LINES, ROOT, run_both


def flow_frames(error) -> list[int]:
    frames = traceback.extract_tb(error.__traceback__)
    return [frame.lineno - PRELUDE_LINES for frame in frames if frame.name == "f"]


def test_statements_joined_by_semicolons_run_in_order_in_a_fan_out(
    load_flows, tmp_path
):
    body = """
        @myc.flow
        def f(text):
            out = []
            for w in words.task_split(text)["words"]:
                x = calc.task_add(len(w))["sum"]; y = x + 1
                out.append(y)
            return out
    """
    module = load_flows(body)
    assert run_both(module, module.f, "a bb ccc") == ([3, 4, 5], [3, 4, 5])
    # and the preview reads the loop as the run does: no error
    preview = subprocess.run(
        [sys.executable, "-m", "blumycelium.compile", module.__file__],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert "carried" not in preview.stdout


def item_in_a_branch(load_flows, key: str):
    """A flow setting ``d[<key>]`` in a branch on a task result."""
    return load_flows(
        """
        @myc.flow
        def f(x):
            s = calc.task_add(x)["sum"]
            d = {}
            if s > 3:
                d[%s] = s
            return d
    """
        % key
    )


def test_a_parenthesized_first_key_is_still_one_of_several(load_flows):
    module = item_in_a_branch(load_flows, "(1), 2")
    with pytest.raises(CompileError, match="changes 'd' in place inside a branch"):
        module.f.graph(5)


def test_one_key_in_parentheses_is_set_on_a_copy_in_a_branch(load_flows):
    module = item_in_a_branch(load_flows, "(1, 2)")
    assert run_both(module, module.f, 5) == ({(1, 2): 6}, {(1, 2): 6})
    assert run_both(module, module.f, 1) == ({}, {})


def test_a_generator_unpacked_into_a_call_is_consumed_by_it(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            found = words.task_split(text)["words"]
            return calc.task_total(list(*(w for w in [found])))["total"]
    """)
    graph = module.f.graph("a b")
    assert [job.spec.name for job in graph.jobs] == ["task_split", "task_total"]


@pytest.mark.parametrize(
    "header,column",
    [
        ("async def f(x):", 11),
        ("async  def   c(x):", 14),
    ],
)
def test_an_async_flow_is_shown_at_its_name(load_flows, header, column):
    with pytest.raises(CompileError) as caught:
        load_flows("\n@myc.flow\n%s\n    return x\n" % header)
    span = caught.value.diagnostics[0].span
    assert (span.line - PRELUDE_LINES, span.column + 1) == (3, column)


def test_a_class_in_a_flow_is_shown_at_its_name(load_flows):
    with pytest.raises(CompileError) as caught:
        load_flows("""
            @myc.flow
            def f(x):
                class ss(object):
                    pass
                return x
        """)
    span = caught.value.diagnostics[0].span
    assert (span.line - PRELUDE_LINES, span.column + 1) == (4, 11)
    assert span.end_column - span.column == 2


def test_an_error_in_a_multi_line_comprehension_is_at_its_first_line(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            z = [1 / (i - 1)
                 for i in range(x)]
            return z
    """)
    with pytest.raises(ZeroDivisionError) as caught:
        module.f.graph(3)
    assert flow_frames(caught.value)[0] == 4


def test_an_error_on_a_later_line_of_a_statement_is_at_that_line(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            y = (x +
                 1 +
                 int("zz"))
            return y
    """)
    with pytest.raises(ValueError) as caught:
        module.f.graph(3)
    assert flow_frames(caught.value) == [6]


def test_unpacking_a_loop_element_fails_at_the_for_line(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            out = []
            for a, b in [(1, 2, 3)]:
                out.append(a)
                out.append(b)
            return out
    """)
    with pytest.raises(ValueError) as caught:
        module.f.graph(3)
    frames = traceback.extract_tb(caught.value.__traceback__)
    lines = [f.lineno - PRELUDE_LINES for f in frames if f.filename == module.__file__]
    assert set(lines) == {5}, lines


def test_names_a_match_binds_in_a_loop_outlive_it(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            for i in range(x):
                match [i, i + 1]:
                    case [a, *rest]:
                        pass
            return a, rest
    """)
    assert module.f.eager(3) == (2, [3])
    assert run_both(module, module.f, 3)[0] == (2, [3])


def test_a_generator_over_a_result_unpacked_into_a_call_needs_its_value(
    load_flows,
):
    module = load_flows("""
        @myc.flow
        def f(text):
            found = words.task_split(text)["words"]
            return calc.task_add(*(len(w) for w in found))
    """)
    with pytest.raises(CompileError) as caught:
        module.f.graph("a b")
    text = str(caught.value)
    assert "unpacking needs the value of" in text, text
    assert "consumed twice" not in text
