"""Shared fixtures: a temporary mycelium, and real worker subprocesses."""

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blumycelium import Mycelium

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption(
        "--soak",
        action="store_true",
        help="run the soak test (minutes of random flows and kills)",
    )
    parser.addoption(
        "--soak-minutes",
        type=float,
        default=3.0,
        help="how long the soak test submits flows (default 3)",
    )


@pytest.fixture
def db_url(tmp_path, monkeypatch):
    """A fresh SQLite mycelium file, also the default for Mycelium()."""
    url = "sqlite:///" + str(tmp_path / "test.db")
    monkeypatch.setenv("BLUMYCELIUM_URL", url)
    return url


@pytest.fixture
def myc(db_url):
    mycelium = Mycelium(db_url)
    yield mycelium
    mycelium.close()


@pytest.fixture
def workshop(db_url, tmp_path, monkeypatch):
    """The fixtures.workshop module, bound to this test's mycelium."""
    monkeypatch.setenv("WORKSHOP_LOG", str(tmp_path / "side-effects.log"))
    sys.modules.pop("tests.fixtures.workshop", None)
    module = importlib.import_module("tests.fixtures.workshop")

    yield module
    module.mycelium.close()


def side_effects(tmp_path):
    path = tmp_path / "side-effects.log"
    if not path.exists():
        return []
    return [line.rsplit(" ", 1)[0] for line in path.read_text().splitlines()]


class Workers:
    """Worker subprocesses started with `python -m blumycelium worker`."""

    def __init__(self, env):
        self.env = env
        self.processes = []

    def start(self, target, *extra):
        command = [
            sys.executable,
            "-m",
            "blumycelium",
            "--log-level",
            "WARNING",
            "worker",
            target,
            *extra,
        ]
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        return process

    def stop(self, process, sig=signal.SIGTERM, timeout=30):
        if process.poll() is None:
            process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return process.returncode

    def stop_all(self):
        return [self.stop(process) for process in self.processes]

    def wait_registered(self, store, timeout=60):
        """Wait until every started worker has registered: past that point a
        SIGTERM is handled, where before it the interpreter may still be
        starting, and dies of it (a run can finish before the last worker
        is up)."""
        pids = {process.pid for process in self.processes}
        assert wait_for(
            lambda: pids <= {worker.pid for worker in store.list_workers()}, timeout
        ), "workers %s did not register" % sorted(pids)


@pytest.fixture
def workers(db_url, tmp_path):
    env = dict(
        os.environ,
        BLUMYCELIUM_URL=db_url,
        PYTHONUNBUFFERED="1",
        WORKSHOP_LOG=str(tmp_path / "side-effects.log"),
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    pool = Workers(env)
    yield pool
    for process in pool.processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(predicate, timeout=30.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture
def load_flows(tmp_path, db_url):
    """Write a module with the given body (after a standard prelude) and import it.

    The prelude defines `myc`, elves `calc` (Calc) and `words` (Words); the
    body starts at line PRELUDE_LINES + 1 of the file.
    """
    import importlib.util
    import textwrap

    counter = {"n": 0}

    def load(body: str):
        counter["n"] += 1
        name = "flows_%d" % counter["n"]
        path = tmp_path / (name + ".py")
        path.write_text(PRELUDE + textwrap.dedent(body))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    return load


PRELUDE = """\
import time
from blumycelium import Mycelium, MachineElf, after
myc = Mycelium()
class Calc(MachineElf):
    def task_add(self, a: int, b: int = 1) -> {"sum": int}:
        return {"sum": a + b}
    def task_total(self, values: list) -> ("total",):
        return {"total": sum(values)}
class Words(MachineElf):
    def task_split(self, text: str) -> ("words", "count"):
        return {"words": text.split(), "count": len(text.split())}
    def task_show(self, value) -> None:
        print(value)
calc = Calc("calc", myc)
words = Words("words", myc)
"""
PRELUDE_LINES = PRELUDE.count("\n")


def run_both(module, flow, *args, **kwargs):
    """(the compiled run's result, the eager function's result)."""
    run = flow(*args, **kwargs)
    while sum(elf.start_jobs() for elf in (module.calc, module.words)):
        pass
    return run.result(timeout=10), flow.eager(*args, **kwargs)
