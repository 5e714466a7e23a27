"""Submission and claim throughput of the ArangoDB mycelium, on a live server.

    BLUMYCELIUM_ARANGO_URL=arango://root:pw@localhost:8529/bench \\
        python -m benchmarks.arango_bench [--jobs N] [--workers K] [--repeat R]

Without ``BLUMYCELIUM_ARANGO_URL`` it says so and exits 0: nothing here has
a server to talk to by default. Each repetition runs in a throwaway database
(the URL's name with a random suffix; the user must be allowed to create
databases), dropped afterwards.

It measures the store interface, without the compiler, with ``--jobs``
independent one-parameter jobs:

- submission: jobs per second written by ``submit_run`` (one stream
  transaction of bulk inserts);
- claims: jobs per second handed out by ``claim_job`` to ``--workers``
  threads until none is left (the claim statement and its conflicts);
- claim and complete: the same with ``complete_job`` after each claim (the
  completion transaction, and its contention on the run's counters).

Threads stand in for worker processes: the calls wait on the network, not on
the interpreter.
"""

from __future__ import annotations

import argparse
import os
import threading
import uuid

from benchmarks.measure import Figure, Stopwatch, repeat
from blumycelium.store.arango import ArangoBackend
from blumycelium.store.base import JobDocument, RunDocument
from blumycelium.urls import parse_arango_url

URL_VARIABLE = "BLUMYCELIUM_ARANGO_URL"
SITE = {"file": "bench.py", "line": 1, "column": 1, "flow": "bench"}


def main(argv=None) -> int:
    options = _options(argv)
    url = os.environ.get(URL_VARIABLE)
    if not url:
        print(
            "skipped: set %s=arango://user:password@host:8529/name to measure"
            " the ArangoDB mycelium" % URL_VARIABLE
        )
        return 0
    location = parse_arango_url(url)
    if location is None:
        print("%s is not an arango:// URL" % URL_VARIABLE)
        return 2
    n, workers, times = options.jobs, options.workers, options.repeat
    figures = [
        ("submission (%d jobs)" % n, repeat(lambda: submission(location, n), times)),
        (
            "claims (%d jobs, %d threads)" % (n, workers),
            repeat(lambda: claims(location, n, workers, False), times),
        ),
        (
            "claim and complete (%d jobs, %d threads)" % (n, workers),
            repeat(lambda: claims(location, n, workers, True), times),
        ),
    ]
    print(_table(location.public(), figures))
    return 0


def submission(location, jobs: int) -> float:
    """Jobs per second: one run of ``jobs`` jobs written by submit_run."""
    with _Scratch(location) as store:
        store.submit_run(_run(10))  # schema made, connections warm
        with Stopwatch() as watch:
            store.submit_run(_run(jobs))
    return jobs / watch.seconds


def claims(location, jobs: int, workers: int, complete: bool) -> float:
    """Jobs per second claimed (and completed) by ``workers`` threads."""
    with _Scratch(location) as store:
        store.submit_run(_run(jobs))
        done = []
        threads = [
            threading.Thread(target=_drain, args=(store, str(n), complete, done))
            for n in range(workers)
        ]
        with Stopwatch() as watch:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    if len(done) != jobs:
        raise RuntimeError("claimed %d jobs of %d" % (len(done), jobs))
    return jobs / watch.seconds


def _drain(store, worker: str, complete: bool, done: list) -> None:
    while True:
        claimed = store.claim_job("bench", worker)
        if claimed is None:
            return
        if complete:
            store.complete_job(claimed.id, claimed.attempt, {"value": claimed.index})
        done.append(claimed.index)


class _Scratch:
    """A throwaway database named after the URL's, dropped on exit."""

    def __init__(self, location):
        suffix = uuid.uuid4().hex[:10]
        name = "%s_bench_%s" % (location.database, suffix)
        self.store = ArangoBackend.from_url(location.with_database(name))

    def __enter__(self) -> ArangoBackend:
        self.store.init()
        return self.store

    def __exit__(self, *exc_info):
        self.store.drop_database()
        self.store.close()


def _run(jobs: int) -> RunDocument:
    documents = [
        JobDocument(
            index,
            "bench",
            "task_noop",
            "bench-rev",
            SITE,
            {"n": index},
            [],
        )
        for index in range(jobs)
    ]
    return RunDocument(
        "bench",
        "bench-flow",
        "bench.py",
        1,
        "def bench(): ...",
        {},
        None,
        [],
        documents,
    )


def _table(where: str, figures: list[tuple[str, Figure]]) -> str:
    width = max(len(name) for name, _ in figures)
    lines = ["ArangoDB mycelium at %s (median, min-max)" % where, ""]
    lines += ["%s  %s jobs/s" % (name.ljust(width), f.text()) for name, f in figures]
    return "\n".join(lines)


def _options(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.arango_bench")
    parser.add_argument("--jobs", type=int, default=2_000, help="jobs per run")
    parser.add_argument("--workers", type=int, default=4, help="claiming threads")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main())
