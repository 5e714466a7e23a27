"""@blumycelium.expression helpers applied to task results: evaluated on the
worker that needs the value, found by module and name."""

import json

import pytest

from blumycelium import CompileError, expression
from tests.conftest import run_both

HELPER_FLOWS = """
from tests.fixtures.helpers import clamp, initials

@myc.flow
def f(text, limit):
    parts = words.task_split(text)
    short = initials(parts["words"])
    kept = [clamp(len(w), high=limit) for w in parts["words"]]
    total = calc.task_total(kept)
    return short, kept, clamp(total["total"], 0, 100), clamp(50, high=limit)
"""


def test_helpers_on_results_are_evaluated_by_workers(load_flows):
    module = load_flows(HELPER_FLOWS)
    compiled, eager = run_both(module, module.f, "alpha beta gamma", 4)
    assert compiled == eager == ("ABG", [4, 4, 4], 12, 4)


def test_a_helper_is_stored_by_module_name_and_revision(load_flows):
    module = load_flows(HELPER_FLOWS)
    run = module.f("a b", 3)
    store = module.myc.store
    values = [
        parameter.value
        for job in run.jobs()
        for parameter in store.job_parameters(job.id)
    ]
    text = json.dumps(values)
    assert '"module": "tests.fixtures.helpers", "name": "clamp"' in text
    assert '"__bm__": "helper"' in text


def test_a_helper_a_worker_cannot_import_fails_the_job_clearly(
    workshop, workers, tmp_path, monkeypatch
):
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret_helpers.py").write_text(
        "import blumycelium\n\n\n@blumycelium.expression\n"
        "def shout(text):\n    return text.upper()\n"
    )
    (private / "secret_flows.py").write_text(
        "from secret_helpers import shout\n"
        "from tests.fixtures.workshop import mycelium, texts\n\n\n"
        "@mycelium.flow\ndef f(text):\n"
        "    parts = texts.task_words(text)\n"
        "    return texts.task_echo(shout(parts['words'][0]))['value']\n"
    )
    monkeypatch.syspath_prepend(str(private))  # here, not in the worker
    import secret_flows

    run = secret_flows.f("quiet words")
    workers.start("tests.fixtures.workshop:texts")
    assert run.wait(timeout=60) == "failed"
    [failure] = run.failures()
    assert (
        "expression helper secret_helpers:shout cannot be imported on this worker:"
        " ModuleNotFoundError" in failure.message
    )


def test_helpers_must_be_module_level_functions():
    with pytest.raises(TypeError, match="must be defined at module level"):

        @expression
        def local(value):
            return value

    with pytest.raises(TypeError, match="decorates functions"):
        expression(len)


def test_a_helper_defined_in_main_is_refused_when_applied_to_results(load_flows):
    module = load_flows("""
        import blumycelium

        def twice(value):
            return value * 2

        twice.__module__ = "__main__"
        twice = blumycelium.expression(twice)

        @myc.flow
        def f(x):
            return twice(calc.task_add(x)["sum"]), twice(3)
    """)
    with pytest.raises(CompileError, match=r"defined in the script being run"):
        module.f.graph(1)


def test_the_preview_shows_a_helper_on_results_as_an_expression(tmp_path):
    from tests.conftest import PRELUDE
    from tests.test_preview import compile_command

    path = tmp_path / "helped.py"
    path.write_text(PRELUDE + HELPER_FLOWS)
    finished = compile_command(path)
    assert finished.returncode == 0, finished.stderr
    assert 'e1   expr initials(parts["words"])' in finished.stdout


def test_a_helper_that_raises_is_named_in_the_failure(load_flows):
    module = load_flows("""
        from tests.fixtures.helpers import clamp

        @myc.flow
        def f(text):
            parts = words.task_split(text)
            return calc.task_add(clamp(parts["words"][0]))["sum"]
    """)
    run = module.f("quiet words")
    for elf in (module.words, module.calc):
        elf.start_jobs(raise_exceptions=False)
    assert run.wait(timeout=30) == "failed"
    [failure] = run.failures()
    assert "the expression 'tests.fixtures.helpers:clamp(_1[0])'" in failure.message
    assert "TypeError" in failure.message


def test_a_helper_value_that_cannot_be_stored_fails_the_expression(load_flows):
    module = load_flows("""
        from tests.fixtures.helpers import unique

        @myc.flow
        def f(text):
            parts = words.task_split(text)
            return calc.task_total(unique(parts["words"]))["total"]
    """)
    run = module.f("a a b")
    for elf in (module.words, module.calc):
        elf.start_jobs(raise_exceptions=False)
    assert run.wait(timeout=30) == "failed"
    [failure] = run.failures()
    assert "tests.fixtures.helpers:unique(_1)" in failure.message
    assert "set is not storable" in failure.message
    assert failure.message.startswith("job ")
