"""The fast paths keep the guarantees: a worker's batch of claims, completions
handed in together, the store's own lock waiting, the optional JSON codec,
light run polling, and the store interface's defaults for batches."""

import collections
import gc
import importlib
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from blumycelium import values
from blumycelium.store import open_store
from blumycelium.store.base import (
    Completion,
    FailureDocument,
    JobDocument,
    ParameterDocument,
    RunDocument,
    StoreBackend,
    WorkerDocument,
    order_key,
)
from blumycelium.store.sqlite import SQLiteBackend
from blumycelium.worker import JobContext, _BatchHeartbeat
from tests.conftest import ROOT, side_effects, wait_for

SITE = {"file": "flows.py", "line": 3, "column": 5, "flow": "f"}


@pytest.fixture
def batching(workshop):
    """The fixtures.batching module, bound to this test's mycelium (the
    workshop fixture points both at it, and at the side-effect log)."""
    sys.modules.pop("tests.fixtures.batching", None)
    module = importlib.import_module("tests.fixtures.batching")
    yield module
    module.mycelium.close()


@pytest.fixture
def store(tmp_path):
    backend = open_store("sqlite:///" + str(tmp_path / "store.db"))
    backend.init()
    yield backend
    backend.close()


def submit(store, count: int, elf: str = "worker") -> str:
    jobs = [
        JobDocument(n, elf, "task_run", "rev", SITE, {"n": n}, []) for n in range(count)
    ]
    return store.submit_run(
        RunDocument("f", "rev", "flows.py", 1, "def f(): ...", {}, None, [], jobs)
    )


def statuses(store, run_id) -> dict:
    return {
        job.index: (job.status, job.attempts) for job in store.list_jobs(run_id=run_id)
    }


def fast_worker(module):
    """The module's stepper worker, claiming full batches from the start."""
    worker = module.stepper.worker()
    worker._job_seconds = 1e-6
    return worker


# -- the store's batches --------------------------------------------------------


def test_a_batch_is_claimed_in_program_order_and_each_job_once(store):
    run_id = submit(store, 10)
    _, first = store.complete_and_claim([], ["worker"], "w1", 30.0, 4)
    _, second = store.complete_and_claim([], ["worker"], "w2", 30.0, 4)
    assert [job.index for job in first] == [0, 1, 2, 3]
    assert [job.index for job in second] == [4, 5, 6, 7]
    assert [job.parameters for job in first] == [
        [ParameterDocument("n", n, False)] for n in range(4)
    ]
    done = [Completion(job.id, job.attempt, {"n": job.index}) for job in first]
    stored, third = store.complete_and_claim(done, ["worker"], "w1", 30.0, 4)
    assert stored == [True] * 4
    assert [job.index for job in third] == [8, 9]
    assert store.fetch_results(run_id, range(4)) == {n: {"n": n} for n in range(4)}


def test_only_the_first_job_of_a_batch_was_attempted_before(store):
    run_id = submit(store, 4)
    _, claimed = store.complete_and_claim([], ["worker"], "w", 30.0, 2)
    store.release_jobs([(claimed[0].id, claimed[0].attempt)])
    again = claimed[1]
    store.fail_job(
        again.id, again.attempt, FailureDocument("E", "m", "t", None), time.time()
    )
    assert statuses(store, run_id)[0] == ("ready", 0)  # given back, not counted
    assert [
        j.index for j in store.complete_and_claim([], ["worker"], "w", 30.0, 4)[1]
    ] == [0]
    assert [
        j.index for j in store.complete_and_claim([], ["worker"], "w", 30.0, 4)[1]
    ] == [1, 2, 3]


def test_a_completion_of_a_lost_attempt_is_refused_in_a_batch(store):
    submit(store, 2)
    _, (first, second) = store.complete_and_claim([], ["worker"], "w", 30.0, 2)
    stored, _ = store.complete_and_claim(
        [
            Completion(first.id, first.attempt + 1, 1),
            Completion(second.id, second.attempt, 2),
        ],
        [],
        "w",
        30.0,
        0,
    )
    assert stored == [False, True]


def test_jobs_given_back_after_their_run_was_cancelled_are_cancelled(store):
    run_id = submit(store, 3)
    _, claimed = store.complete_and_claim([], ["worker"], "w", 30.0, 3)
    held = [(job.id, job.attempt) for job in claimed]
    assert store.current_claims(held) == {job.id for job in claimed}
    store.cancel_run(run_id)
    assert store.current_claims(held) == set()
    store.release_jobs(held)
    assert {status for status, _ in statuses(store, run_id).values()} == {"cancelled"}


def test_the_store_waits_for_a_lock_another_connection_holds(store):
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    released.start()
    try:
        run_id = submit(store, 1)
    finally:
        released.join()
        other.close()
    assert statuses(store, run_id) == {0: ("ready", 0)}


def test_a_backend_with_only_the_single_job_methods_runs_flows(batching):
    class SingleJobBackend(SQLiteBackend):
        """The SQLite backend without its batch overrides: what the
        interface's defaults make of the single-job methods."""

        complete_and_claim = StoreBackend.complete_and_claim
        release_jobs = StoreBackend.release_jobs
        current_claims = StoreBackend.current_claims
        run_progress = StoreBackend.run_progress
        run_result = StoreBackend.run_result

    mycelium = batching.mycelium
    mycelium._store = SingleJobBackend(mycelium.store.path)
    run = batching.steps(12)
    assert fast_worker(batching).run_ready_jobs() == 12
    assert run.result(timeout=10) == list(range(12))
    assert {job.attempts for job in run.jobs()} == {1}


# -- the worker's batches -------------------------------------------------------


def test_a_worker_runs_a_batch_in_order_and_each_job_once(batching, tmp_path):
    run = batching.steps(100)
    assert fast_worker(batching).run_ready_jobs() == 100
    assert run.result(timeout=10) == list(range(100))
    assert side_effects(tmp_path) == ["step %d" % n for n in range(100)]
    assert {job.attempts for job in run.jobs()} == {1}


def test_a_worker_that_stops_gives_back_its_batch_without_counting_attempts(
    batching, tmp_path, monkeypatch
):
    monkeypatch.setenv("BATCH_FAIL", "3")
    run = batching.steps(10)
    with pytest.raises(ValueError, match="step 3 fails"):
        fast_worker(batching).run_ready_jobs()
    jobs = {job.index: (job.status, job.attempts) for job in run.jobs()}
    assert [jobs[n] for n in range(4)] == [("done", 1)] * 3 + [("failed", 1)]
    assert {jobs[n] for n in range(4, 10)} == {("ready", 0)}
    assert side_effects(tmp_path) == ["step 0", "step 1", "step 2"]


def test_no_job_of_a_batch_starts_once_its_run_is_cancelled(
    batching, tmp_path, monkeypatch
):
    monkeypatch.setenv("BATCH_CANCEL", "2")
    run = batching.steps(10)
    fast_worker(batching).run_ready_jobs()
    assert run.status == "cancelled"
    assert side_effects(tmp_path) == ["step 0", "step 1", "step 2"]
    jobs = {job.index: job.status for job in run.jobs()}
    assert [jobs[n] for n in range(3)] == ["done"] * 3
    assert {jobs[n] for n in range(3, 10)} == {"cancelled"}


def test_the_heartbeat_renews_the_lease_of_every_job_of_the_batch(batching):
    run = batching.steps(3)
    worker = batching.stepper.worker(lease=60.0)
    store = batching.mycelium.store
    _, claimed = store.complete_and_claim([], ["stepper"], worker.worker_id, 1.0, 3)
    before = _leases(store, run.id)
    worker._leases.update({job.id: job.attempt for job in claimed})
    _BatchHeartbeat(worker, registered=False).beat()
    after = _leases(store, run.id)
    assert all(after[index] > before[index] + 30 for index in range(3))


def test_the_worker_s_record_names_the_job_in_hand(batching):
    batching.steps(3)
    worker = batching.stepper.worker(lease=60.0)
    store = batching.mycelium.store
    store.register_worker(
        WorkerDocument(worker.worker_id, "host", 1, "stepper", worker.lease)
    )
    _, claimed = store.complete_and_claim([], ["stepper"], worker.worker_id, 60.0, 3)
    worker._leases.update({job.id: job.attempt for job in claimed})
    in_hand = claimed[1]
    worker.elf.current_job = JobContext(in_hand.id, in_hand.run_id, 1, 1)
    try:
        _BatchHeartbeat(worker, registered=True).beat()
    finally:
        worker.elf.current_job = None
    [record] = [w for w in store.list_workers() if w.id == worker.worker_id]
    assert record.job_id == in_hand.id


def _leases(store, run_id) -> dict:
    rows = store._read(
        "SELECT idx, lease_expires_at FROM jobs WHERE run_id = ?", (int(run_id),)
    )
    return dict(rows)


def test_a_job_claimed_in_a_batch_is_recovered_when_its_worker_is_killed(
    batching, workers, tmp_path
):
    run = batching.steps(40)
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.batching"],
        cwd=ROOT,
        env=dict(workers.env, BATCH_STALL="5"),
    )
    try:
        assert wait_for(lambda: "stall 5" in side_effects(tmp_path), 30)
        # the results of the jobs before it are stored while it stalls
        assert wait_for(lambda: run.counts().get("done") == 5, 30)
        claimed = [job.index for job in run.jobs() if job.status == "running"]
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert claimed[0] == 5 and len(claimed) > 1  # the rest: claimed, not started
    workers.start("tests.fixtures.batching:stepper", "--lease", "1")
    assert run.wait(timeout=60) == "done"
    assert run.result() == list(range(40))
    ran = collections.Counter(side_effects(tmp_path))
    assert [ran["step %d" % index] for index in range(40)] == [1] * 40
    jobs = {job.index: job for job in run.jobs()}
    assert [jobs[index].attempts for index in range(5)] == [1] * 5
    for index in claimed[1:]:
        assert jobs[index].attempts == 2
    lost = {f.job_id for f in run.failures() if f.exception_type.endswith("LostError")}
    assert {jobs[index].id for index in claimed} <= lost
    assert workers.stop_all() == [0]


# -- values and runs ------------------------------------------------------------

TRICKY = [
    [0, -1, 2**53 - 1, -(2**53 - 1), 2**53, 2**64 + 1, -(2**70)],
    [0.1, -0.0, 1e308, 5e-324, 1e16, 1 / 3, 123.0],
    ["", "é", "\u2028", "\x00", "a\udc80b", "😀", '"\\'],
    {"a": [1, None, True, False], "__bm__": "x", 1: "one", (1, "t"): [()]},
    [[[]], {}, (), ((1,),), [None] * 3],
    list(range(5000)),
]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("value", TRICKY, ids=range(len(TRICKY)))
def test_values_come_back_exactly_through_either_json_codec(monkeypatch, fast, value):
    if fast and values.msgspec is None:
        pytest.skip("msgspec is not installed")
    if not fast:
        monkeypatch.setattr(values, "msgspec", None)
    text = values.to_text(value)
    back = values.from_text(text)
    assert repr(back) == repr(value)
    assert values.decode(values.loads(text)) == value


@pytest.mark.parametrize("fast", [True, False])
def test_both_codecs_refuse_what_json_cannot_say(monkeypatch, fast):
    if fast and values.msgspec is None:
        pytest.skip("msgspec is not installed")
    if not fast:
        monkeypatch.setattr(values, "msgspec", None)
    for bad in ([float("nan")], [1, float("inf")], {"x": [float("-inf")]}):
        with pytest.raises(ValueError):
            values.dumps(bad)


def test_a_large_argument_is_recorded_by_size_and_received_whole(batching):
    numbers = list(range(20_000))
    run = batching.total(numbers)
    assert run.record().arguments == {
        "values": {"repr": "<list holding more than 10000 items>"}
    }
    assert batching.mycelium.store.job_parameters(run.jobs()[0].id)[0].value == numbers
    batching.stepper.start_jobs()
    assert run.result(timeout=10) == sum(numbers)


def submit_parameters(store, *parameters: list) -> list:
    """Submit one job per list of parameters; the jobs' ids, in order."""
    jobs = [
        JobDocument(
            index,
            "worker",
            "task_run",
            "rev",
            SITE,
            {p.name: p.value for p in given},
            [],
            references={p.name for p in given if p.has_refs},
        )
        for index, given in enumerate(parameters)
    ]
    run_id = store.submit_run(
        RunDocument("f", "rev", "flows.py", 1, "def f(): ...", {}, None, [], jobs)
    )
    return [job.id for job in store.list_jobs(run_id=run_id)]


def test_a_large_parameter_without_tags_is_marked_plain(store):
    plain = ParameterDocument("plain", list(range(1000)), False)  # in the table
    tagged = ParameterDocument("tagged", {"__bm__": "tuple", "items": [1]}, False)
    (job,) = submit_parameters(store, [plain, tagged])
    assert [p.plain for p in store.job_parameters(job)] == [True, False]


def test_small_parameters_are_in_the_job_row_and_large_ones_in_their_table(store):
    small = [
        ParameterDocument("n", 7, False),
        ParameterDocument("s", "é\udce9", False),  # kept as JSON keeps it
        ParameterDocument("refs", [{"__bm__": "ref", "job": 0, "key": "x"}], True),
    ]
    large = [
        ParameterDocument("n", 7, False),
        ParameterDocument("items", ["x" * 40] * 40, False),
    ]
    empty: list = []
    # each value short, but too many of them for the row
    wide = [ParameterDocument("p%d" % n, "é" * 64, False) for n in range(20)]
    ids = submit_parameters(store, small, large, empty, wide)
    connection = sqlite3.connect(store.path)
    inline = dict(connection.execute("SELECT id, parameters FROM jobs").fetchall())
    table = connection.execute(
        "SELECT job_id, position, name FROM parameters ORDER BY job_id, position"
    ).fetchall()
    connection.close()
    small_id, large_id, empty_id, wide_id = (int(i) for i in ids)
    assert inline[small_id] is not None and inline[large_id] is None
    assert inline[empty_id] == "[{},[]]" and inline[wide_id] is None
    assert table[:2] == [(large_id, 0, "n"), (large_id, 1, "items")]
    assert table[2:] == [(wide_id, n, "p%d" % n) for n in range(20)]
    assert [store.job_parameters(i) for i in ids] == [small, large, empty, wide]
    _, claimed = store.complete_and_claim([], ["worker"], "w", 30.0, 4)
    assert [job.parameters for job in claimed] == [small, large, empty, wide]


def test_sqlite_writes_the_order_key_of_a_job_without_an_order(store):
    indices = [0, 9, 10, 99, 100, 12345, 10**12]
    jobs = [
        JobDocument(index, "worker", "task_run", "rev", SITE, {}, [])
        for index in indices
    ]
    jobs.append(JobDocument(7, "worker", "task_run", "rev", SITE, {}, [], order="zz"))
    run_id = store.submit_run(
        RunDocument("f", "rev", "flows.py", 1, "def f(): ...", {}, None, [], jobs)
    )
    connection = sqlite3.connect(store.path)
    positions = dict(
        connection.execute("SELECT idx, position FROM jobs WHERE run_id = ?", (run_id,))
    )
    connection.close()
    assert positions == {**{i: order_key(i) for i in indices}, 7: "zz"}


def test_job_ids_are_never_given_twice_even_after_their_runs_are_dropped(store):
    first = submit(store, 3)
    old = {job.id for job in store.list_jobs(run_id=first)}
    store.drop_jobs()  # the highest ids are gone with their rows
    second = submit(store, 2)
    new = {job.id for job in store.list_jobs(run_id=second)}
    assert min(int(i) for i in new) == max(int(i) for i in old) + 1


def test_a_file_whose_jobs_had_autoincrement_keeps_its_ids_unused(store):
    submit(store, 3)
    connection = sqlite3.connect(store.path)
    with connection:  # as a file written before the mark moved to meta
        connection.execute("DELETE FROM meta WHERE key = 'last_job_id'")
        connection.execute("INSERT INTO sqlite_sequence VALUES ('jobs', 3)")
    connection.close()
    store.drop_jobs()
    run_id = submit(store, 1)
    assert [job.id for job in store.list_jobs(run_id=run_id)] == ["4"]


GARBAGE_FLOW = """
@myc.flow
def garbage(count):
    for _ in range(count):
        node = []
        node.append(node)  # a cycle, garbage at the next iteration
    return calc.task_add(1)["sum"]
"""


def test_cycles_a_flow_s_static_code_drops_are_collected_during_the_call(
    load_flows,
):
    module = load_flows(GARBAGE_FLOW)
    thresholds = gc.get_threshold()
    collections = []

    def count(phase, info):
        if phase == "stop":
            collections.append(info["collected"])

    gc.callbacks.append(count)
    try:
        module.garbage(300_000)
    finally:
        gc.callbacks.remove(count)
    assert gc.isenabled() and gc.get_threshold() == thresholds
    # relaxed, not paused: the 300,000 cycles were collected as they piled up
    assert sum(collections) >= 250_000
    assert len(collections) < 300_000 // thresholds[0] // 10  # not every 700


@pytest.mark.skipif(
    not hasattr(sqlite3.Connection, "setlimit"), reason="Python 3.11+ sets limits"
)
def test_statements_naming_many_jobs_stay_within_sqlite_s_variable_limit(store):
    # SQLite caps a statement's variables (32,766 by default); here far lower
    store.connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)
    run_id = submit(store, 100)
    _, claimed = store.complete_and_claim([], ["worker"], "w", 30.0, 15)
    while claimed:
        failures = [job for job in claimed if job.index % 2]
        for job in failures:
            store.fail_job(job.id, job.attempt, FailureDocument("E", "m", "t", None))
        done = [
            Completion(j.id, j.attempt, j.index) for j in claimed if j.index % 2 == 0
        ]
        _, claimed = store.complete_and_claim(done, ["worker"], "w", 30.0, 15)
    results = store.fetch_results(run_id, range(100))
    assert results == {n: n for n in range(0, 100, 2)}
    assert store.retry_jobs(run_id) == 50
    assert statuses(store, run_id)[1] == ("ready", 1)


def test_a_lost_lease_is_reported_only_when_two_beats_find_it_lost(batching, caplog):
    batching.steps(2)
    worker = batching.stepper.worker(lease=60.0)
    store = batching.mycelium.store
    _, (stored, lost) = store.complete_and_claim(
        [], ["stepper"], worker.worker_id, 60.0, 2
    )
    worker._leases.update({stored.id: stored.attempt, lost.id: lost.attempt})
    # the main thread stored this outcome and has not let go of the job yet
    assert store.complete_job(stored.id, stored.attempt, {"n": 0})
    store.release_job(lost.id, lost.attempt)  # the other went to no one
    heartbeat = _BatchHeartbeat(worker, registered=False)
    with caplog.at_level("WARNING", logger="blumycelium.worker"):
        heartbeat.beat()
        assert "lease was lost" not in caplog.text
        del worker._leases[stored.id]  # let go of, as it would be by now
        heartbeat.beat()
        heartbeat.beat()  # said once, however long the task then runs
    warnings = [r.getMessage() for r in caplog.records if "lease" in r.getMessage()]
    assert warnings == [
        "job %s attempt %d: the lease was lost; its outcome will not be stored"
        % (lost.id, lost.attempt)
    ]
