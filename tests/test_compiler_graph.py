"""Compiling real flows: which jobs, arguments, references and expression
nodes a call builds, and that static code runs as plain Python."""

from blumycelium.values import TAG


def ref(job, key):
    return {TAG: "ref", "job": job, "key": key}


def test_task_calls_become_jobs_with_bound_arguments_in_signature_order(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            calc.task_add(x)
            calc.task_add(b=5, a=x)
    """)
    graph = module.f.graph(2)
    assert [job.task for job in graph.jobs] == ["task_add", "task_add"]
    assert graph.jobs[0].arguments == {"a": 2}
    assert list(graph.jobs[1].arguments.items()) == [("a", 2), ("b", 5)]
    assert graph.jobs[0].dependencies == set()


def test_result_keys_become_references_and_dependencies(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            first = calc.task_add(x)
            second = calc.task_add(first["sum"], first["sum"])
            return second["sum"]
    """)
    graph = module.f.graph(1)
    assert graph.jobs[1].arguments == {"a": ref(0, "sum"), "b": ref(0, "sum")}
    assert graph.jobs[1].dependencies == {0}
    assert graph.jobs[1].deferred_arguments == {"a", "b"}
    assert graph.result == ref(1, "sum")
    assert graph.result_dependencies == {1}


def test_expressions_on_results_become_expression_nodes(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            words.task_show(parts["words"][0].upper() + "!" * parts["count"])
            words.task_show(f"{parts['count']:>4} words, first {parts['words'][0]!r}")
            words.task_show(len(parts["words"]) > 2 and parts["count"] % 2 == 0)
    """)
    graph = module.f.graph("a b c")
    node = graph.jobs[1].arguments["value"]
    assert node[TAG] == "expr"
    assert node["code"] == "_0[0].upper() + '!' * _1"
    assert node["inputs"] == {"_0": ref(0, "words"), "_1": ref(0, "count")}
    fstring = graph.jobs[2].arguments["value"]
    assert fstring["code"] == "f'{_0:>4} words, first {_1[0]!r}'"
    assert graph.jobs[3].arguments["value"]["code"] == "len(_0) > 2 and _1 % 2 == 0"


def test_results_in_static_containers_are_stored_as_references(load_flows):
    module = load_flows("""
        @myc.flow
        def f(n):
            totals = []
            table = {}
            for i in range(n):
                r = calc.task_add(i)
                totals.append(r["sum"])
                table[str(i)] = r["sum"]
            calc.task_total(totals)
            words.task_show((table, [totals[0]] * 2, len(totals)))
    """)
    graph = module.f.graph(3)
    assert graph.jobs[3].arguments["values"] == [
        ref(0, "sum"),
        ref(1, "sum"),
        ref(2, "sum"),
    ]
    assert graph.jobs[3].dependencies == {0, 1, 2}
    shown = graph.jobs[4].arguments["value"]
    assert shown[TAG] == "tuple"
    table, repeated, length = shown["items"]
    assert table == {"0": ref(0, "sum"), "1": ref(1, "sum"), "2": ref(2, "sum")}
    assert repeated == [ref(0, "sum"), ref(0, "sum")]
    assert length == 3


def test_static_code_runs_at_submit_time(load_flows, capsys):
    module = load_flows("""
        @myc.flow
        def f(n):
            for nb in range(n):
                print("Sending: %s" % nb)
                if nb % 5 == 0:
                    calc.task_add(nb)
            time.sleep(0)
    """)
    graph = module.f.graph(11)
    assert [job.arguments for job in graph.jobs] == [{"a": 0}, {"a": 5}, {"a": 10}]
    assert capsys.readouterr().out.splitlines()[-1] == "Sending: 10"


def test_a_container_passed_to_a_task_is_snapshotted_at_the_call(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            values = [1]
            calc.task_total(values)
            values.append(calc.task_add(1)["sum"])
            calc.task_total(values)
    """)
    graph = module.f.graph()
    assert graph.jobs[0].arguments["values"] == [1]
    assert graph.jobs[2].arguments["values"] == [1, ref(1, "sum")]


def test_nested_functions_comprehensions_closures_and_defaults(load_flows):
    module = load_flows("""
        offset = 10

        def make_flow():
            scale = 2

            @myc.flow
            def f(x, *extra, step=3, **options):
                def bump(value):
                    return value + step * scale + offset
                results = [calc.task_add(bump(v)) for v in (x,) + extra]
                return [r["sum"] * scale for r in results] + [options.get("tag")]

            return f

        flow = make_flow()
    """)
    graph = module.flow.graph(1, 2, tag="t")
    assert [job.arguments["a"] for job in graph.jobs] == [17, 18]
    result = graph.result
    assert result[0]["code"] == "_0 * 2" and result[2] == "t"
    module.offset = 100
    assert module.flow.graph(1).jobs[0].arguments["a"] == 107


def test_after_makes_jobs_wait_without_taking_a_value(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            saved = words.task_show("saving")
            with after(saved):
                calc.task_add(1)
            calc.task_add(2)
    """)
    graph = module.f.graph()
    assert graph.jobs[1].dependencies == {0}
    assert graph.jobs[2].dependencies == set()


def test_a_whole_result_can_be_passed_on(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            parts = words.task_split("a b")
            words.task_show(parts)
    """)
    assert module.f.graph().jobs[1].arguments["value"] == ref(0, None)


def test_a_deferred_test_in_a_conditional_expression_becomes_a_node(load_flows):
    module = load_flows("""
        @myc.flow
        def f():
            parts = words.task_split("a b")
            words.task_show("many" if parts["count"] > 1 else "few")
    """)
    node = module.f.graph().jobs[1].arguments["value"]
    assert node["code"] == "'many' if _0 > 1 else 'few'"


def test_the_rewritten_function_can_be_printed(load_flows):
    module = load_flows("""
        @myc.flow
        def f(x):
            return calc.task_add(x)["sum"] + 1
    """)
    source = module.f.rewritten_source
    assert source.startswith("def f(x):")
    assert "__blumycelium__.call(__blumycelium__.attribute(calc, 'task_add'," in source
    assert "__blumycelium__.binop(" in source and "'+'" in source


def test_static_errors_point_at_the_flow_line(load_flows):
    import traceback

    from tests.conftest import PRELUDE_LINES

    module = load_flows("""
        @myc.flow
        def f(x):
            calc.task_add(x)
            return (x
                    + 1) / 0
    """)
    try:
        module.f.graph(1)
    except ZeroDivisionError as error:
        frames = traceback.extract_tb(error.__traceback__)
        flow_frames = [frame for frame in frames if frame.name == "f"]
        assert flow_frames[0].lineno == PRELUDE_LINES + 5
        assert "return (x" in flow_frames[0].line
    else:
        raise AssertionError("no ZeroDivisionError")
