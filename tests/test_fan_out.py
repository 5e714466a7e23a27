"""Loops and comprehensions over task results: one copy of the loop body per
element, added to the run when the iterable is known, each run compared with
the same function run eagerly."""

import pytest

from blumycelium import CompileError, ExpressionError, RunFailedError
from tests.conftest import run_both


def drain(module):
    while sum(
        elf.start_jobs(raise_exceptions=False) for elf in (module.calc, module.words)
    ):
        pass


def test_a_for_statement_appends_keeps_the_last_values_and_guards(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            long_ones, sizes = [], []
            for word in parts["words"]:
                size = calc.task_add(len(word), 0)["sum"]
                sizes.append(size)
                if size > 2:
                    long_ones.append(word.upper())
            return long_ones, sizes, word, size
    """)
    compiled, eager = run_both(module, module.f, "a tiny fan out")
    assert compiled == eager == (["TINY", "FAN", "OUT"], [1, 4, 3, 3], "out", 3)


def test_a_loop_over_an_empty_result_runs_nothing_and_keeps_the_lists(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            sizes = [0]
            for word in parts["words"]:
                sizes.append(calc.task_add(len(word))["sum"])
            else:
                done = calc.task_total(sizes)
            return sizes, done["total"]
    """)
    compiled, eager = run_both(module, module.f, "")
    assert compiled == eager == ([0], 0)
    run = module.f("")
    drain(module)
    assert sorted(j.task for j in run.jobs()) == [
        "expand",
        "gather",
        "task_split",
        "task_total",
    ]


def test_a_name_only_the_loop_binds_is_unbound_after_zero_iterations(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            for word in words.task_split(text)["words"]:
                last = word
            return last
    """)
    assert run_both(module, module.f, "x y") == ("y", "y")
    run = module.f("")
    drain(module)
    with pytest.raises(ExpressionError, match="'last' is not bound: the loop at line"):
        run.result(timeout=5)


def test_list_dict_and_generator_comprehensions_with_conditions(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            sizes = [calc.task_add(len(w), 0)["sum"] for w in parts["words"]]
            kept = [w for w in parts["words"] if len(w) > 2 if w != "skip"]
            checked = [w for w in parts["words"] if calc.task_add(len(w))["sum"] > 4]
            table = {w: calc.task_add(len(w))["sum"] for w in parts["words"]}
            total = sum(n * 2 for n in sizes)
            return sizes, kept, checked, table, total
    """)
    compiled, eager = run_both(module, module.f, "to skip every word")
    assert compiled == eager
    assert compiled[1] == ["every", "word"]
    assert compiled[2] == ["skip", "every", "word"]


def test_tuple_targets_enumerate_and_nested_clauses(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            numbered = [f"{i}:{w}" for i, w in enumerate(parts["words"])]
            pairs = [a + b for a in parts["words"] for b in parts["words"] if a < b]
            for i, w in enumerate(parts["words"]):
                calc.task_add(i)
            return numbered, pairs, i, w
    """)
    compiled, eager = run_both(module, module.f, "x y z")
    assert compiled == eager
    assert compiled[1] == ["xy", "xz", "yz"]


def test_a_loop_inside_a_loop_over_results_expands_twice(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            letters = []
            for word in parts["words"]:
                inner = words.task_split(" ".join(word))
                for letter in inner["words"]:
                    letters.append(words.task_split(letter.upper())["words"][0])
            return letters
    """)
    compiled, eager = run_both(module, module.f, "ab c")
    assert compiled == eager == ["A", "B", "C"]


def test_a_comprehension_over_a_value_known_now_with_a_condition_on_a_result(
    load_flows,
):
    module = load_flows("""
        @myc.flow
        def f(limit):
            r = calc.task_add(limit, 0)
            return [calc.task_add(i)["sum"] for i in range(5) if i < r["sum"]]
    """)
    for limit in (0, 3):
        compiled, eager = run_both(module, module.f, limit)
        assert compiled == eager
    run = module.f(2)
    drain(module)
    assert sorted(j.status for j in run.jobs()) == ["done"] * 3 + ["skipped"] * 3


def test_a_loop_inside_an_if_on_a_result_is_skipped_with_its_branch(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            sizes = []
            if parts["count"] > 1:
                for word in parts["words"]:
                    sizes.append(calc.task_add(len(word), 0)["sum"])
            return sizes
    """)
    for text in ("one", "a bc"):
        compiled, eager = run_both(module, module.f, text)
        assert compiled == eager
    run = module.f("one")
    drain(module)
    assert [j.status for j in run.jobs()] == ["done", "skipped", "skipped"]


def test_a_failing_element_fails_the_run_and_the_others_still_run(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            return [calc.task_add(int(w))["sum"] for w in parts["words"]]
    """)
    compiled, eager = run_both(module, module.f, "1 2")
    assert compiled == eager == [2, 3]
    run = module.f("1 x 3")
    drain(module)
    assert run.wait(timeout=5) == "failed"
    with pytest.raises(RunFailedError, match="invalid literal for int"):
        run.result(timeout=5)
    statuses = {j.index: j.status for j in run.jobs()}
    assert sorted(statuses.values()).count("done") >= 4  # split, expand, 2 elements


def test_a_loop_over_something_not_iterable_fails_its_expand_job(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            return [calc.task_add(n)["sum"] for n in parts["count"]]
    """)
    run = module.f("a b")
    drain(module)
    assert run.wait(timeout=5) == "failed"
    failed = [j for j in run.jobs() if j.status == "failed"]
    assert [j.task for j in failed] == ["expand"]
    [failure] = run.failures()
    assert "iterates over int 2, which is not iterable" in failure.message


def test_a_value_carried_between_iterations_is_refused_with_a_hint(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            total = 0
            for word in words.task_split(text)["words"]:
                total = total + calc.task_add(len(word))["sum"]
            return total
    """)
    with pytest.raises(CompileError, match="'total' is carried") as caught:
        module.f.graph("a b")
    assert "total = sum(values)" in str(caught.value)


def test_a_template_argument_is_checked_against_the_annotation_at_run_time(
    load_flows,
):
    module = load_flows("""
        @myc.flow
        def f(text):
            parts = words.task_split(text)
            return [calc.task_add(w)["sum"] for w in parts["words"]]
    """)
    run = module.f("a")
    drain(module)
    with pytest.raises(RunFailedError, match="expects int"):
        run.result(timeout=5)


# Shrunk failures of the eager oracle (test_oracle.py), kept as regressions.


def test_a_fan_out_inside_a_static_loop_does_not_carry_its_own_target(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            out = []
            for _ in range(2):
                for word in words.task_split(text)["words"]:
                    last = word
                    out.append(word)
            return out
    """)
    compiled, eager = run_both(module, module.f, "a b")
    assert compiled == eager == ["a", "b", "a", "b"]


def test_a_name_set_in_one_branch_inside_a_fan_out_is_fine_unused(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            sizes = []
            for word in words.task_split(text)["words"]:
                n = calc.task_add(len(word), 0)["sum"]
                if n > 1:
                    only_here = [n]
                sizes.append(n)
            return sizes
    """)
    compiled, eager = run_both(module, module.f, "a bb")
    assert compiled == eager == [1, 2]


def test_an_element_computed_from_a_skipped_job_is_dropped_not_evaluated(
    load_flows,
):
    module = load_flows("""
        @myc.flow
        def f(x):
            flag = calc.task_add(x, 0)["sum"]
            items = words.task_split("a b")["words"]
            return [max(calc.task_add(1)["sum"], 0) for w in items if flag == 0]
    """)
    for x in (0, 1):
        compiled, eager = run_both(module, module.f, x)
        assert compiled == eager


def test_a_job_whose_lazy_argument_skips_a_skipped_job_still_runs(load_flows):
    module = load_flows("""
        @myc.flow
        def f(text):
            shown = []
            for word in words.task_split(text)["words"]:
                if word != "b":
                    shown.append(1)
                else:
                    n = calc.task_add(len(word))["sum"] if word == "a" else 0
                    shown.append(calc.task_add(n, 10)["sum"])
            return shown
    """)
    compiled, eager = run_both(module, module.f, "a b")
    assert compiled == eager == [1, 10]


def test_a_loop_over_too_many_elements_fails_its_expand_job_clearly(load_flows):
    module = load_flows("""
        @myc.flow
        def f(n):
            out = []
            for i in range(calc.task_add(n)["sum"]):
                out.append(calc.task_add(i))
            return out
    """)
    run = module.f(10**9)
    drain(module)
    assert run.wait(timeout=30) == "failed"
    (failure,) = run.failures()
    assert "would add more than 1000000 elements x 1 jobs" in failure.message
    assert "split the work into batches" in failure.message
    assert len(run.jobs()) == 3  # the task, the expand and the gather jobs


BODY_RAISES = """
    LIMITS = {"small": 3}

    @myc.flow
    def f(text):
        sizes = []
        for word in words.task_split(text)["words"]:
            sizes.append(calc.task_add(len(word), LIMITS["large"]))
        lengths = [(w, 1 // 0) for w in words.task_split(text)["words"]]
        return sizes, lengths
"""


def test_ordinary_code_raising_in_a_loop_body_is_fine_with_no_element(load_flows):
    module = load_flows(BODY_RAISES)
    compiled, eager = run_both(module, module.f, "")
    assert compiled == eager == ([], [])


def test_ordinary_code_raising_in_a_loop_body_fails_the_run_with_elements(
    load_flows,
):
    module = load_flows(BODY_RAISES)
    with pytest.raises(KeyError):
        module.f.__wrapped__("a b")
    run = module.f("a b")
    drain(module)
    assert run.wait(timeout=30) == "failed"
    messages = sorted(f.message for f in run.failures())
    assert len(messages) == 2
    assert "raised KeyError: 'large' when the flow was built" in messages[0]
    assert (
        "raised ZeroDivisionError: integer division or modulo by zero" in (messages[1])
    )
    assert 'LIMITS["large"]' in messages[0]  # the traceback shows the flow's line


def test_a_generator_over_values_known_now_is_lazy_as_in_python(load_flows):
    module = load_flows("""
        import itertools

        @myc.flow
        def f(text):
            names = text.split()
            numbered = dict(zip(names, (calc.task_add(i) for i in itertools.count())))
            total = sum(calc.task_add(len(n), 0)["sum"] for n in names)
            first = next(calc.task_add(i, 100)["sum"] for i in range(10**9))
            return {n: r["sum"] for n, r in numbered.items()}, total, first
    """)
    compiled, eager = run_both(module, module.f, "ab c")
    assert compiled == eager == ({"ab": 1, "c": 2}, 3, 100)
    run = module.f("ab c")
    assert len(run.jobs()) == 5  # two numbered, two sized, one first


def test_a_generator_over_values_known_now_filtering_on_a_result_is_refused(
    load_flows,
):
    module = load_flows("""
        @myc.flow
        def f(n):
            r = calc.task_add(n)
            return list(x for x in range(3) if x < r["sum"])
    """)
    with pytest.raises(CompileError, match="has an `if` on a task result") as caught:
        module.f.graph(1)
    assert "write a list comprehension" in str(caught.value)


def test_a_generator_over_a_result_kept_in_a_name_is_refused(load_flows):
    module = load_flows("""
        @myc.flow
        def twice(text):
            found = words.task_split(text)["words"]
            sizes = (len(w) for w in found)
            return sum(sizes) + sum(sizes)

        @myc.flow
        def consumed(text):
            found = words.task_split(text)["words"]
            return sum(len(w) for w in found), any(w == "b" for w in found)
    """)
    with pytest.raises(CompileError, match="a generator kept in a name") as caught:
        module.twice.graph("a bc")
    assert "write a list comprehension" in str(caught.value)
    compiled, eager = run_both(module, module.consumed, "a bc")
    assert compiled == eager == (3, False)


def test_plus_equals_grows_a_list_per_element_and_carries_no_number(load_flows):
    module = load_flows("""
        @myc.flow
        def grown(text):
            out = []
            for word in words.task_split(text)["words"]:
                out += [word.upper()]
            return out

        @myc.flow
        def summed(text):
            total = 0
            for word in words.task_split(text)["words"]:
                total += len(word)
            return total
    """)
    compiled, eager = run_both(module, module.grown, "a bc")
    assert compiled == eager == ["A", "BC"]
    with pytest.raises(CompileError, match="'total' is carried from one iteration"):
        module.summed.graph("a bc")


def test_another_name_for_a_list_a_fan_out_grows_is_refused(load_flows):
    module = load_flows("""
        @myc.flow
        def aliased(text):
            out = []
            box = {"list": out}
            for word in words.task_split(text)["words"]:
                out.append(word)
            return box

        @myc.flow
        def after_the_loop(text):
            out = []
            for word in words.task_split(text)["words"]:
                out.append(word)
            box = {"list": out}
            return box
    """)
    with pytest.raises(CompileError, match="'box' holds the list 'out'") as caught:
        module.aliased.graph("a b")
    assert "build 'box' from it after the loop" in str(caught.value)
    compiled, eager = run_both(module, module.after_the_loop, "a b")
    assert compiled == eager == {"list": ["a", "b"]}


FAILED_BEFORE_EXPANSION = """
@myc.flow
def f(text):
    bad = calc.task_total(["not a number"])["total"]  # fails on the worker
    out = [calc.task_add(bad, n)["sum"] for n in words.task_split(text)["words"]]
    return calc.task_total(out)["total"]
"""


def test_a_loop_over_a_result_under_a_failed_job_fails_the_run(load_flows):
    module = load_flows(FAILED_BEFORE_EXPANSION)
    run = module.f("a b c")
    module.calc.start_jobs(raise_exceptions=False)  # the failure comes first
    module.words.start_jobs()  # then the split, and the expansion
    module.calc.start_jobs(raise_exceptions=False)
    assert run.wait(timeout=10) == "failed"
    statuses = sorted(job.status for job in run.jobs())
    assert statuses.count("failed") == 1
    assert "pending" not in statuses and "ready" not in statuses
    last = max(
        run.jobs(), key=lambda job: job.index if job.task == "task_total" else -1
    )
    assert last.status == "upstream_failed"
