"""Constructs of the flow language, each run with workers and compared with
the same function run eagerly (its task calls plain method calls)."""

import pytest

from blumycelium import CompileError
from tests.conftest import run_both


def test_tuples_written_without_parentheses(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            a, b = 1, 2
            for i in 1, x:
                a += i
            t = ()
            t += 1, calc.task_add(x)["sum"]
            return a, b, t
    """)
    compiled, eager = run_both(module, module.f, 5)
    assert compiled == eager == (7, 2, (1, 6))


def test_a_generator_expression_as_the_only_argument(load_flows):
    module = load_flows("""
        @myc.flow
        def f(xs):
            total = sum(i for i in xs)
            r = calc.task_add(total)
            return ",".join(str(v) for v in [r["sum"], total])
    """)
    compiled, eager = run_both(module, module.f, [1, 2, 3])
    assert compiled == eager == "7,6"


def test_f_strings_in_every_form(load_flows):
    module = load_flows('''
        @myc.flow
        def f(name, x):
            parts = words.task_split("Hello brave world")
            spec = calc.task_total([1])
            return (
                "Hi, "
                f"{name}! " f"{parts['count']}",
                f"""He said "{parts['words'][0]}" """,
                f"{x + 1 = }",
                f"{parts['count']=}",
                f"{3.14159:.{spec['total']}f}",
                f"{parts['words'][1]!r:>10}|{{literal}}",
            )
    ''')
    compiled, eager = run_both(module, module.f, "Bob", 1)
    assert compiled == eager
    assert compiled[2:4] == ("x + 1 = 2", "parts['count']=3")


def test_augmented_assignment_through_a_tuple_subscript(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            d = {(1, 2): 10}
            d[1, 2] += calc.task_add(1)["sum"]
            return d
    """)
    compiled, eager = run_both(module, module.f)
    assert compiled == eager == {(1, 2): 12}


def test_builtins_and_set_literals_inside_expression_nodes(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            parts = words.task_split("ccc a bb")
            return sorted(parts["words"], key=len), parts["count"] in {1, 3}
    """)
    compiled, eager = run_both(module, module.f)
    assert compiled == eager == (["a", "bb", "ccc"], True)


def test_after_is_a_no_op_in_the_eager_function(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            saved = words.task_show(x)
            with after(saved):
                return calc.task_add(x)["sum"]
    """)
    compiled, eager = run_both(module, module.f, 4)
    assert compiled == eager == 5


def test_a_flow_defined_in_a_class_is_called_on_an_instance(load_flows):
    module = load_flows("""
        class Pipeline:
            offset = 10

            @myc.flow
            def compute(self, x):
                return calc.task_add(x, self.offset)["sum"]
    """)
    run = module.Pipeline().compute(1)
    module.calc.start_jobs()
    assert run.result(timeout=10) == 11


@pytest.mark.parametrize(
    "body",
    [
        "    try:\n        calc.task_add(x)\n    except Exception:\n        pass\n",
        "    r = calc.task_add(x)\n    try:\n        if r['sum'] > 1:\n"
        "            words.task_show('big')\n    except TypeError:\n"
        "        words.task_show('fallback')\n",
        "    r = calc.task_add(x)\n    try:\n        print(r['sum'])\n"
        "    except BaseException:\n        pass\n",
    ],
)
def test_the_flows_own_except_cannot_swallow_a_compile_error(load_flows, body):
    module = load_flows("@myc.flow\ndef f(x):\n" + body)
    with pytest.raises(CompileError):
        module.f.graph(1)


def test_a_captured_value_that_cannot_be_stored_is_reported_at_its_expression(
    load_flows,
):
    module = load_flows("""
        @myc.flow
        def f():
            parts = words.task_split("a")
            return parts["words"] + [object()]
    """)
    with pytest.raises(CompileError, match="object is not storable") as caught:
        module.f.graph()
    assert 'parts["words"] + [object()]' in str(caught.value)


def test_str_format_on_a_result_suggests_an_f_string(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            return "{}".format(calc.task_add(1)["sum"])
    """)
    with pytest.raises(CompileError, match=r"str.format\(\) is not a method") as caught:
        module.f.graph()
    assert "use an f-string" in str(caught.value)


def test_an_unstorable_default_of_a_task_does_not_block_its_calls(load_flows):
    module = load_flows("""
        SENTINEL = object()

        class Lookup(MachineElf):
            def task_get(self, key: str, default=SENTINEL) -> ("found",):
                return {"found": default is SENTINEL}

        lookup = Lookup("lookup", myc)

        @myc.flow
        def f():
            return lookup.task_get("k")["found"]
    """)
    run = module.f()
    module.lookup.start_jobs()
    assert run.result(timeout=10) is True


def test_an_expression_used_twice_keeps_its_inputs_apart(load_flows):
    module = load_flows("""
        @myc.flow
        def f(a, b):
            y = calc.task_add(a)["sum"] + 0
            x = calc.task_add(b)["sum"] + 1
            return x * y + x, 0 < x < 100, x if x else 0
    """)
    compiled, eager = run_both(module, module.f, 2, 10)
    assert compiled == eager == (48, True, 12)


def test_a_left_out_optional_argument_does_not_shift_the_next_one(load_flows):
    module = load_flows("""
        class Options(MachineElf):
            def task_opt(self, a, b=1, c=2) -> ("r",):
                return {"r": (a, b, c)}

        options = Options("options", myc)

        @myc.flow
        def f():
            return options.task_opt(0, c=5)["r"]
    """)
    run = module.f()
    module.options.start_jobs()
    assert run.result(timeout=5) == module.f.__wrapped__() == (0, 1, 5)


def test_expressions_snapshot_the_containers_they_capture(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            r = calc.task_add(4)
            parts = [r["sum"], 1]
            total = sum(parts)
            parts.append(100)
            return total
    """)
    compiled, eager = run_both(module, module.f)
    assert compiled == eager == 6


def test_results_kept_from_an_earlier_call_are_refused(load_flows):
    module = load_flows("""
        HISTORY = []

        @myc.flow
        def f(x):
            r = calc.task_add(x)
            HISTORY.append(r["sum"])
            return list(HISTORY)
    """)
    with pytest.raises(CompileError, match="flow f left a task result in 'HISTORY'"):
        module.f.graph(1)
    with pytest.raises(CompileError, match="in an earlier call of flow f"):
        module.f.graph(2)


def test_a_branch_not_chosen_at_run_time_may_fail_when_built(load_flows):
    module = load_flows("""
        @myc.flow
        def f(count):
            r = calc.task_total([1])
            parts = words.task_split("a b")
            return (
                0 if r["total"] else 10 / count,
                [parts["words"][5]] if parts["count"] > 5 else [],
                r["total"] or {}["missing"],
            )
    """)
    compiled, eager = run_both(module, module.f, 0)
    assert compiled == eager == (0, [], 1)


def test_the_failure_of_a_chosen_branch_fails_the_job(load_flows):
    module = load_flows("""
        @myc.flow
        def f(count):
            r = calc.task_total([0])
            words.task_show(0 if r["total"] else 10 / count)
    """)
    run = module.f(0)
    module.calc.start_jobs()
    module.words.start_jobs(raise_exceptions=False)
    [failure] = run.failures()
    assert (
        "ZeroDivisionError: division by zero (raised when the flow was built"
        in failure.message
    )


def test_digits_in_a_percent_template_are_not_widths(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            return "Order 12345678: %5s" % calc.task_add(1)["sum"]
    """)
    compiled, eager = run_both(module, module.f)
    assert compiled == eager == "Order 12345678:     2"


def test_a_flow_with_a_string_indented_less_than_its_def(tmp_path, db_url):
    import importlib.util

    from tests.conftest import PRELUDE

    path = tmp_path / "indented.py"
    path.write_text(
        PRELUDE
        + (
            "class Reports:\n"
            "    @myc.flow\n"
            "    def report(self):\n"
            '        header = """\n'
            'Report"""\n'
            '        return calc.task_add(len(header))["sum"]\n'
        )
    )
    spec = importlib.util.spec_from_file_location("indented", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.Reports().report()
    module.calc.start_jobs()
    assert run.result(timeout=5) == 8


def test_future_annotations_apply_to_functions_inside_a_flow(tmp_path, db_url):
    import importlib.util

    path = tmp_path / "future_flows.py"
    path.write_text(
        "from __future__ import annotations\n"
        "from blumycelium import MachineElf, Mycelium\n"
        "myc = Mycelium()\n"
        "class Calc(MachineElf):\n"
        "    def task_add(self, a: int) -> ('sum',):\n"
        "        return {'sum': a + 1}\n"
        "calc = Calc('calc', myc)\n"
        "@myc.flow\n"
        "def f(x):\n"
        "    def helper(v: Money) -> Money:\n"
        "        return v + 1\n"
        "    return helper(calc.task_add(x)['sum'])\n"
    )
    spec = importlib.util.spec_from_file_location("future_flows", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.f(1)
    module.calc.start_jobs()
    assert run.result(timeout=5) == module.f.__wrapped__(1) == 3


def test_tuple_keys_sets_ranges_and_bool_methods_in_expressions(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            r = calc.task_add(2)
            return (
                {(r["sum"], 1): "x"},
                r["sum"] in {(1, 2), (3, 4)},
                r["sum"] in set(),
                r["sum"] in range(1, 10),
                (r["sum"] > 1).bit_length(),
            )
    """)
    compiled, eager = run_both(module, module.f)
    assert compiled == eager == ({(3, 1): "x"}, False, False, True, 1)


def test_super_without_arguments_is_refused_with_a_hint(load_flows):
    with pytest.raises(CompileError, match="super\\(\\) without arguments") as caught:
        load_flows("""
            class Base:
                def offset(self):
                    return 1

            class K(Base):
                @myc.flow
                def uses_super(self):
                    return calc.task_add(super().offset())["sum"]
        """)
    assert "Base.method(self, ...)" in str(caught.value)


def test_ordinary_code_misusing_a_result_is_located_at_its_call(load_flows):
    from tests.conftest import PRELUDE_LINES

    module = load_flows("""
        @myc.flow
        def f():
            r = calc.task_add(1)
            x = words.task_show(dict(
                a=1,
                b=sorted([1, 2],
                         key=lambda v: {r["sum"]: v}[v]),
            ))
    """)
    with pytest.raises(CompileError) as caught:
        module.f.graph()
    span = caught.value.diagnostics[0].span
    assert span.line == PRELUDE_LINES + 7
    assert "comparing it (<) in ordinary code" in str(caught.value)


GUARDED = """
    @myc.flow
    def f(x):
        r = calc.task_add(x)
        results = []
        if r["sum"] > 5:
            big = calc.task_add(r["sum"], 100)
            label = "big"
            results.append(big["sum"])
        elif r["sum"] > 2:
            label = "medium"
            results.append(calc.task_add(r["sum"], 10)["sum"])
        else:
            label = "small"
        total = calc.task_add(len(label))
        return label, results, total["sum"]
"""


@pytest.mark.parametrize(
    ("x", "expected", "statuses"),
    [
        (0, ("small", [], 6), ["done", "skipped", "skipped", "done"]),
        (3, ("medium", [14], 7), ["done", "skipped", "done", "done"]),
        (9, ("big", [110], 4), ["done", "done", "skipped", "done"]),
    ],
)
def test_an_if_on_a_result_guards_the_jobs_of_each_branch(
    load_flows, x, expected, statuses
):
    module = load_flows(GUARDED)
    run = module.f(x)
    while sum(elf.start_jobs() for elf in (module.calc, module.words)):
        pass
    assert run.result(timeout=10) == module.f.__wrapped__(x) == expected
    assert [job.status for job in run.jobs()] == statuses
    assert run.status == "done"


def test_nested_ifs_and_jobs_that_depend_only_on_skipped_jobs(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            r = calc.task_add(x)
            out = 0
            if r["sum"] > 1:
                a = calc.task_add(r["sum"])
                b = calc.task_add(a["sum"])
                if b["sum"] > 10:
                    out = calc.task_add(b["sum"], 1000)["sum"]
                else:
                    out = b["sum"]
            return out
    """)
    for x in (0, 3, 20):
        compiled, eager = run_both(module, module.f, x)
        assert compiled == eager


def test_conditional_expressions_and_boolean_operators_guard_task_calls(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            r = calc.task_add(x)
            pick = calc.task_add(1)["sum"] if r["sum"] > 3 else calc.task_add(2)["sum"]
            both = r["sum"] > 3 and calc.task_add(10)["sum"]
            either = r["sum"] > 3 or calc.task_add(20)["sum"]
            return pick, both, either
    """)
    for x in (1, 9):
        compiled, eager = run_both(module, module.f, x)
        assert compiled == eager
    run = module.f(1)
    while sum(elf.start_jobs() for elf in (module.calc, module.words)):
        pass
    assert sorted(j.status for j in run.jobs()) == ["done"] * 3 + ["skipped"] * 2


def test_a_name_assigned_in_one_branch_only_is_refused_when_used(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            r = calc.task_add(x)
            if r["sum"] > 3:
                only = calc.task_add(1)
            unused = 1
            return only["sum"]
    """)
    with pytest.raises(
        CompileError, match="'only' is assigned in only one branch of the `if` at line"
    ) as caught:
        module.f.graph(1)
    assert "not in its else branch" in str(caught.value)


def test_a_name_assigned_in_one_branch_and_not_used_is_fine(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            r = calc.task_add(x)
            if r["sum"] > 3:
                note = calc.task_add(1)
            return r["sum"]
    """)
    compiled, eager = run_both(module, module.f, 5)
    assert compiled == eager == 6


def test_changing_a_shared_list_in_a_branch_on_a_result_is_refused(load_flows):
    module = load_flows("""
        SEEN = []

        @myc.flow
        def f(x):
            r = calc.task_add(x)
            if r["sum"] > 3:
                SEEN.append(r["sum"])
    """)
    with pytest.raises(CompileError, match="changes .SEEN. in place inside a branch"):
        module.f.graph(1)


def test_a_skipped_branch_needs_no_worker_of_its_elves(load_flows):
    module = load_flows("""
        class Rare(MachineElf):
            def task_alert(self, value: int) -> None:
                print("alert", value)

        rare = Rare("rare", myc)

        @myc.flow
        def f(x):
            r = calc.task_add(x)
            if r["sum"] > 100:
                rare.task_alert(r["sum"])
            return r["sum"]
    """)
    run = module.f(1)
    module.calc.start_jobs()
    assert run.wait(timeout=5) == "done"
    assert [j.status for j in run.jobs()] == ["done", "skipped"]


def test_after_takes_lists_of_results_and_refuses_what_cannot_be_waited_for(
    load_flows,
):
    module = load_flows("""
        @myc.flow
        def listed(x):
            shown = [words.task_show(i) for i in range(3)]
            with after(shown):
                total = calc.task_add(x)
            return total["sum"]

        @myc.flow
        def one_branch(x):
            r = calc.task_add(x)
            if r["sum"] > 2:
                s = words.task_show(r["sum"])
            with after(s):
                t = calc.task_add(0)
            return t["sum"]

        @myc.flow
        def static(x):
            with after(x):
                t = calc.task_add(x)
            return t["sum"]
    """)
    graph = module.listed.graph(1)
    assert graph.jobs[-1].dependencies == {0, 1, 2}
    with pytest.raises(CompileError, match="'s' is assigned in only one branch"):
        module.one_branch.graph(1)
    with pytest.raises(CompileError, match=r"found int 1, which is known now") as e:
        module.static.graph(1)
    assert "with after(x):" in str(e.value)


def test_dict_methods_read_a_whole_result(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            r = calc.task_add(x)
            return sorted(r.keys()), r.get("sum"), list(r.items())
    """)
    compiled, eager = run_both(module, module.f, 2)
    assert compiled == eager == (["sum"], 3, [("sum", 3)])


def test_a_result_left_in_module_state_is_refused(load_flows):
    module = load_flows("""
        HISTORY = []

        @myc.flow
        def f(x):
            r = calc.task_add(x)["sum"]
            HISTORY.append(r)
            return r

        def factory():
            kept = {}

            @myc.flow
            def g(x):
                kept["last"] = calc.task_add(x)
                return 1

            return g
    """)
    with pytest.raises(CompileError, match="flow f left a task result in 'HISTORY'"):
        module.f.graph(1)
    with pytest.raises(CompileError, match="flow g left a task result in 'kept'"):
        module.factory().graph(1)
    others = load_flows("""
        class Box:
            pass

        box = Box()

        @myc.flow
        def attribute(x):
            box.last = {"v": (calc.task_add(x)["sum"],)}

        @myc.flow
        def default(x, acc=[]):
            acc.append(calc.task_add(x))

        @myc.flow
        def argument(x, sink):
            sink.append(calc.task_add(x))
    """)
    with pytest.raises(CompileError, match="left a task result in 'box'"):
        others.attribute.graph(1)
    with pytest.raises(CompileError, match="left a task result in a default value"):
        others.default.graph(1)
    with pytest.raises(CompileError, match="in the argument 'sink'"):
        others.argument.graph(1, [])
    caller = load_flows(
        """
        from %s import f

        @myc.flow
        def calling(x):
            return f(x)
    """
        % module.__name__
    )
    with pytest.raises(CompileError, match="flow f left a task result"):
        caller.calling.graph(2)


def test_functions_of_a_flow_keep_the_names_written_in_it(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            found = words.task_split(text)["words"]
            return sorted(found, key=lambda w: -len(w))
    """)
    with pytest.raises(CompileError, match=r"function 'f\.<locals>\.<lambda>'"):
        module.f.graph("a bc")


GROWING_FLOW = """
class Echo(MachineElf):
    def task_echo(self, value) -> ("value",):
        return {"value": value}

echo = Echo("echo", myc)

@myc.flow
def grow(n):
    acc, seen = [], []
    for i in range(n):
        acc.append(i)
        seen.append(echo.task_echo(acc)["value"])
    return seen, echo.task_echo((1, [2]))["value"]
"""


def test_eager_task_calls_take_their_arguments_as_a_run_does(load_flows):
    module = load_flows(GROWING_FLOW)
    run = module.grow(3)
    module.echo.start_jobs()
    # a run stores each argument as it is at the call, and eager does too
    expected = ([[0], [0, 1], [0, 1, 2]], (1, [2]))
    assert run.result(timeout=10) == module.grow.eager(3) == expected


EAGER_REFUSALS = """
class Echo(MachineElf):
    def task_echo(self, x, **kw) -> ("value",):
        return {"value": x}

    def task_typed(self, xs: list) -> ("value",):
        return {"value": xs}

echo = Echo("echo", myc)

@myc.flow
def unstorable():
    return echo.task_echo(1, z=object())["value"]

@myc.flow
def mistyped():
    return echo.task_typed((1, 2))["value"]

@myc.flow
def returns_a_set():
    return {1, 2}
"""


def test_eager_refuses_what_submission_refuses_naming_the_same_place(load_flows):
    from blumycelium import BlumyceliumError, NotStorableError, TaskContractError

    module = load_flows(EAGER_REFUSALS)
    with pytest.raises(NotStorableError) as caught:
        module.unstorable.eager()
    assert str(caught.value).startswith('argument kw["z"] of Echo.task_echo(): ')
    with pytest.raises(TaskContractError, match="parameter 'xs' expects list"):
        module.mistyped.eager()
    with pytest.raises(NotStorableError, match="return value of flow returns_a_set"):
        module.returns_a_set.eager()
    for flow in (module.unstorable, module.mistyped, module.returns_a_set):
        with pytest.raises(BlumyceliumError):  # and submission refuses each
            flow()
