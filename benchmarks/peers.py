"""The references: Huey on SQLite, raw ``sqlite3`` and ``json``.

Huey runs its own consumer processes (``huey_consumer``) polling every
millisecond, at its default durability (``synchronous=FULL``) or at ours
(``NORMAL``); the client polls its result store every millisecond too.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import sqlite3
import sys

from .measure import PYTHON, Stopwatch, spawn, stop, wait_until

_FILES = itertools.count()


def huey_available() -> str | None:
    """None when Huey can be used, else why not."""
    try:
        importlib.import_module("huey")
    except ImportError:
        return 'n/a: pip install -e ".[bench]"'
    return None


class HueyShop:
    """A fresh SqliteHuey file, the benchmark tasks bound to it, consumers."""

    def __init__(self, directory, sync: str = "full"):
        self.path = directory / ("huey-%d.db" % next(_FILES))
        self.sync = sync
        self.consumers = []

    def __enter__(self):
        os.environ["BENCH_HUEY_DB"] = str(self.path)
        os.environ["BENCH_HUEY_SYNC"] = self.sync
        if "benchmarks.huey_app" in sys.modules:
            self.app = importlib.reload(sys.modules["benchmarks.huey_app"])
        else:
            self.app = importlib.import_module("benchmarks.huey_app")
        return self

    def __exit__(self, *exc_info):
        stop(self.consumers)
        self.app.huey.storage.close()

    def start_consumer(self, workers: int) -> None:
        command = [
            PYTHON,
            "-c",
            "import sys; from huey.bin.huey_consumer import consumer_main;"
            " sys.argv[0] = 'huey_consumer'; consumer_main()",
            "benchmarks.huey_app.huey",
            "-w",
            str(workers),
            "-k",
            "process",
            "-d",
            "0.001",
            "-m",
            "0.001",
            "-b",
            "1.0",
        ]
        self.consumers.append(
            spawn(
                command,
                {"BENCH_HUEY_DB": str(self.path), "BENCH_HUEY_SYNC": self.sync},
                self.path.with_suffix(".log"),
            )
        )
        self.result(self.app.noop(-1), 60)  # the consumer is up

    def result(self, handle, timeout: float = 600):
        box = []

        def ready():
            value = handle.get()
            if value is None:
                return False
            box.append(value)
            return True

        wait_until(ready, timeout)
        return box[0]


def huey_throughput(directory, count: int, workers: int, sync: str) -> float:
    with HueyShop(directory, sync) as shop:
        shop.start_consumer(workers)
        huey = shop.app.huey
        before = huey.result_count()
        with Stopwatch() as watch:
            for n in range(count):
                shop.app.noop(n)
            wait_until(lambda: huey.result_count() >= before + count, 600)
    return count / watch.seconds


def huey_chain_hop(directory, length: int) -> float:
    with HueyShop(directory) as shop:
        shop.start_consumer(1)
        pipeline = shop.app.next_value.s(0)
        for _ in range(length - 1):
            pipeline = pipeline.then(shop.app.next_value)
        with Stopwatch() as watch:
            handles = shop.app.huey.enqueue(pipeline)
            last = shop.result(handles._results[-1])
        assert last == length
    return watch.seconds * 1000 / length


def huey_fan(directory, count: int) -> float:
    """The producer, ``count`` mappers and the reducer as tasks, the client
    passing results along (Huey has no run-time fan-out of its own)."""
    with HueyShop(directory) as shop:
        shop.start_consumer(2)
        app = shop.app
        with Stopwatch() as watch:
            items = shop.result(app.produce(count))
            handles = [app.double(x) for x in items]
            values = [shop.result(handle) for handle in handles]
            total = shop.result(app.reduce_values(values))
        assert total == count * (count - 1)
    return watch.seconds


def huey_large_value(directory, values: list) -> float:
    with HueyShop(directory) as shop:
        shop.start_consumer(1)
        with Stopwatch() as watch:
            total = shop.result(shop.app.reduce_values(values))
        assert total == sum(values)
    return watch.seconds


def json_round_trip(values: list) -> float:
    with Stopwatch() as watch:
        assert json.loads(json.dumps(values)) == values
    return watch.seconds


# -- raw sqlite3 ----------------------------------------------------------------------

_JOB_TABLE = """
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, idx INTEGER NOT NULL,
    elf_uid TEXT NOT NULL, task TEXT NOT NULL, task_revision TEXT NOT NULL,
    site TEXT NOT NULL, status TEXT NOT NULL, unfinished INTEGER NOT NULL,
    created_at REAL NOT NULL, max_attempts INTEGER NOT NULL, position TEXT,
    UNIQUE (run_id, idx));
CREATE INDEX jobs_ready ON jobs (elf_uid, run_id, position) WHERE status = 'ready';
"""


def _raw_connection(directory) -> sqlite3.Connection:
    connection = sqlite3.connect(
        directory / ("raw-%d.db" % next(_FILES)), isolation_level=None
    )
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.executescript(_JOB_TABLE)
    return connection


def raw_insert_rows(directory, count: int) -> float:
    """Rows per second: ``count`` job-shaped rows in one transaction."""
    connection = _raw_connection(directory)
    site = json.dumps({"file": "flows.py", "line": 12, "column": 9, "flow": "noops"})
    rows = [
        (
            1,
            n,
            "bench",
            "task_noop",
            "0123456789abcdef0123",
            site,
            "ready",
            0,
            1.0,
            1,
            "a%d" % n,
        )
        for n in range(count)
    ]
    with Stopwatch() as watch:
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO jobs (run_id, idx, elf_uid, task, task_revision, site,"
            " status, unfinished, created_at, max_attempts, position)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        connection.execute("COMMIT")
    connection.close()
    return count / watch.seconds


def raw_two_transactions(directory, count: int) -> float:
    """Jobs per second: per job, one claim-style UPDATE transaction and one
    completion transaction, in WAL mode at ``synchronous=NORMAL``."""
    connection = _raw_connection(directory)
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO jobs (run_id, idx, elf_uid, task, task_revision, site, status,"
        " unfinished, created_at, max_attempts, position)"
        " VALUES (1, ?, 'bench', 'task_noop', 'r', '{}', 'ready', 0, 0, 1, ?)",
        [(n, "a%06d" % n) for n in range(count)],
    )
    connection.execute("COMMIT")
    with Stopwatch() as watch:
        for _ in range(count):
            connection.execute("BEGIN IMMEDIATE")
            (job,) = connection.execute(
                "UPDATE jobs SET status = 'running' WHERE id = (SELECT id FROM jobs"
                " WHERE elf_uid = 'bench' AND status = 'ready' ORDER BY run_id,"
                " position LIMIT 1) RETURNING id"
            ).fetchone()
            connection.execute("COMMIT")
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("UPDATE jobs SET status = 'done' WHERE id = ?", (job,))
            connection.execute("COMMIT")
    connection.close()
    return count / watch.seconds
