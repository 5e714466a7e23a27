"""blumycelium's side of each workload, on a fresh SQLite file each time."""

from __future__ import annotations

import importlib
import itertools
import os
import sys
import textwrap

from .measure import PYTHON, Stopwatch, resident_mb, spawn, stop, wait_until

_FILES = itertools.count()


class Workshop:
    """A fresh mycelium file, the benchmark flows bound to it, and workers."""

    def __init__(self, directory):
        self.path = directory / ("ours-%d.db" % next(_FILES))
        self.url = "sqlite:///" + str(self.path)
        self.workers = []

    def __enter__(self):
        os.environ["BLUMYCELIUM_URL"] = self.url
        if "benchmarks.bench_flows" in sys.modules:
            self.flows = importlib.reload(sys.modules["benchmarks.bench_flows"])
        else:
            self.flows = importlib.import_module("benchmarks.bench_flows")
        self.flows.mycelium.store.init()
        return self

    def __exit__(self, *exc_info):
        stop(self.workers)
        self.flows.mycelium.close()

    def start_workers(self, count: int) -> None:
        """Worker processes of the bench elf, idle and registered."""
        command = [PYTHON, "-m", "blumycelium", "--log-level", "ERROR", "worker"]
        self.workers += [
            spawn(
                command + ["benchmarks.bench_flows:bench"],
                {},
                self.path.with_suffix(".log"),
            )
            for _ in range(count)
        ]
        store = self.flows.mycelium.store
        wait_until(lambda: len(store.list_workers()) >= count, 60, 0.01)

    def finish(self, run, timeout: float = 600):
        status = run.wait(timeout, poll_min=0.0005, poll_max=0.002)
        if status != "done":
            raise RuntimeError("benchmark run %s ended %s" % (run.id, status))
        return run


def submission(directory, count: int) -> float:
    """Jobs per second: build and submit a flow of ``count`` jobs."""
    with Workshop(directory) as shop:
        shop.flows.noops(10)  # compiled, store open
        with Stopwatch() as watch:
            shop.flows.noops(count)
    return count / watch.seconds


def throughput(directory, count: int, workers: int) -> float:
    """Jobs per second, from enqueueing ``count`` no-ops to the last result."""
    with Workshop(directory) as shop:
        shop.start_workers(workers)
        with Stopwatch() as watch:
            shop.finish(shop.flows.noops(count))
    return count / watch.seconds


def chain_hop(directory, length: int) -> float:
    """Milliseconds per hop of a chain of ``length`` jobs, one worker."""
    with Workshop(directory) as shop:
        shop.start_workers(1)
        with Stopwatch() as watch:
            run = shop.finish(shop.flows.chain(length))
        assert run.result() == length
    return watch.seconds * 1000 / length


def fan(directory, count: int) -> float:
    """Seconds for one producer, ``count`` mappers (a run-time fan-out) and
    one reducer, on two workers."""
    with Workshop(directory) as shop:
        shop.start_workers(2)
        with Stopwatch() as watch:
            run = shop.finish(shop.flows.fan(count))
        assert run.result() == count * (count - 1)
    return watch.seconds


def large_value(directory, values: list) -> float:
    """Seconds to submit a job given ``values`` and read back their sum."""
    with Workshop(directory) as shop:
        shop.start_workers(1)
        with Stopwatch() as watch:
            run = shop.finish(shop.flows.large(values))
            total = run.result()
        assert total == sum(values)
    return watch.seconds


def compile_seconds(directory, lines: int) -> float:
    """Seconds to compile a new flow of about ``lines`` lines."""
    number = next(_FILES)
    name = "generated_flow_%d" % number
    body = "\n".join(
        "    v%d = bench.task_next(v%d)['value'] + %d" % (i + 1, i, i)
        for i in range(lines - 3)
    )
    source = textwrap.dedent(
        """\
        from benchmarks.bench_flows import bench, mycelium

        def flow(v0):
        %s
            return v%d
        """
    ) % (body, lines - 3)
    path = directory / (name + ".py")
    path.write_text(source)
    sys.path.insert(0, str(directory))
    try:
        with Workshop(directory):
            module = importlib.import_module(name)
            with Stopwatch() as cold:
                module.mycelium.flow(module.flow)
    finally:
        sys.path.remove(str(directory))
    return cold.seconds


def call_overhead(directory, calls: int) -> tuple[float, float]:
    """Milliseconds per call of a compiled one-job flow, and of those the
    store's own insert of the run."""
    with Workshop(directory) as shop:
        store = shop.flows.mycelium.store
        inner = store.submit_run
        spent = []

        def timed(document):
            with Stopwatch() as watch:
                result = inner(document)
            spent.append(watch.seconds)
            return result

        store.submit_run = timed
        shop.flows.one_job(0)
        spent.clear()
        with Stopwatch() as watch:
            for n in range(calls):
                shop.flows.one_job(n)
    return watch.seconds * 1000 / calls, sum(spent) * 1000 / calls


def worker_memory(directory, first: int, then: int) -> tuple[float, float]:
    """A worker's resident MiB after ``first`` no-op jobs, and after ``then``
    more."""
    with Workshop(directory) as shop:
        shop.start_workers(1)
        pid = shop.workers[0].pid
        shop.finish(shop.flows.noops(first))
        early = resident_mb(pid)
        shop.finish(shop.flows.noops(then))
        late = resident_mb(pid)
    return early, late
