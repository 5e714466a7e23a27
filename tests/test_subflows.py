"""A flow calling another flow: the callee's graph is built into the caller's
run, its jobs keeping their own call sites and the calls that led to them."""

import pytest

from blumycelium import CompileError
from tests.conftest import PRELUDE_LINES, run_both

SUBFLOWS = """
@myc.flow
def double(x, extra=0):
    r = calc.task_add(x, x)
    out = r["sum"]
    if r["sum"] > 10:
        out = calc.task_add(r["sum"], extra)["sum"]
    return out

@myc.flow
def twice(x, extra=1):
    return double(double(x), extra=extra)

@myc.flow
def main(text):
    parts = words.task_split(text)
    first = twice(parts["count"], extra=100)
    each = [double(len(w)) for w in parts["words"]]
    return first, each
"""


def test_called_flows_are_built_into_the_run(load_flows):
    module = load_flows(SUBFLOWS)
    compiled, eager = run_both(module, module.main, "a bb cccccc")
    assert compiled == eager == (112, [2, 4, 12])
    run = module.main("a bb")
    sites = [job.site for job in run.jobs() if job.task == "task_add"]
    assert {site["flow"] for site in sites} == {"double"}
    nested = [site for site in sites if len(site.get("via", [])) == 2]
    assert [v["flow"] for v in nested[0]["via"]] == ["main", "twice"]
    assert [v["line"] for v in nested[0]["via"]] == [
        PRELUDE_LINES + 17,
        PRELUDE_LINES + 12,
    ]
    assert nested[0]["text"] == "r = calc.task_add(x, x)"


def test_recursion_on_static_arguments_unrolls_and_endless_recursion_is_refused(
    load_flows,
):
    module = load_flows("""
        @myc.flow
        def chain(n, value):
            if n == 0:
                return value
            return chain(n - 1, calc.task_add(value)["sum"])

        @myc.flow
        def endless(value):
            return endless(calc.task_add(value)["sum"])
    """)
    compiled, eager = run_both(module, module.chain, 5, 0)
    assert compiled == eager == 5
    with pytest.raises(CompileError, match="flow endless calls itself 50 levels deep"):
        module.endless.graph(1)


def test_a_called_flow_gets_its_arguments_checked(load_flows):
    module = load_flows(
        SUBFLOWS
        + """
@myc.flow
def wrong(x):
    return double(x, 1, 2)
"""
    )
    with pytest.raises(
        CompileError, match=r"flow double\(\): too many positional"
    ) as e:
        module.wrong.graph(1)
    assert "return double(x, 1, 2)" in str(e.value)  # the line of the call


def test_flow_methods_call_each_other_on_the_instance(load_flows):
    module = load_flows("""
        class Pipeline:
            def __init__(self, step):
                self.step = step

            @myc.flow
            def one(self, x):
                return calc.task_add(x, self.step)["sum"]

            @myc.flow
            def two(self, x):
                return self.one(self.one(x))
    """)
    pipeline = module.Pipeline(10)
    compiled, eager = run_both(module, pipeline.two, 1)
    assert compiled == eager == 21
