"""Changing an object in place inside a loop over a task result or a branch on
one: refused where the compiled flow would make the change the wrong number of
times, allowed where it matches the eager function."""

import textwrap

import pytest

from blumycelium import CompileError
from tests.conftest import run_both

LOOP = """
    @myc.flow
    def f(text):
        parts = words.task_split(text)
        {setup}
        for word in parts["words"]:
            {change}
        return 0
"""

BRANCH = """
    @myc.flow
    def f(text):
        parts = words.task_split(text)
        {setup}
        if parts["count"] > 1:
            {change}
        return 0
"""

REFUSED = [
    ("box = [0]", "box[0] += 1", "box"),
    ("ns = Namespace()", "ns.n = 3", "ns"),
    ("out = [1, 2]", "out.pop()", "out"),
    ("d = {'n': 0}", "d['n'] += 1", "d"),
    ("d = {'n': 0}", "del d['n']", "d"),
    ("seen = set()", "seen.add(1)", "seen"),
]


@pytest.mark.parametrize("template,where", [(LOOP, "loop"), (BRANCH, "branch")])
@pytest.mark.parametrize("setup,change,name", REFUSED)
def test_a_change_in_place_of_an_outer_object_is_refused(
    load_flows, template, where, setup, change, name
):
    module = load_flows(
        "from types import SimpleNamespace as Namespace\n"
        + textwrap.dedent(template).format(setup=setup, change=change)
    )
    with pytest.raises(CompileError) as caught:
        module.f.graph("a b c")
    message = str(caught.value)
    in_place = "changes %r in place inside a %s" % (name, where) in message
    carried = "%r is carried from one iteration" % name in message
    assert in_place or (carried and where == "loop"), message
    assert (change if in_place else "for word in") in message


def test_a_module_list_grown_in_a_loop_over_a_result_is_refused(load_flows):
    module = load_flows("""
        SEEN = []

        @myc.flow
        def f(text):
            for word in words.task_split(text)["words"]:
                SEEN.append(word)
    """)
    with pytest.raises(CompileError, match="changes 'SEEN' in place inside a loop"):
        module.f.graph("a b")
    assert module.SEEN == []


def test_objects_made_in_the_body_may_change_freely(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            rows = []
            for word in words.task_split(text)["words"]:
                row = {"word": word}
                row["size"] = calc.task_add(len(word), 0)["sum"]
                row.update(upper=word.upper())
                rows.append(row)
            return rows
    """)
    compiled, eager = run_both(module, module.f, "ab c")
    assert (
        compiled
        == eager
        == [
            {"word": "ab", "size": 2, "upper": "AB"},
            {"word": "c", "size": 1, "upper": "C"},
        ]
    )


def test_changes_under_static_control_flow_run_as_python(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text, loud):
            box = [0]
            tally = {"n": 0}
            for n in range(3):
                box[0] += n
            if loud:
                tally["n"] += 1
            return calc.task_add(box[0], tally["n"])["sum"]
    """)
    compiled, eager = run_both(module, module.f, "x", True)
    assert compiled == eager == 4


def test_appending_after_a_fan_out_and_after_branches_matches_python(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            sizes = []
            for word in parts["words"]:
                sizes.append(calc.task_add(len(word), 0)["sum"])
            sizes.append(-1)
            if parts["count"] > 1:
                sizes.extend([100])
            else:
                sizes.extend([200, 300])
            sizes.append(0)
            return sizes
    """)
    compiled, eager = run_both(module, module.f, "ab c")
    assert compiled == eager == [2, 1, -1, 100, 0]
    compiled, eager = run_both(module, module.f, "abc")
    assert compiled == eager == [3, -1, 200, 300, 0]


def test_an_item_set_on_an_outer_dict_in_a_fan_out_is_refused(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            out = {}
            for word in words.task_split(text)["words"]:
                out["last"] = calc.task_add(len(word))["sum"]
            return out

        @myc.flow
        def g(text):
            out = {"n": 0}
            if words.task_split(text)["count"] > 1:
                out["n"] = 2
            return out
    """)
    with pytest.raises(CompileError, match="changes 'out' in place inside a loop"):
        module.f.graph("a b")
    compiled, eager = run_both(module, module.g, "a b")  # a branch copies it
    assert compiled == eager == {"n": 2}
