"""README's flow-language table, row by row, where no other test checked exactly
what the row says: the construct's values, its graph, or its error text."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from blumycelium import CompileError, Mycelium
from blumycelium.values import TAG
from tests.conftest import PRELUDE_LINES, ROOT, run_both
from tests.fixtures.helpers import clamp


def ref(job, key):
    return {TAG: "ref", "job": job, "key": key}


def drain(module, *elves):
    while sum(elf.start_jobs() for elf in (module.calc, module.words, *elves)):
        pass


def needs_value(what, shown, task="Calc.task_add"):
    """The refusal of a statement that needs a task result at submit time."""
    return (
        r"%s needs the value of `%s` at submit time, but it is the result of %s\(\)"
        r" \(line \d+\), known only when that job has run"
        % (re.escape(what), re.escape(shown), re.escape(task))
    )


ECHO = """
class Echo(MachineElf):
    def task_echo(self, value) -> ("value",):
        return {"value": value}

echo = Echo("echo", myc)
"""

# Each construct applied to task results: n = 3, ws = ["abc", "b", "c"],
# d = {"k": 1}, nums = [3, -1, 2], all four deferred.
EXPRESSION_FLOW = """
@myc.flow
def f(text):
    parts = words.task_split(text)
    n = parts["count"]
    ws = parts["words"]
    d = echo.task_echo({"k": 1})["value"]
    nums = echo.task_echo([3, -1, 2])["value"]
    return echo.task_echo((%s,))["value"]
"""
# fmt: off
OPERATORS = [
    ("-n + n * 3 - n // 2 + n**2 % 5", 9), ("not n", False),
    ("n > 5 or n < 0", False), ("1 <= n != 2 and n >= 1", True),
    ('"many" if n > 2 else "few"', "many"), ("ws[1:]", ["b", "c"]),
    ("ws[::-1]", ["c", "b", "abc"]), ("ws[0][1:3]", "bc"), ("n.real", 3),
    ("(n / 2).is_integer()", False), ("ws[0].upper()", "ABC"),
    ('ws.index("b")', 1), ('d.get("k")', 1), ('f"{n:03d}|{ws[0]!r}"', "003|'abc'"),
    ('"%s=%d" % (ws[0], n)', "abc=3"),
]
BUILTINS = [
    ("len(ws)", 3), ("sum(nums)", 4), ("min(nums)", -1), ("max(ws)", "c"),
    ("sorted(nums)", [-1, 2, 3]), ("str(n)", "3"), ("int(n / 2)", 1),
    ("float(n)", 3.0), ("round(n / 7, 2)", 0.43), ("abs(nums[1])", 1),
    ("any(nums)", True), ("all(nums)", True), ("list(d.items())", [("k", 1)]),
    ("dict(zip(ws, nums))", {"abc": 3, "b": -1, "c": 2}),
    ("tuple(ws)", ("abc", "b", "c")), ("sorted(set(ws + ws))", ["abc", "b", "c"]),
    ("list(enumerate(ws))", [(0, "abc"), (1, "b"), (2, "c")]),
    ("list(range(n))", [0, 1, 2]), ("list(reversed(ws))", ["c", "b", "abc"]),
    ("repr(ws[0])", "'abc'"),
]
# fmt: on


@pytest.mark.parametrize("cases", [OPERATORS, BUILTINS], ids=["operators", "builtins"])
def test_expressions_on_results_are_nodes_the_consuming_worker_evaluates(
    load_flows, cases
):
    module = load_flows(ECHO + EXPRESSION_FLOW % ", ".join(code for code, _ in cases))
    run = module.f("abc b c")
    drain(module, module.echo)
    expected = tuple(value for _, value in cases)
    assert run.result(timeout=10) == module.f.eager("abc b c") == expected
    shown = module.f.graph("abc b c").jobs[3].arguments["value"]
    assert [item[TAG] for item in shown["items"]] == ["expr"] * len(cases)


def test_results_put_in_static_containers_by_every_means_are_references(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            s = calc.task_add(x)["sum"]
            items = [s]
            items.append(s)
            items.extend([s, 0])
            items.insert(0, s)
            table = {"a": s}
            table["b"] = s
            total = calc.task_total(items)
            words.task_show(({"t": table}, [s, 1]))
            items.insert(0, 100)
            return items, table, total["total"]
    """)
    compiled, eager = run_both(module, module.f, 4)
    assert compiled == eager == ([100, 5, 5, 5, 5, 0], {"a": 5, "b": 5}, 20)
    graph = module.f.graph(4)
    assert graph.jobs[1].arguments["values"] == [ref(0, "sum")] * 4 + [0]
    assert graph.jobs[1].dependencies == {0}
    table = {"a": ref(0, "sum"), "b": ref(0, "sum")}
    assert graph.jobs[2].arguments["value"] == {
        TAG: "tuple",
        "items": [{"t": table}, [ref(0, "sum"), 1]],
    }


def test_a_static_loop_of_a_hundred_unrolls_and_plain_code_runs_at_submit_time(
    load_flows, capsys
):
    module = load_flows("""
        def scale(value):
            return value * 2

        @myc.flow
        def f():
            for nb in range(100):
                calc.task_add(scale(nb))
            print("built")
            time.sleep(0)
            return [i for i in range(6) if i % 2 == 0]
    """)
    graph = module.f.graph()
    assert [job.arguments for job in graph.jobs] == [{"a": 2 * n} for n in range(100)]
    assert graph.result == [0, 2, 4]
    assert capsys.readouterr().out == "built\n"


def test_for_else_over_a_result_runs_its_else_once_after_the_copies(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            sizes = []
            for word in words.task_split(text)["words"]:
                sizes.append(calc.task_add(len(word))["sum"])
            else:
                done = calc.task_total(sizes)
            return sizes, done["total"]
    """)
    assert run_both(module, module.f, "a bb ccc") == (([2, 3, 4], 9), ([2, 3, 4], 9))
    run = module.f("a bb ccc")
    drain(module)
    tasks = ["task_split", "expand"] + ["task_add"] * 3 + ["gather", "task_total"]
    assert [(j.task, j.status) for j in run.jobs()] == [(t, "done") for t in tasks]


def test_comprehensions_over_a_result_fan_out_and_their_if_guards_jobs(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            ws = words.task_split(text)["words"]
            kept = [calc.task_add(len(w))["sum"] for w in ws if len(w) > 1]
            pairs = [calc.task_add(len(a), len(b))["sum"] for a in ws for b in ws]
            sizes = tuple(calc.task_add(len(w), 0)["sum"] for w in ws)
            table = {w: calc.task_add(len(w), 10)["sum"] for w in ws}
            return kept, pairs, sizes, table
    """)
    compiled, eager = run_both(module, module.f, "a bb")
    assert compiled == eager == ([3], [2, 3, 3, 4], (1, 2), {"a": 11, "bb": 12})
    run = module.f("a bb c ddd")
    drain(module)
    assert [j.status for j in run.jobs()][2:6] == ["skipped", "done"] * 2
    assert run.result(timeout=10)[0] == [3, 4]


def test_a_starred_target_in_a_loop_over_a_result_unpacks_as_in_python(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            rests = []
            for first, *rest in words.task_split(text)["words"]:
                rests.append(rest)
            ends = [(a, z) for a, *_, z in words.task_split(text)["words"]]
            return rests, ends
    """)
    compiled, eager = run_both(module, module.f, "abc de")
    assert compiled == eager == ([["b", "c"], ["e"]], [("a", "c"), ("d", "e")])


def test_an_element_that_does_not_unpack_fails_its_job_as_python_would(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            out = []
            for a, b in words.task_split(text)["words"]:
                out.append(calc.task_add(len(a + b)))
            return out
    """)
    with pytest.raises(ValueError, match=r"too many values to unpack \(expected 2\)"):
        module.f.__wrapped__("ab cde")
    run = module.f("ab cde")
    for elf in (module.words, module.calc, module.words, module.calc):
        elf.start_jobs(raise_exceptions=False)
    assert run.wait(timeout=30) == "failed"
    messages = [f.message for f in run.failures()]
    assert any("too many values to unpack (expected 2)" in m for m in messages)


def test_a_helper_node_names_module_name_and_revision_and_static_calls_run_now(
    load_flows,
):
    module = load_flows("""
        from tests.fixtures.helpers import clamp

        @myc.flow
        def f(text, limit):
            return clamp(words.task_split(text)["count"], high=limit), clamp(50, 0, 9)
    """)
    node, static = module.f.graph("a b c", 2).result["items"]
    assert static == 9
    assert node["code"] == "_0(_1, high=2)"
    assert node["inputs"]["_0"] == {
        TAG: "helper",
        "module": "tests.fixtures.helpers",
        "name": "clamp",
        "revision": clamp.__blumycelium_expression__.revision,
    }
    assert run_both(module, module.f, "a b c", 2) == ((2, 9), (2, 9))


def test_after_with_several_jobs_holds_every_job_of_the_block(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            first = words.task_show("a")
            second = words.task_show("b")
            with after(first, second):
                x = calc.task_add(1)
                y = calc.task_add(x["sum"])
            calc.task_add(5)
            return y["sum"]
    """)
    jobs = module.f.graph().jobs
    waits = [job.dependencies for job in jobs]
    assert waits == [set(), set(), {0, 1}, {0, 1, 2}, set()]
    assert [j.arguments for j in jobs[2:]] == [{"a": 1}, {"a": ref(2, "sum")}, {"a": 5}]
    assert run_both(module, module.f) == (3, 3)


CLOSURES = """
    def make():
        bonus = 1
        @myc.flow
        def f(x, y=1, *more, scale=2, tags=[], **extra):
            sums = [calc.task_add(v * scale, bonus)["sum"] for v in (x, y) + more]
            return sums, list(tags), extra
        def set_bonus(value):
            nonlocal bonus
            bonus = value
        return f, set_bonus

    flow, set_bonus = make()
"""


def test_closures_defaults_star_args_and_kwargs_behave_as_in_the_eager_function(
    load_flows,
):
    module = load_flows(CLOSURES)
    compiled, eager = run_both(module, module.flow, 1, 2, 3, scale=3, q=4)
    assert compiled == eager == ([4, 7, 10], [], {"q": 4})
    module.set_bonus(10)
    module.flow.__wrapped__.__kwdefaults__["tags"].append("t")
    assert run_both(module, module.flow, 1) == (([12, 12], ["t"], {}),) * 2


def test_defaults_set_after_the_flow_is_defined_apply_to_runs_too(load_flows):
    module = load_flows(CLOSURES)
    module.set_bonus(10)
    module.flow.__wrapped__.__kwdefaults__ = {"scale": 5, "tags": ["new"]}
    module.flow.__wrapped__.__defaults__ = (7,)
    compiled, eager = run_both(module, module.flow, 1)
    assert compiled == eager == ([15, 45], ["new"], {})


REFUSED_FLOW = """
import types

def helper(value):
    return value

def calls_a_task():
    return calc.task_add(9)

@myc.flow
def f():
    box, o = {}, types.SimpleNamespace()
    r = calc.task_add(1)
    parts = words.task_split("a b")
    d = echo.task_echo({"k": 1})["value"]
%s
"""
IF_NEEDS = needs_value("`if`", 'r["sum"] > 2')
IF_HOLDS = re.escape("; this `if` holds `%s`, which cannot depend on a task result")
IF_IN_LOOP = 'for i in range(3):\n    if r["sum"] > 2:\n        %s'
FOR = 'for %s in parts["words"]:\n    words.task_show(1)\n    %s'
FOR_CANNOT = needs_value("this `for`", 'parts["words"]', "Words.task_split") + (
    "; a loop over a task result runs one job per element, and this one cannot: "
)
NOT_NAMES = "it assigns each element to something other than plain names"
ORDINARY = (
    r"%s\(\) is ordinary code run at submit time; calling it with the result of"
    r" Calc\.task_add\(\) \(line \d+\) needs that value now"
)
CHANGES = (
    r"%s\(\) would change the result of %s\(\) \(line \d+\), which is a read-only"
    " snapshot"
)
TRY = "try:\n    calc.task_add(2)\nexcept ValueError:\n    pass"
IN_TRY = re.escape(
    "Calc.task_add() is called inside try/except; the job runs later on a worker,"
    " so except cannot catch its failure"
)
REFUSALS = {
    "if-break": (IF_IN_LOOP % "break", IF_NEEDS + IF_HOLDS % "break"),
    "if-continue": (IF_IN_LOOP % "continue", IF_NEEDS + IF_HOLDS % "continue"),
    "while": ('while r["sum"] > 2:\n    pass', needs_value("`while`", 'r["sum"] > 2')),
    "assert": ('assert r["sum"] > 2', needs_value("`assert`", 'r["sum"] > 2')),
    "match": (
        'match r["sum"]:\n    case 1:\n        pass',
        needs_value("`match`", 'r["sum"]'),
    ),
    "bool": ('flag = bool(r["sum"])', needs_value("bool()", 'bool(r["sum"])')),
    "for-continue": (FOR % ("w", "continue"), FOR_CANNOT + "its body holds `continue`"),
    "for-return": (FOR % ("w", "return 1"), FOR_CANNOT + "its body holds `return`"),
    "for-subscript": (FOR % ("box['k']", "pass"), FOR_CANNOT + NOT_NAMES),
    "for-attribute": (FOR % ("o.attr", "pass"), FOR_CANNOT + NOT_NAMES),
    "for-nested": (FOR % ("a, (b, c)", "pass"), FOR_CANNOT + NOT_NAMES),
    "carried": (
        'total = 0\nfor w in parts["words"]:\n    total = total + r["sum"]',
        "(?s)'total' is carried from one iteration to the next of a loop over a task"
        " result;.*= hint: gather the per-element values in a list .* and combine"
        " them after the loop",
    ),
    "unpacking": ('a, b = r["sum"]', needs_value("unpacking", 'r["sum"]')),
    "helper": ('helper(r["sum"])', ORDINARY % "helper"),
    "print": ('print(r["sum"])', ORDINARY % "print"),
    "append": ('parts["words"].append(1)', CHANGES % ("append", r"Words\.task_split")),
    "update": ('d.update({"j": 2})', CHANGES % ("update", r"Echo\.task_echo")),
    "try": (TRY, IN_TRY),
    "ordinary-code": (
        "calls_a_task()",
        r"Calc\.task_add was called from ordinary code .*; only task calls written"
        r" in the flow itself become jobs",
    ),
}


@pytest.mark.parametrize(("statement", "message"), REFUSALS.values(), ids=REFUSALS)
def test_constructs_the_table_rejects_are_refused_with_its_message(
    load_flows, statement, message
):
    module = load_flows(ECHO + REFUSED_FLOW % textwrap.indent(statement, "    "))
    with pytest.raises(CompileError, match=message):
        module.f.graph()


def test_update_on_a_whole_result_is_refused_as_a_change_of_a_snapshot(load_flows):
    module = load_flows(ECHO + REFUSED_FLOW % '    parts.update({"j": 2})')
    with pytest.raises(CompileError, match=CHANGES % ("update", r"Words\.task_split")):
        module.f.graph()


def test_a_name_from_one_branch_is_refused_with_the_line_of_its_if(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            r = calc.task_add(x)
            if r["sum"] > 3:
                only = calc.task_add(1)
            return only["sum"]
    """)
    line = PRELUDE_LINES + 5
    message = "'only' is assigned in only one branch of the `if` at line %d " % line
    with pytest.raises(CompileError, match=message):
        module.f.graph(1)


def test_await_in_a_flow_is_refused_when_the_flow_is_defined(load_flows):
    with pytest.raises(CompileError, match="await is not allowed in a flow"):
        load_flows("@myc.flow\nasync def f():\n    await calc.task_add(1)\n")


def test_a_flow_defined_by_exec_is_refused_with_the_source_message(tmp_path):
    namespace = {"myc": Mycelium("sqlite:///" + str(tmp_path / "exec.db"))}
    message = r"(?s)the source of flow 'f' cannot be read .*define flows in a \.py file"
    with pytest.raises(CompileError, match=message):
        exec("@myc.flow\ndef f():\n    pass\n", namespace)
    namespace["myc"].close()


def test_blumycelium_job_shows_the_calls_that_led_to_a_called_flows_job(
    load_flows, db_url
):
    module = load_flows("""
        @myc.flow
        def inner(x):
            return calc.task_add(x)["sum"]

        @myc.flow
        def outer(x):
            return inner(x)
    """)
    run = module.outer(1)
    drain(module)
    assert run.result(timeout=10) == 2
    [job] = run.jobs()
    command = [sys.executable, "-m", "blumycelium", "job", str(job.id)]
    env = dict(os.environ, BLUMYCELIUM_URL=db_url)
    options = dict(env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    shown = subprocess.run(command, **options)
    assert shown.returncode == 0, shown.stderr
    called_from = "%s:%d in flow outer" % (module.__file__, PRELUDE_LINES + 8)
    assert re.search(r"called from:?\s+" + re.escape(called_from), shown.stdout)
