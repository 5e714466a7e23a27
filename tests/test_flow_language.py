"""Constructs of the flow language, each run with workers and compared with
the same function run eagerly (its task calls plain method calls)."""

import pytest

from blumycelium import CompileError


def run_both(module, flow, *args, **kwargs):
    """(the compiled run's result, the eager function's result)."""
    run = flow(*args, **kwargs)
    while sum(elf.start_jobs() for elf in (module.calc, module.words)):
        pass
    return run.result(timeout=10), flow.__wrapped__(*args, **kwargs)


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
