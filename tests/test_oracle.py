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
from tests.oracle import flow_source, run_in_program_order

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
