"""Soak: minutes of random flows while worker processes are killed at random.

Off by default; run it with

    .venv/bin/python -m pytest tests/test_soak.py --soak --soak-minutes 3

Afterwards every run must be terminal with the eager function's result, and
the store's invariants must hold: no job both done and waiting, dependency
counters consistent, no orphan parameters, results or edges.
"""

import random
import signal
import sqlite3
import sys
import time

import pytest

pytestmark = pytest.mark.soak


@pytest.fixture
def soak(db_url, workers, request):
    if not request.config.getoption("--soak"):
        pytest.skip("the soak test runs with --soak")
    sys.modules.pop("tests.fixtures.soak_flows", None)
    import importlib

    return importlib.import_module("tests.fixtures.soak_flows")


def test_random_flows_survive_random_worker_kills(soak, workers, db_url, request):
    minutes = request.config.getoption("--soak-minutes")
    chooser = random.Random(20261204)
    targets = ["tests.fixtures.soak_flows:mixer"] * 3 + [
        "tests.fixtures.soak_flows:joiner"
    ] * 2
    alive = {
        target_index: workers.start(target, "--lease", "1")
        for target_index, target in enumerate(targets)
    }
    runs, deadline, kills = [], time.monotonic() + 60 * minutes, 0
    while time.monotonic() < deadline:
        seed, size = chooser.randrange(10**6), chooser.randint(5, 60)
        runs.append((seed, size, soak.random_graph(seed, size)))
        time.sleep(chooser.random())
        if chooser.random() < 0.4:
            index = chooser.randrange(len(targets))
            alive[index].send_signal(signal.SIGKILL)
            alive[index].wait()
            alive[index] = workers.start(targets[index], "--lease", "1")
            kills += 1
    for _, _, run in runs:
        assert run.wait(timeout=300) == "done"
    for seed, size, run in runs:
        assert run.result() == soak.random_graph.__wrapped__(seed, size)
    for process in alive.values():
        assert workers.stop(process) == 0
    check_invariants(db_url[len("sqlite:///") :])
    print("soak: %d runs, %d worker kills" % (len(runs), kills))


def check_invariants(path):
    connection = sqlite3.connect(path)
    one = lambda sql: connection.execute(sql).fetchone()[0]  # noqa: E731
    assert one("PRAGMA integrity_check") == "ok"
    assert one("SELECT count(*) FROM runs WHERE status = 'running'") == 0
    assert (
        one("SELECT count(*) FROM jobs WHERE status IN ('pending', 'ready', 'running')")
        == 0
    )
    assert (
        one(
            "SELECT count(*) FROM jobs j LEFT JOIN results r ON r.job_id = j.id"
            " WHERE j.status = 'done' AND r.job_id IS NULL"
        )
        == 0
    )
    assert (
        one(
            "SELECT count(*) FROM results r JOIN jobs j ON j.id = r.job_id"
            " WHERE j.status != 'done'"
        )
        == 0
    )
    assert (
        one(
            "SELECT count(*) FROM jobs WHERE status = 'done' AND"
            " unfinished_dependencies != 0"
        )
        == 0
    )
    for table, column in (
        ("parameters", "job_id"),
        ("results", "job_id"),
        ("job_edges", "from_job"),
        ("job_edges", "to_job"),
        ("job_failures", "job_id"),
    ):
        assert (
            one(
                "SELECT count(*) FROM %s WHERE %s NOT IN (SELECT id FROM jobs)"
                % (table, column)
            )
            == 0
        )
    assert (
        one(
            "SELECT count(*) FROM runs r WHERE jobs_total != (SELECT count(*)"
            " FROM jobs j WHERE j.run_id = r.id)"
        )
        == 0
    )
    assert (
        one("SELECT count(*) FROM runs WHERE status = 'done' AND jobs_unfinished != 0")
        == 0
    )
    connection.close()
