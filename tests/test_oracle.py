"""The meaning of a flow is the same function run eagerly: random flows
(tests/oracle.py) compiled, submitted and run must give the eager result and
call each elf's tasks in the eager order, or be refused as documented."""

import collections
import importlib.util
import itertools
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blumycelium import CompileError
from tests.oracle import Program, flow_source, run_in_program_order

_MODULES = itertools.count()


def load(source: str, directory):
    name = "oracle_flow_%d" % next(_MODULES)
    path = directory / (name + ".py")
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def per_elf(calls) -> dict:
    sequences = collections.defaultdict(list)
    for call in calls:
        sequences[call[0]].append(call[1:])
    return dict(sequences)


def check(source: str, expect_error, p: int, directory) -> None:
    module = load(source, directory)
    try:
        eager = module.flow.__wrapped__(p)
        eager_calls = per_elf(module.CALLS)
        module.CALLS.clear()
        if expect_error:
            with pytest.raises(CompileError, match=expect_error):
                module.flow.graph(p)
            return
        run = module.flow(p)
        run_in_program_order(module.myc, run, [module.left, module.right])
        assert run.result(timeout=10) == eager, source
        assert per_elf(module.CALLS) == eager_calls, source
    finally:
        module.myc.close()


@settings(
    max_examples=int(os.environ.get("ORACLE_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), p=st.integers(0, 30))
def test_random_flows_run_as_they_would_eagerly(data, p, tmp_path_factory):
    directory = tmp_path_factory.mktemp("oracle")
    program = flow_source(data, "")
    source = program.source("sqlite:///" + str(directory / "oracle.db"))
    check(source, program.expect_error, p, directory)


# Flows that once ran differently from the eager function (or were refused
# wrongly), kept as they were found; each runs through the same check.
REGRESSIONS = {
    "starred-target": (
        [
            "rests = []",
            "triples = [[x, x + 1, x + 2] for x in right.task_range(p)['items']]",
            "for first, *rest in triples:",
            "    rests.append(left.task_add(first, len(rest))['sum'])",
        ],
        ["rests"],
        None,
    ),
    "append-after-fan-out-and-branches": (
        [
            "out = []",
            "for x in left.task_range(p)['items']:",
            "    out.append(right.task_add(x, 1)['sum'])",
            "out.append(-1)",
            "if left.task_add(p)['sum'] > 3:",
            "    out.extend([100])",
            "else:",
            "    out.extend([200, 300])",
            "out.append(0)",
        ],
        ["out"],
        None,
    ),
    "lazy-generator": (
        [
            "import itertools",
            "added = (left.task_add(i, p) for i in itertools.count())",
            "pairs = list(zip(['a', 'b'], added))",
            "first = next(right.task_add(i)['sum'] for i in range(10**9))",
            "pairs = [(k, r['sum']) for k, r in pairs]",
        ],
        ["pairs", "first"],
        None,
    ),
    "in-place-change-in-fan-out": (
        [
            "box = [0]",
            "for x in left.task_range(p)['items']:",
            "    box[0] += 1",
        ],
        ["box"],
        "changes 'box' in place inside a loop|'box' is carried",
    ),
    "tuple-of-lists-grown-in-a-loop": (
        [
            "sizes, big = [], []",
            "for x in left.task_range(p + 3)['items']:",
            "    s = right.task_add(x, p)['sum']",
            "    sizes.append(s)",
            "    if s > 2:",
            "        big.append(left.task_add(s)['sum'])",
        ],
        ["sizes", "big"],
        None,
    ),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
@pytest.mark.parametrize("p", [0, 1, 5])
def test_flows_the_oracle_once_caught_still_run_as_eagerly(name, p, tmp_path):
    lines, returned, expect_error = REGRESSIONS[name]
    program = Program(lines=list(lines), expect_error=expect_error)
    program.returned = list(returned)
    source = program.source("sqlite:///" + str(tmp_path / "oracle.db"))
    check(source, expect_error, p, tmp_path)
