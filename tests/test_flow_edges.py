"""Valid Python a new user wrote in flows, that the compiler once got wrong:
each now does what the eager function does, or is refused at its line."""

import functools
import traceback

import pytest

from blumycelium import CompileError
from tests.conftest import PRELUDE_LINES, run_both


def refusal(module, *args) -> tuple[str, int]:
    """The CompileError building flow f raises: its text, and its line in
    the body given to load_flows."""
    with pytest.raises(CompileError) as caught:
        module.f.graph(*args)
    return str(caught.value), caught.value.diagnostics[0].span.line - PRELUDE_LINES


def test_break_in_an_inner_loop_s_else_leaves_the_outer_loop(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            out = []
            for i in range(x):
                out.append(i)
                for j in range(2):
                    pass
                else:
                    break
            return out
    """)
    assert module.f.eager(3) == [0]
    assert run_both(module, module.f, 3) == ([0], [0])


def test_nonlocal_names_assigned_in_branches_and_loops(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            total = 0
            def add():
                nonlocal total
                for i in range(x):
                    total += i
                if x > 1:
                    total = total * 10
            add()
            return calc.task_add(total)["sum"]
    """)
    assert run_both(module, module.f, 4) == (61, 61)


def test_an_expression_too_deep_to_compile_is_a_compile_error(load_flows):
    terms = " + ".join(["x"] * 1400)
    with pytest.raises(CompileError) as caught:
        load_flows("\n@myc.flow\ndef f(x):\n    return %s\n" % terms)
    text = str(caught.value)
    assert "flow 'f' nests too deeply to be compiled" in text
    assert caught.value.diagnostics[0].span.line == PRELUDE_LINES + 2


def test_a_long_sum_compiles(load_flows):
    terms = " + ".join(["x"] * 400)
    module = load_flows(
        "\n@myc.flow\ndef f(x):\n    return calc.task_add(%s)['sum']\n" % terms
    )
    assert run_both(module, module.f, 1) == (401, 401)


@pytest.mark.parametrize(
    "statement,name",
    [
        ("ns.inner.count += 1", "ns"),
        ("d['a'].append(w)", "d"),
        ("d['a']['b'] = w", "d"),
        ("box[0], t = w, 1", "box"),
    ],
)
def test_changes_in_place_through_a_chain_in_a_loop_over_a_result_are_refused(
    load_flows, statement, name
):
    module = load_flows(
        """
        import types
        @myc.flow
        def f(text):
            ns = types.SimpleNamespace(inner=types.SimpleNamespace(count=0))
            d = {"a": {"b": 0}}
            box = [0, 1]
            for w in words.task_split(text)["words"]:
                %s
            return 1
    """
        % statement
    )
    text, line = refusal(module, "a b")
    assert "this changes %r in place inside a loop over a task result" % name in text
    assert line == 9


def test_changes_through_a_chain_in_a_static_loop_run(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            d = {"a": []}
            for w in range(x):
                d["a"].append(w)
            d["a"][0] = calc.task_add(x)["sum"]
            return d
    """)
    assert run_both(module, module.f, 3) == ({"a": [4, 1, 2]}, {"a": [4, 1, 2]})


def test_any_and_all_stop_at_the_element_that_decides(load_flows):
    module = load_flows("""
        import itertools
        seen = []
        def check(v):
            seen.append(v)
            return v > 2
        @myc.flow
        def f(x):
            seen.clear()
            found = any(v > x for v in itertools.count())
            first = any(check(v) for v in range(10))
            return found, first, len(seen), all(v < 3 for v in range(5))
    """)
    assert module.f.graph(5).result == {
        "__bm__": "tuple",
        "items": [True, True, 4, False],
    }


def test_any_over_a_task_result_is_decided_by_the_run(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            found = words.task_split(text)["words"]
            return any(w == "b" for w in found), max((len(w) for w in found), default=0)
    """)
    assert run_both(module, module.f, "a bb") == ((False, 2), (False, 2))
    assert run_both(module, module.f, "a b") == ((True, 1), (True, 1))


def test_a_function_defined_in_a_loop_over_a_result_is_usable_in_it(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            out = []
            for w in words.task_split(text)["words"]:
                def shout(v):
                    return v + "!"
                out.append(shout(w))
            return out
    """)
    assert run_both(module, module.f, "a b") == (["a!", "b!"], ["a!", "b!"])


def test_a_function_defined_in_a_loop_over_a_result_is_refused_after_it(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            for w in words.task_split(text)["words"]:
                def shout(v):
                    return v + "!"
            return shout("x")
    """)
    text, line = refusal(module, "a b")
    assert "'shout' is bound in the loop over a task result at line" in text, text
    assert "function 'f.<locals>.shout' is not storable" in text, text
    assert line == 7


def test_an_item_assignment_evaluates_its_value_first(load_flows):
    module = load_flows("""
        log = []
        def note(v):
            log.append(v)
            return v
        @myc.flow
        def f(x):
            log.clear()
            d = {}
            d[note("key")] = note("value")
            return d, list(log)
    """)
    assert module.f.eager(1) == ({"key": "value"}, ["value", "key"])
    assert run_both(module, module.f, 1)[0] == ({"key": "value"}, ["value", "key"])


def test_a_flow_over_a_wrapped_function_is_refused_at_its_def(myc):
    with pytest.raises(CompileError) as caught:

        @myc.flow
        @functools.lru_cache(maxsize=8)
        def f(x):
            return x

    span = caught.value.diagnostics[0].span
    assert span.file == __file__
    assert span.line > 0


def test_an_expression_node_too_deep_to_store_is_refused_at_its_line(load_flows):
    terms = " + ".join(["r"] + ["x"] * 600)
    module = load_flows(
        "\n@myc.flow\ndef f(x):\n    r = calc.task_add(x)['sum']\n    return %s\n"
        % terms
    )
    text, line = refusal(module, 1)
    assert "nests too deeply to be stored as an expression node" in text
    assert line == 5


def test_a_generator_suspended_in_a_try_leaves_the_flow_outside_it(load_flows):
    module = load_flows("""
        import contextlib
        @myc.flow
        def f(x):
            @contextlib.contextmanager
            def managed():
                try:
                    yield 1
                finally:
                    pass
            with managed():
                r = calc.task_add(x, 1)
            def numbers():
                try:
                    yield 1
                    yield 2
                except ValueError:
                    pass
            g = numbers()
            next(g)
            return calc.task_add(r["sum"], next(g))["sum"]
    """)
    assert run_both(module, module.f, 1) == (4, 4)


def test_a_task_called_inside_a_try_is_still_refused(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            def inner():
                return calc.task_add(x)
            try:
                r = inner()
            except ValueError:
                r = None
            return r
    """)
    with pytest.raises(CompileError, match="is called inside try/except"):
        module.f.graph(1)


def test_an_augmented_item_is_read_before_its_value_is_computed(load_flows):
    module = load_flows("""
        log = []
        def note(v):
            log.append(v)
            return v
        @myc.flow
        def f(x):
            log.clear()
            d = {"k": 1}
            try:
                d[note("missing")] += note(5)
            except KeyError:
                pass
            d["k"] += note(x)
            return d, list(log)
    """)
    expected = ({"k": 3}, ["missing", 2])
    assert module.f.eager(2) == expected
    assert run_both(module, module.f, 2)[0] == expected


def test_annotated_assignments_in_branches_and_loops(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            total: int
            if x > 0:
                y: int = 1
            else:
                y = 2
            out: list = []
            for w in words.task_split("a bb")["words"]:
                n: int = len(w)
                out.append(n + y)
            r = calc.task_add(x)["sum"]
            if r > 2:
                z: int = 10
            else:
                z = 20
            return out, z
    """)
    assert run_both(module, module.f, 1) == (([2, 3], 20), ([2, 3], 20))
    assert run_both(module, module.f, 5)[0] == ([2, 3], 10)


def test_a_long_elif_chain_compiles(load_flows):
    chain = "".join(
        "    %s x == %d:\n        y = %d\n" % ("if" if i == 0 else "elif", i, i * 2)
        for i in range(400)
    )
    module = load_flows(
        "\n@myc.flow\ndef f(x):\n%s    else:\n        y = -1\n"
        "    return calc.task_add(y)['sum']\n" % chain
    )
    assert run_both(module, module.f, 399) == (799, 799)
    assert run_both(module, module.f, 1000) == (0, 0)


def test_a_flow_nests_as_many_try_statements_as_python_allows(load_flows):
    depth = 18
    body = (
        "".join("    " * (i + 1) + "try:\n" for i in range(depth))
        + "    " * (depth + 1)
        + "y = x + 1\n"
    )
    for i in reversed(range(depth)):
        body += "    " * (i + 1) + "except ValueError:\n"
        body += "    " * (i + 2) + "y = 0\n"
    module = load_flows(
        "\n@myc.flow\ndef f(x):\n%s    return calc.task_add(y)['sum']\n" % body
    )
    assert run_both(module, module.f, 1) == (3, 3)


def test_only_the_try_body_refuses_task_calls(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            try:
                y = int(x)
                def later():
                    return calc.task_add(y)["sum"]
            except ValueError:
                y = calc.task_add(0)["sum"]
            else:
                y = calc.task_add(y)["sum"]
            finally:
                z = calc.task_add(1)["sum"]
            return later() + y + z
    """)
    # later() reads y when called: 4, the else block's
    assert run_both(module, module.f, "3") == (5 + 4 + 2, 5 + 4 + 2)


def test_any_over_endless_task_results_is_refused(load_flows):
    module = load_flows("""
        import itertools
        @myc.flow
        def f(x):
            return any(calc.task_add(i)["sum"] > x for i in itertools.count())
    """)
    text, line = refusal(module, 1)
    assert "any() of this generator would stop at the first item" in text
    assert line == 5


def test_an_element_put_in_a_flow_object_by_an_alias_is_refused(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            lists = [[], []]
            for w in words.task_split(text)["words"]:
                m = lists[0]
                m.append(w)
            return lists
    """)
    text, line = refusal(module, "a b")
    assert "an element of this loop over" in text
    assert "is used after the loop" in text
    assert line == 5


def test_a_method_call_on_a_later_line_fails_at_that_line(load_flows):
    module = load_flows("""
        @myc.flow
        def f(s):
            n = (s
                 .split()
                 .index("zz"))
            return n
    """)
    with pytest.raises(ValueError) as eager:
        module.f.eager("a b")
    with pytest.raises(ValueError) as built:
        module.f.graph("a b")

    def lines(error):
        frames = traceback.extract_tb(error.__traceback__)
        return [f.lineno for f in frames if f.name == "f"]

    assert lines(built.value) == lines(eager.value) == [PRELUDE_LINES + 6]


def test_a_decorator_beginning_a_try_body_is_inside_the_try(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            def register(fn):
                fn.value = calc.task_add(x)["sum"]
                return fn
            try:
                @register
                def h():
                    pass
            except ValueError:
                pass
            return h.value
    """)
    with pytest.raises(CompileError, match="is called inside try/except"):
        module.f.graph(1)


def test_a_bare_annotation_keeps_its_meaning(load_flows):
    module = load_flows("""
        X = 7
        log = []
        def note(v):
            log.append(v)
            return v
        @myc.flow
        def local(x):
            X: int
            return X
        @myc.flow
        def parts(x):
            log.clear()
            d = note({})
            d[note("k")]: int
            if x > 0:
                y: int
                y = 1
            else:
                y = 2
            return list(log), calc.task_add(y)["sum"]
        @myc.flow
        def undefined_owner(x):
            nowhere.a: int
            return x
    """)
    with pytest.raises(UnboundLocalError):
        module.local.eager(1)
    with pytest.raises(UnboundLocalError):
        module.local.graph(1)
    assert run_both(module, module.parts, 1) == (([{}, "k"], 2), ([{}, "k"], 2))
    with pytest.raises(NameError):
        module.undefined_owner.graph(1)


def test_any_stops_at_a_deciding_item_after_a_task_result(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            def items():
                yield calc.task_add(x)["sum"] > 5
                yield True
                yield words.task_show("never")
            return any(v for v in items())
    """)
    graph = module.f.graph(1)
    assert [job.spec.name for job in graph.jobs] == ["task_add"]
    assert run_both(module, module.f, 1) == (True, True)
