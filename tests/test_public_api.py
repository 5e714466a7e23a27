"""The public names users rely on (DESIGN.md), pinned."""

import inspect

import blumycelium
import blumycelium.machine_elf
import blumycelium.mycelium
from blumycelium import errors


def test_the_package_exports_exactly_these_names():
    expected = """BlumyceliumError CompileError ElfDefinitionError ExecutionError
        ExpressionError Flow MachineElf MissingDependencyError Mycelium NotFoundError
        NotStorableError RetryPolicy Run RunFailedError StoreError
        StoreUnavailableError TaskContractError TaskTimeoutError WorkerLostError
        after expression retry timeout""".split()
    assert sorted(blumycelium.__all__) == sorted(expected)
    for name in blumycelium.__all__:
        assert getattr(blumycelium, name) is not None


def test_seed_era_module_paths_keep_working():
    assert blumycelium.machine_elf.MachineElf is blumycelium.MachineElf
    assert blumycelium.mycelium.Mycelium is blumycelium.Mycelium


def parameters(function):
    return [
        (p.name, p.default) for p in inspect.signature(function).parameters.values()
    ][1:]


def test_seed_era_calls_keep_their_signatures():
    elf, mycelium = blumycelium.MachineElf, blumycelium.Mycelium
    assert parameters(elf.register) == [("store_source", True)]
    assert parameters(elf.start_jobs) == [
        ("store_failures", True),
        ("raise_exceptions", True),
    ]
    assert parameters(mycelium.init)[:1] == [("init_db", True)]
    assert parameters(mycelium.get_jobs) == [
        ("elf_uid", inspect.Parameter.empty),
        ("all_jobs", False),
        ("status_restriction", ("pending",)),
    ]
    assert parameters(mycelium.drop_jobs) == [] and parameters(mycelium.drop) == []


def test_run_handles_offer_id_status_wait_and_result():
    run = blumycelium.Run
    assert {"wait", "result", "status", "jobs", "failures"} <= set(dir(run))
    assert parameters(run.wait)[0] == ("timeout", None)


def test_every_error_derives_from_one_root():
    for name in dir(errors):
        value = getattr(errors, name)
        if (
            isinstance(value, type)
            and issubclass(value, Exception)
            and value.__module__ == errors.__name__
        ):
            assert issubclass(value, errors.BlumyceliumError)
    assert issubclass(errors.CompileError, TypeError)
    assert issubclass(errors.NotFoundError, LookupError)
