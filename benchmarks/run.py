"""``python -m benchmarks [--quick] [--only NAME ...]``: run the workloads and
print one table, each row blumycelium's figure (median of the repetitions,
with min-max), the reference measured in the same run, their ratio and the
target ratio."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

from . import ours, peers
from .measure import Figure, Row, render, repeat, unavailable

FULL = {
    "jobs": 10_000,
    "chain": 500,
    "fan": 1_000,
    "large": 1_000_000,
    "lines": 200,
    "calls": 200,
    "memory": (1_000, 99_000),
    "repetitions": 3,
}
QUICK = {
    "jobs": 300,
    "chain": 30,
    "fan": 30,
    "large": 20_000,
    "lines": 200,
    "calls": 20,
    "memory": (100, 400),
    "repetitions": 3,
}


def submission(sizes, directory) -> list[Row]:
    n, times = sizes["jobs"], sizes["repetitions"]
    return [
        Row(
            "submission (%d jobs)" % n,
            "jobs/s",
            repeat(lambda: ours.submission(directory, n), times),
            "sqlite3 executemany, rows/s",
            repeat(lambda: peers.raw_insert_rows(directory, n), times),
            ">= 0.33",
        )
    ]


def throughput(sizes, directory) -> list[Row]:
    n, times = sizes["jobs"], sizes["repetitions"]
    rows = []
    for workers in (1, 2):
        figure = repeat(lambda w=workers: ours.throughput(directory, n, w), times)
        for sync, target in (("full", ">= 3"), ("normal", ">= 1")):
            reference = _huey(
                lambda w=workers, s=sync: peers.huey_throughput(directory, n, w, s),
                times,
            )
            rows.append(
                Row(
                    "no-op throughput, %d worker%s" % (workers, "s" * (workers > 1)),
                    "jobs/s",
                    figure,
                    "Huey %d consumer%s, synchronous=%s"
                    % (workers, "s" * (workers > 1), sync.upper()),
                    reference,
                    target if workers == 1 else "",
                )
            )
        if workers == 1:
            one_worker = figure
    rows.append(
        Row(
            "no-op throughput, 1 worker",
            "jobs/s",
            one_worker,
            "raw sqlite3, 2 transactions per job",
            repeat(lambda: peers.raw_two_transactions(directory, n), times),
            ">= 0.5",
        )
    )
    rows.append(
        Row(
            "no-op throughput, 2 workers",
            "jobs/s",
            figure,
            "blumycelium, 1 worker",
            one_worker,
            ">= 1",
        )
    )
    return rows


def _huey(measure, times: int):
    """Huey's figure for ``measure``, or why it is unavailable."""
    missing = peers.huey_available()
    return unavailable(missing) if missing else repeat(measure, times)


def chain(sizes, directory) -> list[Row]:
    n, times = sizes["chain"], sizes["repetitions"]
    return [
        Row(
            "chain latency (%d hops)" % n,
            "ms/hop",
            repeat(lambda: ours.chain_hop(directory, n), times),
            "Huey pipeline",
            _huey(lambda: peers.huey_chain_hop(directory, n), times),
            "<= 0.5",
        )
    ]


def fan(sizes, directory) -> list[Row]:
    n, times = sizes["fan"], sizes["repetitions"]
    return [
        Row(
            "fan-out/fan-in (1-%d-1, 2 workers)" % n,
            "s",
            repeat(lambda: ours.fan(directory, n), times),
            "Huey, client passing results",
            _huey(lambda: peers.huey_fan(directory, n), times),
            "<= 0.5",
        )
    ]


def large(sizes, directory) -> list[Row]:
    values = list(range(sizes["large"]))
    times = sizes["repetitions"]
    figure = repeat(lambda: ours.large_value(directory, values), times)
    return [
        Row(
            "large value (%d ints)" % len(values),
            "s",
            figure,
            "Huey",
            _huey(lambda: peers.huey_large_value(directory, values), times),
            "<= 2",
        ),
        Row(
            "large value (%d ints)" % len(values),
            "s",
            figure,
            "json dumps + loads",
            repeat(lambda: peers.json_round_trip(values), times),
            "<= 3",
        ),
    ]


def compile_and_call(sizes, directory) -> list[Row]:
    times = max(3, sizes["repetitions"])
    compiled = [ours.compile_seconds(directory, sizes["lines"]) for _ in range(times)]
    calls = [ours.call_overhead(directory, sizes["calls"]) for _ in range(times)]
    return [
        Row(
            "compile a %d-line flow" % sizes["lines"],
            "s",
            Figure(compiled),
            "target: 50 ms",
            Figure([0.050]),
            "<= 1",
        ),
        Row(
            "call a compiled one-job flow",
            "ms",
            Figure([total for total, _ in calls]),
            "the store's insert of that run",
            Figure([insert for _, insert in calls]),
            note="the call costs %.3f ms beyond the insert (target: under 1 ms)"
            % (sorted(total - insert for total, insert in calls)[len(calls) // 2]),
        ),
    ]


def memory(sizes, directory) -> list[Row]:
    first, then = sizes["memory"]
    samples = [
        ours.worker_memory(directory, first, then) for _ in range(sizes["repetitions"])
    ]
    return [
        Row(
            "worker memory after %d jobs" % (first + then),
            "MiB",
            Figure([late for _, late in samples]),
            "after %d jobs" % first,
            Figure([early for early, _ in samples]),
            "<= 1.1",
        )
    ]


WORKLOADS = {
    "submission": submission,
    "throughput": throughput,
    "chain": chain,
    "fan": fan,
    "large": large,
    "compile": compile_and_call,
    "memory": memory,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(WORKLOADS), help="run these workloads"
    )
    options = parser.parse_args(argv)
    sizes = QUICK if options.quick else FULL
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="blumycelium-bench-") as directory:
        for name in options.only or WORKLOADS:
            rows += WORKLOADS[name](sizes, Path(directory))
    heading = "blumycelium benchmarks, %s, %s, %d CPUs, Python %s%s (%.0f s)" % (
        datetime.date.today().isoformat(),
        platform.machine(),
        os.cpu_count() or 0,
        platform.python_version(),
        ", quick" if options.quick else "",
        time.monotonic() - started,
    )
    print(render(rows, heading, judged=not options.quick), end="")
    return 0
